"""The training objective: noise a clean batch to a random t in closed form, ask the network
what was added."""

from __future__ import annotations

import torch
from torch import Tensor

from fewlabels.diffusion.schedules import NoiseSchedule


def draw_noise(schedule: NoiseSchedule, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The randomness of one training batch: t ~ U{0, ..., T-1} and ε ~ N(0, I), one per image
    (drawn for the global batch under torchrun; each rank keeps its slice)."""
    t = torch.randint(schedule.T, (x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return t, noise


def simple_loss(model, schedule: NoiseSchedule, x0: Tensor, t: Tensor, noise: Tensor,
                prediction: str = "epsilon") -> Tensor:
    """L_simple = E_{t, x_0, ε} ||ε - ε_θ(√ᾱ_t x_0 + √(1 - ᾱ_t) ε, t)||²  (Ho et al. 2020, eq. 14),
    t ~ U{0, ..., T-1}, ε ~ N(0, I) (from `draw_noise`). With prediction "v" the target is
    v = √ᾱ_t ε - √(1 - ᾱ_t) x_0 instead (Salimans & Ho 2022). Mean over the batch and the data
    dimensions."""
    xt = schedule.q_sample(x0, t, noise)
    target = noise if prediction == "epsilon" else schedule.velocity(x0, t, noise)
    return torch.nn.functional.mse_loss(model(xt, t), target)
