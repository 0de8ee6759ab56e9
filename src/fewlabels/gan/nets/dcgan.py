"""DCGAN-style convolutional players for images (Radford et al. 2016)."""

from __future__ import annotations

from torch import nn

from fewlabels.distributed import BatchNorm2d
from fewlabels.errors import UserError


def upsamplings(side: int, where: str = "data") -> int:
    """How many 2x steps lead from a 4x4 (or 7x7) start to `side`: 8 -> 1, 28 -> 2, 32 -> 3."""
    k, s = 0, side
    while s > 7 and s % 2 == 0:
        s, k = s // 2, k + 1
    if s not in (4, 7) or k == 0:
        raise UserError(f"{where} has {side}x{side} images; the DCGAN networks need sides 4·2^k or 7·2^k "
                        "(8, 16, 28, 32, 64, ...)")
    return k


class DCGANGenerator(nn.Module):
    """z -> Linear, ReLU -> (width, s, s) -> k x [ConvTranspose 4x4 stride 2, BatchNorm, ReLU] -> Conv
    3x3 -> tanh: images in [-1, 1]. Channels halve at each doubling, down to `channels`. Under torchrun
    the batch norm's statistics are the global batch's (fewlabels.distributed.BatchNorm2d)."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], channels: int = 64):
        super().__init__()
        c_out, side = shape[0], shape[1]
        k = upsamplings(side)
        self.start, self.width = side >> k, channels * 2 ** k
        self.fc = nn.Sequential(nn.Linear(z_dim, self.width * self.start ** 2), nn.ReLU())
        layers, w = [], self.width
        for _ in range(k):
            layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), BatchNorm2d(w // 2), nn.ReLU()]
            w //= 2
        layers += [nn.Conv2d(w, c_out, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.fc(z).view(-1, self.width, self.start, self.start))


class DCGANDiscriminator(nn.Module):
    """x -> Conv 3x3, LeakyReLU 0.2 -> k x [Conv 4x4 stride 2, LeakyReLU 0.2] -> Linear -> one logit
    (or critic value). No batch norm: its cross-sample coupling breaks the gradient penalty and R1."""

    def __init__(self, shape: tuple[int, int, int], channels: int = 64):
        super().__init__()
        c_in, side = shape[0], shape[1]
        k = upsamplings(side)
        layers, w = [nn.Conv2d(c_in, channels, 3, 1, 1), nn.LeakyReLU(0.2)], channels
        for _ in range(k):
            layers += [nn.Conv2d(w, w * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            w *= 2
        layers += [nn.Flatten(), nn.Linear(w * (side >> k) ** 2, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def features(self, x):
        """φ(x): everything but the last linear layer (the conditional path's projection uses it)."""
        for layer in self.net[:-1]:
            x = layer(x)
        return x

    @property
    def head(self) -> nn.Linear:
        return self.net[-1]


def build(model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `data`'s (C, H, W) images at `model.channels`."""
    return DCGANGenerator(model.z_dim, data.shape, model.channels), DCGANDiscriminator(data.shape, model.channels)
