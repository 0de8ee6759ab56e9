"""Low-dimensional point datasets: the VEEGAN/PacGAN mixtures, swiss roll, two moons, a 1D
manifold, and the user's own points.

Every dataset draws from an explicit `torch.Generator`, so training data is part of the
run's saved random state (bitwise resume) and held-out points never disturb it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fewlabels.errors import UserError


class PointData:
    """A distribution over R^dim to draw training batches and held-out sets from.

    `modes`/`mode_std` are set for Gaussian mixtures, which the mixture metrics need."""

    dim = 2
    modes: np.ndarray | None = None
    mode_std: float | None = None

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def holdout(self, n: int, seed: int = 12345) -> np.ndarray:
        """n points the model never trains on (a fixed stream for synthetic sets)."""
        return self.sample(n, torch.Generator().manual_seed(seed)).numpy()

    def to(self, device: torch.device) -> PointData:
        return self


class Mixture(PointData):
    """Equal-weight isotropic Gaussians at `modes` with standard deviation `std`."""

    def __init__(self, modes: np.ndarray, std: float):
        self.modes, self.mode_std = np.asarray(modes, dtype=np.float32), float(std)
        self._modes = torch.from_numpy(self.modes)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        idx = torch.randint(len(self.modes), (n,), generator=generator, device=dev)
        return self._modes.to(dev)[idx] + self.mode_std * torch.randn(n, 2, generator=generator, device=dev)


def ring8() -> Mixture:
    """8 modes on the circle of radius 1, std 0.01 (VEEGAN/PacGAN)."""
    angles = 2 * math.pi * np.arange(8) / 8
    return Mixture(np.stack([np.cos(angles), np.sin(angles)], 1), 0.01)


def grid25() -> Mixture:
    """25 modes at {-4, -2, 0, 2, 4}^2, std 0.05 (VEEGAN/PacGAN)."""
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return Mixture(np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2), 0.05)


class Curve(PointData):
    """Points x = f(u) + noise·ε with u ~ U[0, 1]: a 1D manifold, thickened by noise."""

    def __init__(self, f, noise: float):
        self.f, self.noise = f, noise

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        u = torch.rand(n, generator=generator, device=dev)
        eps = torch.randn(n, 2, generator=generator, device=dev)
        return self.f(u) + self.noise * eps


def _swiss_roll(u: Tensor) -> Tensor:
    t = 1.5 * math.pi * (1 + 2 * u)
    return torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 5.0


def _moons(u: Tensor) -> Tensor:
    s = math.pi * (2 * u % 1)
    upper = torch.stack([torch.cos(s), torch.sin(s)], 1)
    lower = torch.stack([1 - torch.cos(s), 0.5 - torch.sin(s)], 1)
    pts = torch.where((u < 0.5)[:, None], upper, lower)
    return pts - torch.tensor([0.5, 0.25], device=u.device)


def _circle(u: Tensor) -> Tensor:
    a = 2 * math.pi * u
    return torch.stack([torch.cos(a), torch.sin(a)], 1)


class Points(PointData):
    """The user's points from a .npy or .csv file of shape (N, D); a fixed part is held out."""

    def __init__(self, path: str, holdout_fraction: float = 0.2, seed: int = 0):
        pts = load_points(path)
        perm = np.random.default_rng(seed).permutation(len(pts))
        n_hold = max(1, int(round(holdout_fraction * len(pts))))
        self._held, self._train = pts[perm[:n_hold]], torch.from_numpy(pts[perm[n_hold:]])
        self.dim = pts.shape[1]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        idx = torch.randint(len(self._train), (n,), generator=generator, device=dev)
        return self._train.to(dev)[idx]

    def holdout(self, n: int, seed: int = 12345) -> np.ndarray:
        return self._held[:n]


def load_points(path: str) -> np.ndarray:
    """Read (N, D) float points from .npy or .csv; one clear sentence for anything else."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file {path!r} does not exist; give a .npy or .csv file of shape (N, D)")
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix == ".csv":
            arr = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
        else:
            raise UserError(f"data file {path!r} has suffix {p.suffix!r}; valid: .npy, .csv")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"data file {path!r} could not be read as {p.suffix} ({type(e).__name__}: {e})") from e
    if arr.ndim != 2 or arr.shape[0] < 10 or arr.shape[1] < 1:
        raise UserError(f"data file {path!r} has shape {arr.shape}; expected (N, D) with N >= 10 points")
    if not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"data file {path!r} holds {arr.dtype} values; expected numbers")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise UserError(f"data file {path!r} has {int(bad.sum())} rows with NaN or infinite values "
                        f"(first at row {int(np.argmax(bad))}); remove them")
    return arr


DATASETS = {
    "ring8": ring8,
    "grid25": grid25,
    "swissroll": lambda: Curve(_swiss_roll, 0.05),
    "moons": lambda: Curve(_moons, 0.05),
    # The 1D-manifold set: the unit circle with no thickness at all. Its support has zero
    # area, so early on it is disjoint from the generator's (WGAN paper, Section 2).
    "circle": lambda: Curve(_circle, 0.0),
}


def make_points(name: str, path: str | None = None, seed: int = 0) -> PointData:
    if name == "file":
        return Points(path, seed=seed)
    return DATASETS[name]()
