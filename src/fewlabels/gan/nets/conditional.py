"""The conditional path that every architecture opts into (`model.conditional: true`): labels in
to G, labels to D. BigGAN's networks take labels natively; the others are wrapped here.

- G(z, y) = G'(z ⊕ e_G(y)): the class embedding concatenated to z (Mirza & Osindero 2014), G' the
  unconditional generator built for the longer input.
- D(x, y) = ψ(φ(x)) + ⟨e_D(y), φ(x)⟩: the projection discriminator (Miyato & Koyama 2018), φ the
  unconditional D up to its last linear layer ψ (its `features` and `head`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConcatGenerator(nn.Module):
    """G(z, y) = G'(z ⊕ embed(y)), with a learned embedding of `embed_dim` per class."""

    def __init__(self, generator: nn.Module, classes: int, embed_dim: int):
        super().__init__()
        self.generator, self.embed = generator, nn.Embedding(classes, embed_dim)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.generator(torch.cat([z, self.embed(y).to(z.dtype)], 1))

    def set_stage(self, level: int, alpha: float) -> None:  # ProGAN's growing, passed through
        self.generator.set_stage(level, alpha)

    @property
    def levels(self) -> int:
        return self.generator.levels


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩: the unconditional D's features φ and head ψ, plus the
    inner product of φ with a learned embedding of the class (the projection head of SN-GAN's
    conditional model and of BigGAN). Spectral norm (loss.constraint: sn) reaches the embedding too."""

    def __init__(self, discriminator: nn.Module, classes: int):
        super().__init__()
        self.discriminator = discriminator
        # Plain attributes (a tuple, bound methods), not modules: every layer stays registered once,
        # under `discriminator`.
        if isinstance(discriminator, nn.Sequential):  # an MLP: its layers but the last, then the last
            self._layers = tuple(discriminator)
            self._parts = (self._sequential_features, self._layers[-1])
        else:
            self._parts = (discriminator.features, discriminator.head)
        dim = self._parts[1].weight.shape[1]
        self.embed = nn.Embedding(classes, dim)
        nn.init.normal_(self.embed.weight, std=dim ** -0.5)

    def _sequential_features(self, x: Tensor) -> Tensor:
        for layer in self._layers[:-1]:
            x = layer(x)
        return x

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        features, head = self._parts
        h = features(x)
        return head(h) + (self.embed(y).to(h.dtype) * h).sum(1, keepdim=True)

    def set_stage(self, level: int, alpha: float) -> None:
        self.discriminator.set_stage(level, alpha)

    @property
    def levels(self) -> int:
        return self.discriminator.levels


def make_conditional(build, model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) of an unconditional architecture's `build`, wrapped to take labels: G built for
    z_dim + embed_dim inputs, D split into its features and head."""
    from dataclasses import replace

    G, D = build(replace(model, z_dim=model.z_dim + model.embed_dim), data)
    return ConcatGenerator(G, data.classes, model.embed_dim), ProjectionDiscriminator(D, data.classes)
