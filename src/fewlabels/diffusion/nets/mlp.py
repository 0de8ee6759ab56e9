"""The denoiser for low-dimensional data: an MLP told the time t through a sinusoidal embedding."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """A sinusoidal encoding of the integer time t with the Transformer's frequencies (Vaswani et
    al. 2017), sines then cosines concatenated (DDPM's layout, not interleaved):
    [sin(t ω_k), cos(t ω_k)] with ω_k = max_period^(-k/(dim/2)), k = 0..dim/2-1. (DDPM's own code
    divides by dim/2 - 1 instead: the highest frequency is ω_0 = 1 in both, its lower ones are
    slightly lower, and its lowest is exactly 1/max_period.) `dim` must be even."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class MLPDenoiser(nn.Module):
    """ε_θ(x_t, t) for points in R^dim: x and the embedded t are projected to `width`, added,
    then `depth` residual blocks (SiLU, Linear) and a linear read-out.

    Adding the time projection (instead of concatenating it once) lets every block see t
    through the residual stream; depth 3-4 at width 128 is plenty for 2D mixtures."""

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        self.time_dim = time_dim
        self.inp = nn.Linear(dim, width)
        self.time = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(width, width)) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.inp(x) + self.time(sinusoidal_embedding(t, self.time_dim))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
