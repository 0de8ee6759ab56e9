"""Progressive GAN (Karras et al. 2018): the lecture's picture of growing a GAN from 4x4 to the
full resolution, a new block at a time, each faded in.

Every block of every resolution exists from the start (the parameter set, the checkpoint and
the optimiser never change shape); `set_stage(level, alpha)` says which are in use. The stage is
a function of the number of images shown (`stage_at`), so a run resumed in the middle of a
fade-in continues bit for bit. The paper's ingredients:
  * fade-in: at level L with α < 1, G's output is (1 - α)·up(toRGB_{L-1}(h)) + α·toRGB_L(block_L(h))
    and D's input path blends fromRGB_{L-1}(down(x)) with block_L(fromRGB_L(x)) the same way;
  * equalised learning rate: weights drawn from N(0, 1) and scaled by gain/√fan_in at every call
    (He's gain √2; 1 for toRGB and D's output, √2/4 for G's first dense layer, as in the paper's
    code), so Adam's steps are the same size for every layer;
  * pixel normalisation in G: each pixel's feature vector divided by its RMS;
  * minibatch standard deviation in D's last block: one extra feature map, for each group of 4
    samples the mean over features and pixels of the per-feature std over the group (a signal
    against mode collapse);
  * the WGAN-GP loss with a drift term 0.001·E[D(x)²] (loss.drift) keeping D's output near 0;
  * the optimisers' moments reset when a fade-in starts and when it ends (the trainer's `_grow`,
    optim.reset_on_growth; the paper's code: reset_opt_for_new_lod).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewlabels.errors import UserError


class EqualizedConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.pad = gain / math.sqrt(c_in * kernel * kernel), kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class EqualizedLinear(nn.Module):
    def __init__(self, d_in: int, d_out: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.scale = gain / math.sqrt(d_in)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


MBSTD_GROUP = 4  # the paper's group size (its code: min(group_size, batch))


def minibatch_std(x: Tensor, group_size: int = MBSTD_GROUP) -> Tensor:
    """Append one feature map: the batch is split into groups of G = min(group_size, N) samples,
    and every sample gets its group's s = mean over features c and pixels (h, w) of
    σ_chw = √(Var_group(x_chw) + 1e-8). As in the paper's code σ is taken in float32 with the 1e-8
    inside the root: its derivatives stay finite where a feature is equal over the group. torch's
    std has a NaN second derivative there, which WGAN-GP takes.

    Groups are runs of consecutive samples (the official code strides: sample n joins group n mod
    N/G). The samples of a batch are i.i.d., so this changes nothing in distribution, and a group
    then stays inside one rank's shard under torchrun. A batch that G does not divide (a small
    shard) takes the largest group size dividing it."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        g = math.gcd(n, g)
    groups = x.float().reshape(n // g, g, c, h, w)
    s = torch.sqrt(groups.var(dim=1, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # one value per group
    feature = s.to(x.dtype).repeat_interleave(g).view(n, 1, 1, 1).expand(n, 1, h, w)
    return torch.cat([x, feature], dim=1)


def levels_for(side: int) -> int:
    """Number of doublings from 4x4 to `side` (a power of two from 8)."""
    k = int(round(math.log2(side / 4))) if side >= 4 else -1
    if k < 1 or 4 * 2 ** k != side:
        raise UserError(f"model.name progan grows from 4x4 by doublings, so the images must be 8, 16, 32, 64, ... "
                        f"pixels wide; these are {side}x{side}")
    return k


def widths(levels: int, channels: int) -> list[int]:
    """Channels per level, from 4x4 (level 0) up: `channels` at the top, doubling downwards to 8·channels."""
    return [min(channels * 2 ** (levels - k), channels * 8) for k in range(levels + 1)]


class Growing(nn.Module):
    """The stage both networks share: the top level in use and the fade-in weight α of its block.
    α is a tensor (not saved: the stage is a function of the images shown) so that a compiled
    network reads it as data; as a Python float it would be a constant, and every new α of a
    fade-in would recompile."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels
        self.register_buffer("alpha", torch.ones(()), persistent=False)
        self.set_stage(levels, 1.0)

    def set_stage(self, level: int, alpha: float) -> None:
        self.level, self.fading = level, alpha < 1
        self.alpha.fill_(alpha)


class ProGenerator(Growing):
    def __init__(self, z_dim: int, shape: tuple[int, int, int], channels: int = 32):
        super().__init__(levels_for(shape[1]))
        w = widths(self.levels, channels)
        self.z_dim, self.w0 = z_dim, w[0]
        self.fc = EqualizedLinear(z_dim, w[0] * 16, gain=math.sqrt(2) / 4)
        self.conv0 = EqualizedConv(w[0], w[0], 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv(w[k - 1], w[k], 3), EqualizedConv(w[k], w[k], 3)])
            for k in range(1, self.levels + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv(w[k], shape[0], 1, gain=1.0) for k in range(self.levels + 1))

    def forward(self, z: Tensor) -> Tensor:
        h = lrelu(self.fc(pixel_norm(z))).view(-1, self.w0, 4, 4)
        h = pixel_norm(lrelu(self.conv0(pixel_norm(h))))
        previous = None
        for k in range(1, self.level + 1):
            if k == self.level and self.fading:
                previous = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            for conv in self.blocks[k - 1]:
                h = pixel_norm(lrelu(conv(h)))
        out = self.to_rgb[self.level](h)
        if previous is not None:  # fade-in: the new block's output blended with the upsampled old one
            old = F.interpolate(self.to_rgb[self.level - 1](previous), scale_factor=2, mode="nearest")
            out = old + self.alpha * (out - old)
        return out


class ProDiscriminator(Growing):
    def __init__(self, shape: tuple[int, int, int], channels: int = 32):
        super().__init__(levels_for(shape[1]))
        w = widths(self.levels, channels)
        self.from_rgb = nn.ModuleList(EqualizedConv(shape[0], w[k], 1) for k in range(self.levels + 1))
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv(w[k], w[k], 3), EqualizedConv(w[k], w[k - 1], 3)])
            for k in range(1, self.levels + 1))
        self.conv0 = EqualizedConv(w[0] + 1, w[0], 3)
        self.fc1 = EqualizedLinear(w[0] * 16, w[0])
        self.fc2 = EqualizedLinear(w[0], 1, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.features(x))

    @property
    def head(self) -> nn.Module:
        return self.fc2

    def features(self, x: Tensor) -> Tensor:
        """φ(x): everything but the last linear layer (the conditional path's projection uses it)."""
        h = lrelu(self.from_rgb[self.level](x))
        for k in range(self.level, 0, -1):
            for conv in self.blocks[k - 1]:
                h = lrelu(conv(h))
            h = F.avg_pool2d(h, 2)
            if k == self.level and self.fading:  # fade-in: blend with the old input path
                old = lrelu(self.from_rgb[k - 1](F.avg_pool2d(x, 2)))
                h = old + self.alpha * (h - old)
        h = lrelu(self.conv0(minibatch_std(h)))
        return lrelu(self.fc1(h.flatten(1)))


def stage_at(images: int, levels: int, phase_images: int) -> tuple[int, float]:
    """(level, α) after `images` real images: level 0 is trained for one phase, then every
    level fades in over one phase (α from 0 to 1) and is trained at α = 1 for one more."""
    if images < phase_images:
        return 0, 1.0
    k, into = divmod(images - phase_images, 2 * phase_images)
    level = k + 1
    if level > levels:
        return levels, 1.0
    return level, min(1.0, into / phase_images)


def real_at_stage(x: Tensor, level: int, alpha: float, levels: int) -> Tensor:
    """Real images shown to D at this stage: downsampled to the level's resolution and, during a
    fade-in, blended with their lower-resolution version as G's output is."""
    factor = 2 ** (levels - level)
    low = F.avg_pool2d(x, factor) if factor > 1 else x
    if alpha < 1:
        older = F.interpolate(F.avg_pool2d(low, 2), scale_factor=2, mode="nearest")
        low = older + alpha * (low - older)
    return low


def build(model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) with every level from 4x4 to `data`'s side; the trainer sets the stage."""
    return ProGenerator(model.z_dim, data.shape, model.channels), ProDiscriminator(data.shape, model.channels)
