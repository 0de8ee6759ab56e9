"""The GAN players, one module per architecture, chosen by `model.name` through one table.

Each module has `build(model, data) -> (G, D)`, from the config's model section and the data (its
`dim` for points, its (C, H, W) `shape` for images); the trainer holds the game, not the
architectures. To add one, write a module with `build` and name it here (and in the config's
`model.name` choices).
"""

from __future__ import annotations

import importlib

from torch import nn

from fewlabels.gan.nets.common import batch_norms, spectral_norm_estimates_, standing_statistics_
from fewlabels.gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator, upsamplings
from fewlabels.gan.nets.mlp import ACTIVATIONS, mlp

ARCHITECTURES = {"mlp": "fewlabels.gan.nets.mlp", "dcgan": "fewlabels.gan.nets.dcgan",
                 "progan": "fewlabels.gan.nets.progan", "biggan": "fewlabels.gan.nets.biggan"}


def build_players(model, data) -> tuple[nn.Module, nn.Module]:
    """(G, D) of the architecture `model.name`; with `model.conditional`, G(z, y) and D(x, y): the
    architecture's own when its module says CONDITIONAL, else its networks wrapped by
    nets.conditional (the one conditional path every architecture opts into)."""
    module = importlib.import_module(ARCHITECTURES[model.name])
    if model.conditional and not getattr(module, "CONDITIONAL", False):
        from fewlabels.gan.nets.conditional import make_conditional
        return make_conditional(module.build, model, data)
    return module.build(model, data)


__all__ = ["ACTIVATIONS", "ARCHITECTURES", "DCGANDiscriminator", "DCGANGenerator", "batch_norms", "build_players",
           "mlp", "spectral_norm_estimates_", "standing_statistics_", "upsamplings"]
