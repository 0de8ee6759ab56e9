"""The lecture's theory, made numerical.

Theorem 1 of Goodfellow et al. (2014): for a fixed generator G the best
discriminator is

    D*_G(x) = p_data(x) / (p_data(x) + p_g(x)),

and plugging it into the value function gives the virtual training criterion

    C(G) = E_{x~p_data}[log D*_G(x)] + E_{x~p_g}[log(1 - D*_G(x))]
         = -log 4 + 2 JSD(p_data || p_g),

whose global minimum -log 4 is reached if and only if p_g = p_data. Here the
densities are isotropic Gaussian mixtures evaluated on a regular grid and every
expectation is a midpoint-rule sum, so both sides of the identity can be
compared to machine-level precision (``theorem1_check``); ``train_discriminator``
shows that a real, trained discriminator approaches D*_G.

Example 1 of the WGAN paper (Arjovsky, Chintala & Bottou 2017): P_0 is the law
of (0, Z) and P_theta the law of (theta, Z), Z ~ U[0, 1]. Two parallel segments
never overlap unless theta = 0, so JS, KL and TV jump while W = |theta| is
continuous and has a useful gradient (``parallel_lines``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from fewlabels.gan.losses import minimax_discriminator_loss

LOG4 = float(np.log(4.0))
LOG2 = float(np.log(2.0))

# A mixture is (means (K, d) or (K,), stds (K,), weights (K,)).
Mixture = tuple[Sequence, Sequence, Sequence]


# --------------------------------------------------------------------------- densities
def _as_means(means, dim: int) -> np.ndarray:
    """Means as a (K, d) array; a flat list is read as K one-dimensional means."""
    m = np.asarray(means, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[1] != dim:
        raise ValueError(
            f"means have dimension {m.shape[1]}, points have dimension {dim}"
        )
    return m


def mixture_pdf(points: np.ndarray, means, stds, weights) -> np.ndarray:
    """Density of an isotropic Gaussian mixture at ``points`` of shape (N, d):

        p(x) = sum_k w_k (2 pi s_k^2)^(-d/2) exp(-|x - mu_k|^2 / (2 s_k^2)),

    with the weights w_k normalised to sum to 1. Returns shape (N,).
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    d = x.shape[1]
    mu = _as_means(means, d)
    s = np.asarray(stds, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if not (len(mu) == len(s) == len(w)):
        raise ValueError(
            "means, stds and weights must have the same number of components"
        )
    w = w / w.sum()
    sq = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)  # (N, K)
    norm = (2.0 * np.pi * s**2) ** (-d / 2.0)
    return (w * norm * np.exp(-sq / (2.0 * s**2))).sum(-1)


def sample_mixture(
    n: int, means, stds, weights, generator: torch.Generator | None = None
) -> Tensor:
    """n samples of the mixture of ``mixture_pdf``: pick k ~ Cat(w), then x = mu_k + s_k eps,
    eps ~ N(0, I). Returns a float32 tensor of shape (n, d)."""
    s = torch.as_tensor(
        np.asarray(stds, dtype=np.float64).reshape(-1), dtype=torch.float32
    )
    m = np.asarray(means, dtype=np.float64)
    mu = torch.as_tensor(m[:, None] if m.ndim == 1 else m, dtype=torch.float32)
    w = torch.as_tensor(
        np.asarray(weights, dtype=np.float64).reshape(-1), dtype=torch.float32
    )
    k = torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)
    eps = torch.randn(n, mu.shape[1], generator=generator)
    return mu[k] + s[k, None] * eps


def grid(lo: float, hi: float, n: int, dim: int) -> tuple[np.ndarray, float]:
    """Midpoints of a regular grid of n cells per axis on [lo, hi]^dim.

    Quadrature: E_p[f] ~= sum_i p(x_i) f(x_i) * cell, with cell = ((hi - lo) / n)^dim.
    Returns (points of shape (n^dim, dim), cell volume). Points vary fastest along
    the last axis, so ``f(points).reshape((n,) * dim)`` is the image of f.
    """
    h = (hi - lo) / n
    axis = lo + h * (np.arange(n) + 0.5)
    mesh = np.meshgrid(*([axis] * dim), indexing="ij")
    points = np.stack([m.reshape(-1) for m in mesh], axis=-1)
    return points, float(h**dim)


