"""MLP players for points (the lecture's 2D mixtures, a user's (N, D) file)."""

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


def build(model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `data`'s D-dimensional points: z -> D and D -> one logit (or critic value)."""
    return (mlp(model.z_dim, data.dim, model.width, model.depth, model.activation),
            mlp(data.dim, 1, model.width, model.depth, model.activation))
