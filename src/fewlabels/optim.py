"""What every trainer does to its optimiser and weights between updates, written once: the
linear learning-rate decay and the exponential (Polyak) average of weights with its warm-up.
Used by the GAN, diffusion and semi-supervised trainers."""

from __future__ import annotations

import torch
from torch import Tensor


def linear_decay(step: int, horizon: int, final: float) -> float:
    """The learning-rate factor at update `step` (1-based): 1 at step 1, falling linearly to
    `final` at step `horizon` and held there past it."""
    return 1.0 - (1.0 - final) * min(1.0, (step - 1) / max(1, horizon - 1))


def set_learning_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def average_decay(updates: int, ema: float) -> float:
    """The decay of an exponential average after `updates` updates of the averaged model:
    min(ema, (1 + n)/(10 + n)), the warm-up of TensorFlow's ExponentialMovingAverage with
    num_updates, so that early on the average is not dominated by the initial weights; 0 (the
    average is the model itself) before the first update."""
    return 0.0 if updates < 1 else min(ema, (1 + updates) / (10 + updates))


@torch.no_grad()
def update_average_(average: list[Tensor], params: list[Tensor], decay: float) -> None:
    """average ← decay · average + (1 − decay) · params, in place, for lists of tensors."""
    torch._foreach_lerp_(average, params, 1 - decay)