# --------------------------------------------------------------------------- Theorem 1
def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """D*_G(x) = p_data(x) / (p_data(x) + p_g(x))   (Goodfellow et al. 2014, Prop. 1).

    Where both densities are 0 the ratio is undefined (and irrelevant to C(G));
    we define D* = 1/2 there, the value of a discriminator that cannot tell.
    """
    p = np.asarray(p_data, dtype=np.float64)
    q = np.asarray(p_g, dtype=np.float64)
    s = p + q
    return np.divide(p, s, out=np.full(np.broadcast(p, q).shape, 0.5), where=s > 0)


def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pointwise p log(p / q), with 0 log(0 / q) = 0 and p log(p / 0) = +inf for p > 0."""
    out = np.zeros(np.broadcast(p, q).shape)
    pos = p > 0
    with np.errstate(divide="ignore"):
        out[pos] = p[pos] * (np.log(p[pos]) - np.log(q[pos]))
    return out


def virtual_training_criterion(
    p_data: np.ndarray, p_g: np.ndarray, cell: float
) -> float:
    """C(G) = E_{p_data}[log D*_G] + E_{p_g}[log(1 - D*_G)], by quadrature on a grid.

    With D* = p_data / (p_data + p_g) and 1 - D* = p_g / (p_data + p_g) the logs are
    taken as log p - log(p_data + p_g) (no cancellation in 1 - D* where p_g << p_data);
    terms whose weighting density is 0 contribute 0.
    """
    p = np.asarray(p_data, dtype=np.float64)
    q = np.asarray(p_g, dtype=np.float64)
    s = p + q
    # p log D* = p log(p / s) and q log(1 - D*) = q log(q / s): both are "x log(x / s)".
    return float((_xlogy_ratio(p, s).sum() + _xlogy_ratio(q, s).sum()) * cell)


def kl(p: np.ndarray, q: np.ndarray, cell: float) -> float:
    """KL(p || q) = E_p[log(p / q)] = sum_i p_i log(p_i / q_i) * cell   (natural log).

    Points where p = 0 contribute 0; a point where p > 0 and q = 0 makes it +inf.
    """
    return float(
        _xlogy_ratio(np.asarray(p, np.float64), np.asarray(q, np.float64)).sum() * cell
    )


def jensen_shannon(p: np.ndarray, q: np.ndarray, cell: float) -> float:
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2   (natural log,
    so 0 <= JSD <= log 2)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return 0.5 * kl(p, m, cell) + 0.5 * kl(q, m, cell)


def default_mixtures(dim: int = 1) -> tuple[Mixture, Mixture]:
    """The fixed (data, generator) pair of Gaussian mixtures used by the lecture's checks.

    The data is bimodal; the generator is a "mode-averaging" guess that puts too much
    mass between the modes, so D* ranges well away from 1/2 on both sides.
    """
    if dim == 1:
        data = ([-2.0, 1.5], [0.5, 0.7], [0.4, 0.6])
        gen = ([-0.5, 2.0], [1.0, 0.6], [0.7, 0.3])
    elif dim == 2:
        data = (
            [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.0]],
            [0.5, 0.7, 0.6],
            [0.3, 0.4, 0.3],
        )
        gen = ([[0.0, 0.0], [2.0, 1.5]], [1.2, 0.6], [0.7, 0.3])
    else:
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    return data, gen


def theorem1_check(
    dim: int = 1, lo: float = -10.0, hi: float = 10.0, n: int | None = None
) -> dict:
    """Both claims of Theorem 1 on a grid, for the ``default_mixtures(dim)`` pair:

        identity_error = |C(G) - (-log 4 + 2 JSD(p_data || p_g))|,
        equality_error = |C(G) + log 4|   at p_g = p_data.

    (On a grid the identity holds up to log 2 * |mass(p_data) + mass(p_g) - 2|,
    so both errors measure how well the grid holds the mass.) ``n`` is the number
    of cells per axis (default 4000 in 1D, 400 in 2D, cell side 0.005 / 0.05).
    Returns JSON-serialisable numbers.
    """
    if n is None:
        n = 4000 if dim == 1 else 400
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(dim)
    points, cell = grid(lo, hi, n, dim)
    p_data = mixture_pdf(points, dm, ds, dw)
    p_g = mixture_pdf(points, gm, gs, gw)
    c = virtual_training_criterion(p_data, p_g, cell)
    jsd = jensen_shannon(p_data, p_g, cell)
    c_eq = virtual_training_criterion(p_data, p_data, cell)
    return {
        "dim": int(dim),
        "n_per_axis": int(n),
        "n_points": len(points),
        "lo": float(lo),
        "hi": float(hi),
        "cell": float(cell),
        "mass_data": float(p_data.sum() * cell),
        "mass_g": float(p_g.sum() * cell),
        "C": c,
        "JSD": jsd,
        "minus_log4_plus_2JSD": -LOG4 + 2.0 * jsd,
        "identity_error": abs(c - (-LOG4 + 2.0 * jsd)),
        "C_at_equality": c_eq,
        "equality_error": abs(c_eq + LOG4),
        "KL_data_g": kl(p_data, p_g, cell),
        "KL_g_data": kl(p_g, p_data, cell),
    }


# --------------------------------------------------------------------------- WGAN Example 1
def parallel_lines(theta: np.ndarray) -> dict[str, np.ndarray]:
    """Distances between P_0 = law of (0, Z) and P_theta = law of (theta, Z), Z ~ U[0, 1]
    (Arjovsky et al. 2017, Example 1), in closed form:

        W(P_0, P_theta)  = |theta|
        JS(P_0, P_theta) = log 2 if theta != 0, else 0
        KL(P_theta || P_0) = KL(P_0 || P_theta) = +inf if theta != 0, else 0
        TV(P_0, P_theta) = 1 if theta != 0, else 0

    Only W is continuous in theta; JS is flat away from 0, so its gradient is 0.
    """
    t = np.asarray(theta, dtype=np.float64)
    off = t != 0
    return {
        "theta": t,
        "W": np.abs(t),
        "JS": np.where(off, LOG2, 0.0),
        "KL": np.where(off, np.inf, 0.0),
        "TV": np.where(off, 1.0, 0.0),
    }


# --------------------------------------------------------------------------- a real D
def make_discriminator(dim: int, width: int = 64) -> nn.Module:
    """A small MLP x -> logit l(x), D(x) = sigmoid(l(x)); input (n, dim), output (n,)."""
    return nn.Sequential(
        nn.Linear(dim, width),
        nn.SiLU(),
        nn.Linear(width, width),
        nn.SiLU(),
        nn.Linear(width, 1),
        nn.Flatten(0),
    )


def train_discriminator(
    sample_data: Callable[[int], Tensor],
    sample_g: Callable[[int], Tensor],
    steps: int = 1500,
    batch: int = 512,
    width: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Module:
    """Train D against a *fixed* generator: maximise V(D, G) = E_{p_data}[log D] + E_{p_g}[log(1 - D)]
    (minimise ``minimax_discriminator_loss``) with Adam, the learning rate decayed by cosine
    annealing to 0 so the final model averages out the minibatch noise.

    The pointwise maximiser of V is D*_G, so sigmoid(model(x)) approaches
    ``optimal_discriminator(p_data, p_g)`` where the densities have mass.
    The samplers are callables n -> float tensor (n, d). Everything (the init and any
    sampler drawing from torch's global RNG) is seeded by ``seed``, inside a forked RNG
    state so the caller's global RNG is left untouched. Returns the model in eval mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dim = sample_data(1).shape[1]
        model = make_discriminator(dim, width)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
        model.train()
        for _ in range(steps):
            x_real = sample_data(batch).float()
            x_fake = sample_g(batch).float()
            loss = minimax_discriminator_loss(model(x_real), model(x_fake))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()
