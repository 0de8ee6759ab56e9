"""A small U-Net denoiser for images (the DDPM architecture, scaled down): residual blocks with
GroupNorm and the time embedding added inside, self-attention at the lowest resolution, skip
connections from each encoder block to its decoder twin."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewlabels.diffusion.nets.mlp import sinusoidal_embedding


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; add the projected time embedding; GroupNorm, SiLU, dropout, conv;
    plus the (1x1-projected) input."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the H·W positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class UNet(nn.Module):
    """ε_θ(x_t, t) for images (B, C, H, W); H and W must be divisible by 2^(len(mults) - 1).

    Level i works at resolution H/2^i with `channels * mults[i]` channels and `blocks` residual
    blocks; attention follows each block of the lowest level and sits in the middle.

    The time t is embedded by `sinusoidal_embedding(t, C)` with C = `channels`: the C/2 sines, then
    the C/2 cosines, of t·ω_k with ω_k = 10000^(-k/(C/2)), k = 0..C/2-1; then Linear, SiLU, Linear to
    4C. These are the Transformer's frequencies (PE(t, 2i) = sin(t / 10000^(2i/C)), PE(t, 2i+1) =
    cos(t / 10000^(2i/C)), Vaswani et al. 2017), concatenated rather than interleaved (a fixed
    permutation, immaterial before a Linear layer); DDPM's code concatenates the same way but takes
    ω_k = 10000^(-k/(C/2 - 1))."""

    def __init__(self, in_channels: int = 1, channels: int = 32, mults: tuple[int, ...] = (1, 2),
                 blocks: int = 1, attention: bool = True, dropout: float = 0.0):
        super().__init__()
        self.channels, t_dim = channels, 4 * channels
        self.time = nn.Sequential(nn.Linear(channels, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        lowest = len(mults) - 1
        self.down, skips, c = nn.ModuleList(), [channels], channels
        for level, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(_Stage(ResBlock(c, channels * m, t_dim, dropout), attention and level == lowest))
                c = channels * m
                skips.append(c)
            if level != lowest:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, t_dim, dropout), Attention(c) if attention else nn.Identity(),
                                  ResBlock(c, c, t_dim, dropout)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(_Stage(ResBlock(c + skips.pop(), channels * m, t_dim, dropout),
                                      attention and level == lowest))
                c = channels * m
            if level != 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.time(sinusoidal_embedding(t, self.channels))
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, _Stage) else layer(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], 1), temb) if isinstance(layer, _Stage) else layer(h)
        return self.out(h)


class _Stage(nn.Module):
    """A residual block, optionally followed by attention."""

    def __init__(self, block: ResBlock, attention: bool):
        super().__init__()
        self.block = block
        self.attn = Attention(block.conv2.out_channels) if attention else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        return self.attn(self.block(x, temb))
