"""BigGAN's networks (Brock et al. 2019), sized by a width multiplier (`model.channels`, BigGAN's
ch) and the data's resolution; the reference is ajbrock/BigGAN-PyTorch (its 32x32 architecture).

Generator: z is split into one chunk per residual block plus one for the first linear layer
(hierarchical latent). The first chunk goes through a linear layer to a (4ch, s, s) map (s = 4 or 7);
each block upsamples 2x, and its two class-conditional batch norms take gains and biases as linear
projections of [shared(y), z_chunk]: one class embedding (`model.embed_dim`, 128 in the paper)
shared by every block. Then BN, ReLU, a 3x3 convolution to the image's channels and tanh.

Discriminator: residual blocks (the first without pre-activation) that downsample 2x down to s, one
more at s, ReLU, a sum over positions: φ(x); then the projection head ψ(φ) + ⟨embed(y), φ⟩.

Both: spectral norm on every convolution, linear layer and D's class embedding; orthogonal
initialisation; a self-attention block (SA-GAN) after the block whose output has side
`model.attention` (0: none). Channels stay at 4ch at every resolution, as in the 32x32 reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from fewlabels.distributed import BatchNorm2d
from fewlabels.errors import UserError
from fewlabels.gan.nets.dcgan import upsamplings

CONDITIONAL = True  # these networks take labels themselves (nets.build_players does not wrap them)


def sn(module: nn.Module) -> nn.Module:
    """Orthogonal initialisation (BigGAN's G_init/D_init 'ortho'), then spectral norm."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module, eps=1e-6)


def conv(c_in: int, c_out: int, kernel: int = 3) -> nn.Module:
    return sn(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2))


