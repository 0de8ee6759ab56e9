"""Networks for low-dimensional data: plain MLPs for both players."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str = "relu") -> nn.Sequential:
    """in_dim -> [Linear(width) -> activation] x depth -> Linear(out_dim)."""
    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)
