"""Pieces of BigGAN (Brock et al. 2019) that stand apart from its networks: the orthogonal
regularisation and the truncation trick. The networks will live in gan/nets/biggan.py."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from fewlabels.errors import UserError


def orthogonal_penalty(weights: Iterable[Tensor], beta: float = 1e-4) -> Tensor:
    """BigGAN's orthogonal regularisation, off-diagonal only (Brock et al. 2019, Eq. 3):

        R_β(W) = β ‖W Wᵀ ⊙ (1 − I)‖²_F,    summed over the weights given,

    with each weight reshaped to (out, in·kh·kw), so that its rows are the filters and W Wᵀ their
    Gram matrix: filters are pushed towards orthogonal without constraining their norms. The
    gradient is 4β (W Wᵀ ⊙ (1 − I)) W. (BigGAN-PyTorch's `ortho` adds 2·strength·(W Wᵀ ⊙ (1 − I)) W
    to the gradient directly, which is this penalty with β = strength / 2.) Weights with fewer
    than two dimensions (biases, gains) are the caller's to leave out."""
    total = None
    for weight in weights:
        w = weight.reshape(weight.shape[0], -1)
        gram = w @ w.t()
        off = gram * (1 - torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype))
        term = off.pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("orthogonal_penalty needs at least one weight")
    return beta * total


@torch.no_grad()
def add_orthogonal_gradient_(weights: Iterable[Tensor], beta: float = 1e-4) -> None:
    """w.grad += ∇_W R_β(W) = 4β (W Wᵀ ⊙ (1 − I)) W for each weight (orthogonal_penalty's gradient),
    added directly as BigGAN-PyTorch does: three small ops a weight instead of a graph to walk back,
    a quarter of a small BigGAN's step when done through autograd. The weights must have grads."""
    for weight in weights:
        w = weight.reshape(weight.shape[0], -1)
        gram = w @ w.t()
        gram.diagonal().zero_()
        weight.grad.add_((gram @ w).view_as(weight), alpha=4 * beta)


def check_truncation(threshold: float) -> None:
    if not threshold > 0:
        raise UserError(f"--truncation is {threshold}; give a positive threshold such as 0.5 (smaller: less "
                        "varied, more typical samples)")


def truncated_normal(shape: tuple[int, ...], threshold: float, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> Tensor:
    """z ~ N(0, I) truncated to |z_i| ≤ threshold, by resampling every value beyond it until none
    is left (the truncation trick, Brock et al. 2019 §3.1). Not by rescaling or clamping: those
    give another distribution (a scaled normal, or mass piled up at ±threshold)."""
    check_truncation(threshold)
    z = torch.randn(shape, generator=generator, device=device)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=device)
        outside = z.abs() > threshold
    return z