class ConditionalBatchNorm(nn.Module):
    """y = (1 + γ(c)) · BN(x) + β(c), BN without learned affine, γ and β linear in the conditioning
    vector c = [shared(y), z_chunk] (spectrally normalised, no bias: at initialisation the gain is 1
    and the bias 0). Under torchrun the statistics are the global batch's."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = BatchNorm2d(channels, affine=False)
        self.gain = sn(nn.Linear(cond_dim, channels, bias=False))
        self.bias = sn(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = (1 + self.gain(c)).to(x.dtype)[:, :, None, None]
        return self.norm(x) * gain + self.bias(c).to(x.dtype)[:, :, None, None]


class SelfAttention(nn.Module):
    """SA-GAN (Zhang et al. 2019) as BigGAN uses it: θ, φ (C/8 channels) and g (C/2) by 1x1
    convolutions, φ and g max-pooled 2x; β = softmax(θᵀφ) over positions; x + γ·o(g βᵀ) with γ
    learned from 0, so the block starts as the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.theta, self.phi = conv(channels, channels // 8, 1), conv(channels, channels // 8, 1)
        self.g, self.o = conv(channels, channels // 2, 1), conv(channels // 2, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # (n, c/8, hw)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # (n, c/8, hw/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # (n, c/2, hw/4)
        beta = torch.softmax(theta.transpose(1, 2) @ phi, -1)  # (n, hw, hw/4)
        o = self.o((g @ beta.transpose(1, 2)).view(n, c // 2, h, w))
        return x + self.gamma * o


class GBlock(nn.Module):
    """CBN, ReLU, upsample 2x, conv 3x3, CBN, ReLU, conv 3x3; plus upsample and a 1x1 conv on the
    shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(c_in, cond_dim), ConditionalBatchNorm(c_out, cond_dim)
        self.conv1, self.conv2 = conv(c_in, c_out), conv(c_out, c_out)
        self.shortcut = conv(c_in, c_out, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """[ReLU,] conv 3x3, ReLU, conv 3x3, [avg-pool 2x]; the shortcut a 1x1 conv (before the pool with
    pre-activation, after it without, as in BigGAN-PyTorch)."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, preactivation: bool):
        super().__init__()
        self.conv1, self.conv2 = conv(c_in, c_out), conv(c_out, c_out)
        self.shortcut = conv(c_in, c_out, 1) if (c_in != c_out or downsample) else None
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.shortcut is not None:
            if self.preactivation:
                s = self.shortcut(s)
            if self.downsample:
                s = F.avg_pool2d(s, 2)
            if not self.preactivation:
                s = self.shortcut(s)
        return h + s


class BigGANGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple[int, int, int], classes: int, channels: int = 16,
                 embed_dim: int = 128, attention: int = 0):
        super().__init__()
        side = shape[1]
        blocks = upsamplings(side, "the data")
        if z_dim % (blocks + 1):
            raise UserError(f"model.z_dim is {z_dim} but BigGAN's hierarchical latent splits z into {blocks + 1} "
                            f"equal chunks at {side}x{side} (one per block and one for the first layer); use a "
                            f"multiple of {blocks + 1}, e.g. {(blocks + 1) * max(1, round(z_dim / (blocks + 1)))}")
        self.chunk, self.start, self.width = z_dim // (blocks + 1), side >> blocks, 4 * channels
        self.shared = nn.Embedding(classes, embed_dim)  # one class embedding for every block (not normalised)
        nn.init.orthogonal_(self.shared.weight)
        self.linear = sn(nn.Linear(self.chunk, self.width * self.start ** 2))
        cond = embed_dim + self.chunk
        self.blocks = nn.ModuleList(GBlock(self.width, self.width, cond) for _ in range(blocks))
        sides = [self.start << (k + 1) for k in range(blocks)]
        self.attention = nn.ModuleDict({str(k): SelfAttention(self.width)
                                        for k, s in enumerate(sides) if s == attention})
        self.out_norm = BatchNorm2d(self.width)
        self.out = conv(self.width, shape[0])

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        chunks = z.split(self.chunk, 1)
        shared = self.shared(y).to(z.dtype)
        h = self.linear(chunks[0]).view(-1, self.width, self.start, self.start)
        for k, block in enumerate(self.blocks):
            h = block(h, torch.cat([shared, chunks[k + 1]], 1))
            if str(k) in self.attention:
                h = self.attention[str(k)](h)
        return torch.tanh(self.out(F.relu(self.out_norm(h))))


class BigGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], classes: int, channels: int = 16, attention: int = 0):
        super().__init__()
        side, width = shape[1], 4 * channels
        downs = upsamplings(side, "the data")
        c_ins = [shape[0]] + [width] * downs
        self.blocks = nn.ModuleList(DBlock(c, width, downsample=k < downs, preactivation=k > 0)
                                    for k, c in enumerate(c_ins))
        sides = [side >> min(k + 1, downs) for k in range(downs + 1)]
        self.attention = nn.ModuleDict({str(k): SelfAttention(width) for k, s in enumerate(sides)
                                        if s == attention and k < downs})
        self.head = sn(nn.Linear(width, 1))
        self.embed = sn(nn.Embedding(classes, width))

    def features(self, x: Tensor) -> Tensor:
        h = x
        for k, block in enumerate(self.blocks):
            h = block(h)
            if str(k) in self.attention:
                h = self.attention[str(k)](h)
        return F.relu(h).sum((2, 3))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.features(x)
        return self.head(h) + (self.embed(y).to(h.dtype) * h).sum(1, keepdim=True)


def check_attention(side: int, attention: int) -> None:
    sides, s = [], side
    while s > 7 and s % 2 == 0:
        sides.append(s)
        s //= 2
    if attention and attention not in sides:
        raise UserError(f"model.attention is {attention} but a {side}x{side} BigGAN has blocks at sides "
                        f"{', '.join(map(str, sorted(sides)))}; use one of them, or 0 for no self-attention")


def build(model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `data`'s labelled (C, H, W) images."""
    check_attention(data.shape[1], model.attention)
    classes = data.classes
    return (BigGANGenerator(model.z_dim, data.shape, classes, model.channels, model.embed_dim, model.attention),
            BigGANDiscriminator(data.shape, classes, model.channels, model.attention))
