"""Low-dimensional point datasets: the VEEGAN/PacGAN mixtures, swiss roll, two moons, a 1D
manifold, and the user's own points.

Every dataset draws from an explicit `torch.Generator`, so training data is part of the
run's saved random state (bitwise resume) and held-out points never disturb it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fewlabels import files
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

    def disjoint_real_sets(self, n_a: int, n_b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Two real sets that share no point, for a real-vs-real floor: here two fresh,
        independent draws of n_a and n_b points from the distribution, seeded by `seed`."""
        g = torch.Generator().manual_seed(seed)
        return self.sample(n_a, g).numpy(), self.sample(n_b, g).numpy()

    def identity(self) -> str:
        """A hash of what defines this distribution (for cache keys): its class and 512 points
        drawn with a fixed seed, so a change to the sampler's code changes it too."""
        from fewlabels.metrics.floors import fingerprint

        return f"{type(self).__name__}:{fingerprint(self.sample(512, torch.Generator().manual_seed(0)).numpy())}"

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


SPLIT_SEED = 0  # the train / held-out split of a finite point set: fixed, whatever the run's seed


class Points(PointData):
    """The user's points from a .npy or .csv file of shape (N, D); a fixed fifth is held out
    (split by SPLIT_SEED, so runs of every seed are scored against the same held-out points)."""

    def __init__(self, path: str, holdout_fraction: float = 0.2, split_seed: int = SPLIT_SEED):
        pts = load_points(path)
        perm = np.random.default_rng(split_seed).permutation(len(pts))
        n_hold = max(1, int(round(holdout_fraction * len(pts))))
        self._held, self._train = pts[perm[:n_hold]], torch.from_numpy(pts[perm[n_hold:]])
        self.dim = pts.shape[1]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        dev = generator.device
        idx = torch.randint(len(self._train), (n,), generator=generator, device=dev)
        return self._train.to(dev)[idx]

    def holdout(self, n: int, seed: int = 12345) -> np.ndarray:
        """min(n, held-out size) held-out points, chosen without replacement by `seed`."""
        return self._held[np.random.default_rng(seed).permutation(len(self._held))[:n]]

    def disjoint_real_sets(self, n_a: int, n_b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """min(n_a, training size) training points and min(n_b, held-out size) held-out points,
        each chosen without replacement by `seed`: disjoint because the two parts are."""
        rng = np.random.default_rng(seed)
        train = self._train.numpy()
        return train[rng.permutation(len(train))[:n_a]], self._held[rng.permutation(len(self._held))[:n_b]]

    def identity(self) -> str:
        from fewlabels.metrics.floors import fingerprint

        return f"Points:{fingerprint(self._train.numpy(), self._held)}"


def _number(field: str) -> float | None:
    """The finite number in a CSV field, else None (NaN and infinities are not data)."""
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv_points(path: Path) -> np.ndarray:
    """(N, D) numbers from a comma-separated file. Blank lines and lines starting with # are
    skipped; a first row with no number in it is taken as a header; anything else that is not
    a number, or a row of another length, is one sentence naming the row (1-based, as an editor
    counts lines) and the column."""
    import csv

    text = files.read_text(path, "data file", "give a .csv file of numbers, D per row")
    rows, width, header = [], None, None
    for line_no, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        values = [_number(f) for f in fields]
        if None in values:
            if not rows and header is None and all(v is None for v in values):
                header = line_no  # a header row: names, no numbers
                continue
            col = values.index(None) + 1
            raise UserError(f"data file {str(path)!r} row {line_no}, column {col} is {fields[col - 1].strip()!r}; "
                            "expected a finite number (a header is allowed only as the first row, with no numbers "
                            "in it)")
        if width is None:
            width, first = len(values), line_no
        elif len(values) != width:
            raise UserError(f"data file {str(path)!r} row {line_no} has {len(values)} value{'s' * (len(values) != 1)} "
                            f"but row {first} has {width}; every row needs the same number of comma-separated values")
        rows.append(values)
    if not rows:
        raise UserError(f"data file {str(path)!r} has no rows of numbers"
                        + (" after its header" if header else "") + "; expected N rows of D comma-separated numbers")
    return np.array(rows, dtype=np.float64)


def load_points(path: str) -> np.ndarray:
    """Read (N, D) float points from .npy or .csv; one clear sentence for anything else."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file {path!r} does not exist; give a .npy or .csv file of shape (N, D)")
    try:
        with warnings.catch_warnings():  # an empty .csv warns before the sentence below says so
            warnings.simplefilter("ignore")
            if p.suffix == ".npy":
                arr = np.load(p, allow_pickle=False)
            elif p.suffix == ".csv":
                arr = read_csv_points(p)
            else:
                raise UserError(f"data file {path!r} has suffix {p.suffix!r}; valid: .npy, .csv")
    except UserError:
        raise
    except OSError as e:  # permission, a folder, I/O: said the way every file the CLI touches says it
        raise files.error(p, "data file", "read", e, "give a readable .npy or .csv file of shape (N, D)") from e
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


def make_points(name: str, path: str | None = None) -> PointData:
    """A named synthetic set, or the user's points (`name` "file", from `path`)."""
    if name == "file":
        return Points(path)
    return DATASETS[name]()
