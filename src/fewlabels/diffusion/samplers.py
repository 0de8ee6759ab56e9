"""The reverse process: from x_T ~ N(0, I) back to data, step by step.

Both samplers are generators that yield (t, x_t): first the start x_T, then the state after
every step, ending with x_0, so a caller can keep the whole trajectory (the reverse strip) or
only the end (`last`). Yielded t is the paper's time (T, ..., 0); the network is called with the
code's index t - 1 (see schedules.py).

The network's output is read through `denoise`, so a sampler does not care whether the model
predicts ε or v.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from fewlabels.diffusion.schedules import NoiseSchedule

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t, t) -> ε̂ or v̂


def denoise(model: Model, schedule: NoiseSchedule, xt: Tensor, t: Tensor, prediction: str,
            clip: float | None = None) -> tuple[Tensor, Tensor]:
    """(x̂_0, ε̂) from one network call. With `clip`, x̂_0 is clipped to [-clip, clip] and ε̂
    recomputed from it (as DDPM does for images, whose pixels lie in [-1, 1])."""
    out = model(xt, t)
    if prediction == "epsilon":
        eps, x0 = out, schedule.x0_from_eps(xt, t, out)
    else:  # "v"
        x0 = schedule.x0_from_v(xt, t, out)
        eps = schedule.eps_from_x0(xt, t, x0)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = schedule.eps_from_x0(xt, t, x0)
    return x0, eps


def ddpm_reverse(model: Model, schedule: NoiseSchedule, x: Tensor, generator: torch.Generator,
                 prediction: str = "epsilon", variance: str = "small",
                 clip: float | None = None) -> Iterator[tuple[int, Tensor]]:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2), T network calls:

        x_{t-1} = μ̃_t(x_t, x̂_0(x_t, t)) + σ_t z,   z ~ N(0, I),   z = 0 at the last step

    with σ_t² = β̃_t ("small", the posterior variance; optimal when x_0 is a point) or
    σ_t² = β_t ("beta", optimal when x_0 ~ N(0, I); the DDPM paper's CIFAR-10 FID used it).
    The paper found both similar on images; we default to "small", which is what the posterior
    q(x_{t-1} | x_t, x_0) has and what is sharper on concentrated 2D data (measured in
    docs/diffusion.md)."""
    yield schedule.T, x
    for i in reversed(range(schedule.T)):
        t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
        x0, _ = denoise(model, schedule, x, t, prediction, clip)
        mean, post_var = schedule.q_posterior(x0, x, t)
        if i > 0:
            var = post_var if variance == "small" else schedule.at("betas", t, x.ndim)
            x = mean + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            x = mean
        yield i, x


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down, evenly spaced and always starting at T-1 ("trailing"
    spacing): the first step then starts from pure noise, which DDIM's original "leading"
    spacing (0, T/steps, ...) misses for few steps (Lin et al. 2024)."""
    steps = min(steps, T)
    return sorted({int(round(T - k * T / steps)) - 1 for k in range(steps)}, reverse=True)


def ddim_reverse(model: Model, schedule: NoiseSchedule, x: Tensor, generator: torch.Generator,
                 steps: int = 50, eta: float = 0.0, prediction: str = "epsilon",
                 clip: float | None = None) -> Iterator[tuple[int, Tensor]]:
    """DDIM (Song et al. 2021, eq. 12) on a subsequence τ of the timesteps, from τ_i to τ_{i-1}:

        x_prev = √ᾱ_prev x̂_0 + √(1 - ᾱ_prev - σ²) ε̂ + σ z,
        σ = η √((1 - ᾱ_prev)/(1 - ᾱ_t)) √(1 - ᾱ_t/ᾱ_prev)

    η = 0 is deterministic (an ODE); η = 1 with every step is DDPM with σ² = β̃_t.
    ᾱ_prev = 1 after the last step, so x is then x̂_0."""
    abar = schedule.table("alphas_cumprod", torch.device("cpu"), torch.float64)
    taus = ddim_timesteps(schedule.T, steps)
    yield schedule.T, x
    for k, i in enumerate(taus):
        t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
        x0, eps = denoise(model, schedule, x, t, prediction, clip)
        a_t = float(abar[i])
        a_prev = float(abar[taus[k + 1]]) if k + 1 < len(taus) else 1.0
        sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x = np.sqrt(a_prev) * x0 + np.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        yield (taus[k + 1] + 1 if k + 1 < len(taus) else 0), x


def last(steps: Iterator[tuple[int, Tensor]]) -> Tensor:
    """Run a reverse process to the end; return x_0."""
    return deque(steps, maxlen=1)[0][1]
