"""Image augmentations in torch (no torchvision), batched, drawn from an explicit generator so
they are part of a run's saved random state. Images are (N, C, H, W) in [-1, 1].

    weak(x)    a random shift of up to `shift` pixels each way (edges replicated), and a
               horizontal flip with probability 1/2 when `flip` (FixMatch's α)
    strong(x)  weak, then each of contrast, brightness and Gaussian noise with probability 1/2,
               then a cut-out of half the side (FixMatch's A: RandAugment-like, with Cutout always)
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=gen, device=device)


def shift(x: Tensor, s: int, gen: torch.Generator) -> Tensor:
    """Each image moved by (dy, dx) ∈ [-s, s]², its edge pixels repeated into the gap."""
    if s == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (s, s, s, s), mode="replicate")
    dy = torch.randint(0, 2 * s + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * s + 1, (n,), generator=gen, device=x.device)
    rows = (torch.arange(h, device=x.device)[None] + dy[:, None])[:, None, :, None].expand(n, c, h, w + 2 * s)
    cols = (torch.arange(w, device=x.device)[None] + dx[:, None])[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def weak(x: Tensor, s: int, flip: bool, gen: torch.Generator) -> Tensor:
    x = shift(x, s, gen)
    if flip:
        coin = torch.rand(len(x), 1, 1, 1, generator=gen, device=x.device) < 0.5
        x = torch.where(coin, x.flip(3), x)
    return x


def strong(x: Tensor, s: int, flip: bool, gen: torch.Generator) -> Tensor:
    x = weak(x, s, flip, gen)
    n, dev = len(x), x.device

    def coin() -> Tensor:
        return torch.rand(n, 1, 1, 1, generator=gen, device=dev) < 0.5

    mean = x.mean((1, 2, 3), keepdim=True)
    x = torch.where(coin(), (x - mean) * _uniform(n, 0.4, 1.6, gen, dev) + mean, x)  # contrast
    x = torch.where(coin(), x + _uniform(n, -0.4, 0.4, gen, dev), x)  # brightness
    x = torch.where(coin(), x + 0.15 * torch.randn(x.shape, generator=gen, device=dev), x)  # noise
    _, _, h, w = x.shape  # cut-out: half the side each way, centred anywhere (clipped at the edges), mid-grey (0)
    ch, cw = max(1, h // 2), max(1, w // 2)
    y0 = torch.randint(0, h, (n,), generator=gen, device=dev)[:, None, None, None] - ch // 2
    x0 = torch.randint(0, w, (n,), generator=gen, device=dev)[:, None, None, None] - cw // 2
    ys = torch.arange(h, device=dev)[None, None, :, None]
    xs = torch.arange(w, device=dev)[None, None, None, :]
    hole = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return torch.where(hole, torch.zeros((), device=dev), x).clamp(-1, 1)
