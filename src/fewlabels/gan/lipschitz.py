"""Ways to keep the critic K-Lipschitz (WGAN's requirement) or D smooth (R1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float) -> None:
    """WGAN (Arjovsky et al. 2017, Algorithm 1): w <- clip(w, -c, c) after every critic update.
    Clipping bounds every weight, hence the critic's Lipschitz constant by some K(c)."""
    params = [p for p in module.parameters()]
    torch._foreach_clamp_min_(params, -c)
    torch._foreach_clamp_max_(params, c)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E_x̂[(||∇_x̂ f(x̂)||_2 - 1)^2],
    x̂ = ε x + (1 - ε) G(z), ε ~ U[0, 1] per sample (`eps`, shape (n,)). Multiply by λ (10 in the paper)."""
    eps = eps.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(d_real: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E_x[||∇_x D(x)||^2] on real data; multiply by γ/2.
    `real` must require grad and `d_real` = D(real) must come from it, so the forward is shared."""
    (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """SN-GAN (Miyato et al. 2018): W <- W / σ(W), σ(W) the largest singular value, estimated by one
    power iteration per forward. A linear layer is then 1-Lipschitz. For a convolution σ is that of
    the kernel reshaped to (out, in·k·k), as in the paper: an approximation that does not bound the
    convolution's own operator norm by 1. A conditional D's class embedding is normalised too (SN-GAN's
    projection discriminator); layers that already carry spectral norm (BigGAN's) are left as they are."""
    for name, child in module.named_children():
        if nn.utils.parametrize.is_parametrized(child, "weight"):
            continue
        if isinstance(child, nn.Linear | nn.Conv2d | nn.Embedding):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            add_spectral_norm(child)
    return module
