"""The two players: plain MLPs for low-dimensional data, DCGAN-style convolutional nets for images."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from fewlabels.distributed import BatchNorm2d
from fewlabels.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str = "relu") -> nn.Sequential:
    """in_dim -> [Linear(width) -> activation] x depth -> Linear(out_dim)."""
    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


# ---- images: DCGAN-style (Radford et al. 2016) ----------------------------------------------
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


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def standing_statistics_(net: nn.Module, batches: Iterable[Tensor]) -> None:
    """Replace the running statistics of every batch norm in `net` by its "standing statistics"
    (Brock et al. 2019): over K batches z_1..z_K, each layer's input is normalised by its batch's
    statistics, as in training, and

        running_mean = (1/K) Σ_k mean(x_k),   running_var = (1/K) Σ_k Var_unbiased(x_k)

    per channel, which is nn.BatchNorm2d's cumulative average (momentum=None) in train mode. It is
    computed with the layers in eval mode, each fed its batch's statistics by a hook, so that no
    layer takes the torchrun path of fewlabels.distributed.BatchNorm2d: rank 0 alone samples, and a
    collective there would wait for ranks that never come. `net` keeps its train/eval mode."""
    norms = batch_norms(net)
    sums = {m: [torch.zeros_like(m.running_mean), torch.zeros_like(m.running_var)] for m in norms}

    def use_batch_statistics(m: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        count = x.numel() // x.shape[1]
        sums[m][0] += mean
        sums[m][1] += var * count / (count - 1)  # stored unbiased, as nn.BatchNorm2d does
        m.running_mean.copy_(mean)  # train mode normalises by the biased batch variance
        m.running_var.copy_(var)

    hooks = [m.register_forward_pre_hook(use_batch_statistics) for m in norms]
    was_training, k = net.training, 0
    net.eval()
    try:
        for z in batches:
            net(z)
            k += 1
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    for m in norms:
        m.running_mean.copy_(sums[m][0] / k)
        m.running_var.copy_(sums[m][1] / k)
