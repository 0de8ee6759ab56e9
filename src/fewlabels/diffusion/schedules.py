"""Noise schedules and the forward process, kept apart from any network (as diffusers does).

A schedule is the sequence β_1, ..., β_T; everything else follows from it:

    α_t = 1 - β_t,    ᾱ_t = ∏_{s<=t} α_s
    q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)                         (the forward process, closed form)
    q(x_{t-1} | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I)                   (the posterior)
        μ̃_t = √ᾱ_{t-1} β_t / (1 - ᾱ_t) · x_0 + √α_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · x_t
        β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t

Time is indexed t = 0, ..., T-1 in code (t = 0 is the paper's t = 1, the least noisy step),
as in diffusers; ᾱ_{-1} = 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fewlabels.errors import UserError


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """β_t rising linearly from β_1 = 1e-4 to β_T = 0.02 with T = 1000 (Ho et al. 2020).
    The endpoints are given for T = 1000; for other T they are rescaled by 1000/T so that the
    total noise added (and ᾱ_T ≈ 0) stays the same, as improved DDPM does."""
    scale = 1000 / T
    return torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """ᾱ_t = f(t)/f(0), f(t) = cos²(π/2 · (t/T + s)/(1 + s)) (Nichol & Dhariwal 2021);
    β_t = 1 - ᾱ_t/ᾱ_{t-1}, clipped at 0.999 to avoid a singularity at t = T."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


class NoiseSchedule:
    """β_t and everything derived from it, as float64 tables (cast when used)."""

    def __init__(self, betas: Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 1:
            raise UserError(f"a noise schedule needs at least one step; got {tuple(betas.shape)} betas")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise UserError(f"every β_t must lie in (0, 1); got values from {float(betas.min()):.4g} "
                            f"to {float(betas.max()):.4g}")
        self.betas = betas
        self.alphas = 1 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # β̃_t, the posterior variance; at t = 0 it is 0 (x_0 is then known exactly).
        self.posterior_variance = betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        self._cache: dict = {}

    @classmethod
    def make(cls, name: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        if name not in SCHEDULES:
            raise UserError(f"noise schedule {name!r} is unknown; valid: {', '.join(SCHEDULES)}")
        if T < 1:
            raise UserError(f"the number of diffusion steps T is {T}; it must be at least 1")
        if name == "linear":
            return cls(linear_betas(T, beta_start, beta_end))
        return cls(cosine_betas(T))

    @property
    def T(self) -> int:
        return len(self.betas)

    def table(self, name: str, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
        """A derived table (e.g. 'sqrt_alphas_cumprod') on `device`, computed once in float64."""
        key = (name, device, dtype)
        if key not in self._cache:
            self._cache[key] = _TABLES[name](self).to(device=device, dtype=dtype)
        return self._cache[key]

    def at(self, name: str, t: Tensor, ndim: int) -> Tensor:
        """table[t] shaped to broadcast over a batch with `ndim` dimensions."""
        v = self.table(name, t.device)[t]
        return v.reshape(-1, *([1] * (ndim - 1)))

    # ---- the forward process -----------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε, a draw from q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)."""
        return self.at("sqrt_alphas_cumprod", t, x0.ndim) * x0 + self.at("sqrt_one_minus", t, x0.ndim) * noise

    def q_posterior(self, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(μ̃_t(x_t, x_0), β̃_t) of q(x_{t-1} | x_t, x_0)."""
        n = x0.ndim
        mean = self.at("posterior_coef_x0", t, n) * x0 + self.at("posterior_coef_xt", t, n) * xt
        return mean, self.at("posterior_variance", t, n)

    # ---- what the network predicts, converted ------------------------------------------
    def x0_from_eps(self, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t."""
        n = xt.ndim
        return (xt - self.at("sqrt_one_minus", t, n) * eps) / self.at("sqrt_alphas_cumprod", t, n)

    def eps_from_x0(self, xt: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """ε = (x_t - √ᾱ_t x_0) / √(1 - ᾱ_t)."""
        n = xt.ndim
        return (xt - self.at("sqrt_alphas_cumprod", t, n) * x0) / self.at("sqrt_one_minus", t, n)

    def velocity(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """v = √ᾱ_t ε - √(1 - ᾱ_t) x_0 (Salimans & Ho 2022)."""
        n = x0.ndim
        return self.at("sqrt_alphas_cumprod", t, n) * noise - self.at("sqrt_one_minus", t, n) * x0

    def x0_from_v(self, xt: Tensor, t: Tensor, v: Tensor) -> Tensor:
        """x_0 = √ᾱ_t x_t - √(1 - ᾱ_t) v."""
        n = xt.ndim
        return self.at("sqrt_alphas_cumprod", t, n) * xt - self.at("sqrt_one_minus", t, n) * v


_TABLES = {
    "betas": lambda s: s.betas,
    "alphas_cumprod": lambda s: s.alphas_cumprod,
    "alphas_cumprod_prev": lambda s: s.alphas_cumprod_prev,
    "sqrt_alphas_cumprod": lambda s: s.alphas_cumprod.sqrt(),
    "sqrt_one_minus": lambda s: (1 - s.alphas_cumprod).sqrt(),
    "posterior_variance": lambda s: s.posterior_variance,
    "posterior_coef_x0": lambda s: s.betas * s.alphas_cumprod_prev.sqrt() / (1 - s.alphas_cumprod),
    "posterior_coef_xt": lambda s: (1 - s.alphas_cumprod_prev) * s.alphas.sqrt() / (1 - s.alphas_cumprod),
}
