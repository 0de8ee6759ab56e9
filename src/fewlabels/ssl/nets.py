"""The networks of Salimans et al. (2016, "Improved Techniques for Training GANs"), section 6.1
(MNIST, permutation invariant), and a small convolutional pair for 8-32 pixel images.

The classifier D gives K logits l_1..l_K; as the semi-supervised discriminator its fake class has
its logit fixed at 0 (losses.py), so nothing here is GAN-specific: the supervised baseline and
FixMatch train the very same network. `features` is D's last hidden layer, which G's
feature-matching loss compares.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from fewlabels.distributed import BatchNorm1d, BatchNorm2d  # torch's, over the global batch under torchrun


class GaussianNoise(nn.Module):
    """x + σ ε, ε ~ N(0, I), in training only (the paper's noise layers in D)."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma > 0 else x


class MLPClassifier(nn.Module):
    """noise(σ_in) → [weight-normed dense → ReLU → noise(σ_h)]… → weight-normed dense to K logits."""

    def __init__(self, in_dim: int, classes: int, hidden: list[int], input_noise: float, hidden_noise: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(input_noise)]
        width = in_dim
        for i, h in enumerate(hidden):
            if i:
                layers.append(GaussianNoise(hidden_noise))
            layers += [weight_norm(nn.Linear(width, h)), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.noise = GaussianNoise(hidden_noise)
        self.head = weight_norm(nn.Linear(width, classes))

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, the last hidden layer's activations)."""
        h = self.body(x)
        return self.head(self.noise(h)), h

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[0]


class ConvClassifier(nn.Module):
    """A small all-convolutional D (after the paper's CIFAR-10 network, narrower): weight-normed
    3x3 convolutions with leaky ReLU, two stride-2 stages with dropout between, global average
    pooling, and a weight-normed dense layer to K logits. `stem_stride` 2 makes the first
    convolution stride 2 as well, so the later layers see about a quarter of the positions (for
    28 px images on a CPU: 1.8x faster an update at width 16, docs/ssl.md)."""

    def __init__(self, channels_in: int, classes: int, width: int, input_noise: float, dropout: float,
                 stem_stride: int = 1):
        super().__init__()

        def conv(a: int, b: int, stride: int = 1) -> list[nn.Module]:
            return [weight_norm(nn.Conv2d(a, b, 3, stride, 1)), nn.LeakyReLU(0.2)]

        c = width
        self.body = nn.Sequential(
            GaussianNoise(input_noise),
            *conv(channels_in, c, stem_stride), *conv(c, c), *conv(c, c, 2), nn.Dropout(dropout),
            *conv(c, 2 * c), *conv(2 * c, 2 * c), *conv(2 * c, 2 * c, 2), nn.Dropout(dropout),
            *conv(2 * c, 2 * c), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = weight_norm(nn.Linear(2 * c, classes))

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.head(h), h

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[0]


class MLPGenerator(nn.Module):
    """z ~ U(0, 1)^d → [dense → batch norm → softplus]… → weight-normed dense → tanh (the paper's
    G, with tanh for images in [-1, 1] where it had a sigmoid for [0, 1])."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], hidden: list[int]):
        super().__init__()
        self.shape = shape
        layers: list[nn.Module] = []
        width = z_dim
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), BatchNorm1d(h), nn.Softplus()]
            width = h
        out = 1
        for s in shape:
            out *= s
        layers += [weight_norm(nn.Linear(width, out)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(len(z), *self.shape)


class ConvGenerator(nn.Module):
    """z → dense to 4c × H/4 × W/4 → two ×2 transposed convolutions with batch norm and ReLU →
    3x3 convolution → tanh (DCGAN-style)."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: int):
        super().__init__()
        C, H, W = shape
        if H % 4 or W % 4:
            raise ValueError(f"images of {H}x{W}: the convolutional generator needs sides divisible by 4")
        c = width
        self.start = (4 * c, H // 4, W // 4)
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * c * (H // 4) * (W // 4), bias=False),
                                BatchNorm1d(4 * c * (H // 4) * (W // 4)), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), BatchNorm2d(c), nn.ReLU(),
            weight_norm(nn.Conv2d(c, C, 3, 1, 1)), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(len(z), *self.start))


@torch.no_grad()
def data_dependent_init(D: nn.Module, x: Tensor) -> None:
    """Weight normalisation's data-dependent initialisation (Salimans & Kingma 2016), as the
    paper's official code runs it on 500 training images before training: every weight-normed
    layer y = g · (v · x) / ‖v‖ + b, in forward order, with the layers before it already set, gets

        g = 1 / σ,  b = -μ / σ     (μ, σ: mean and std of (v · x) / ‖v‖ over the batch and positions)

    so each unit starts with mean 0 and standard deviation 1 on real images (D in training mode:
    noise layers on, as in that code). That code then trains g in the output layer only:
    `fix_hidden_scales`."""
    layers = [m for m in D.modules() if parametrize.is_parametrized(m, "weight")]
    for m in layers:
        m.parametrizations.weight.original0.fill_(1.0)
        m.bias.zero_()

    def standardise(m: nn.Module, inputs, out: Tensor) -> Tensor:
        dims = [0, *range(2, out.dim())]
        shape = [1, -1] + [1] * (out.dim() - 2)
        mu, sd = out.mean(dims), out.var(dims, unbiased=False).add(1e-8).sqrt()
        g = m.parametrizations.weight.original0
        g.copy_((1 / sd).view_as(g))
        m.bias.copy_(-mu / sd)
        return (out - mu.view(shape)) / sd.view(shape)

    hooks = [m.register_forward_hook(standardise) for m in layers]
    was = D.training
    try:
        D.train()(x)
    finally:
        for h in hooks:
            h.remove()
        D.train(was)


def fix_hidden_scales(D: nn.Module) -> None:
    """Hold the scales g of D's hidden weight-normed layers fixed (not trained); the output
    layer's stay trainable."""
    for m in D.modules():
        if parametrize.is_parametrized(m, "weight") and m is not D.head:
            m.parametrizations.weight.original0.requires_grad_(False)


def build(model, shape: tuple[int, int, int], classes: int, with_generator: bool):
    """(D, G or None) for images of `shape` (C, H, W) and `classes` classes."""
    C, H, W = shape
    if model.name == "mlp":
        D = MLPClassifier(C * H * W, classes, list(model.d_hidden), model.input_noise, model.hidden_noise)
        G = MLPGenerator(model.z_dim, shape, list(model.g_hidden)) if with_generator else None
    else:
        D = ConvClassifier(C, classes, model.channels, model.input_noise, model.dropout, model.stem_stride)
        G = ConvGenerator(model.z_dim, shape, model.channels) if with_generator else None
    return D, G
