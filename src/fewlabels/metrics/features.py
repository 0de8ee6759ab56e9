"""Sample quality in a feature space, for any extractor (InceptionV3, a small classifier):
Fréchet distance (FID's formula), KID, and precision/recall. Every number is reported with the
extractor's description, the sample counts and the real-vs-real floor by the callers."""

from __future__ import annotations

import numpy as np

from fewlabels.metrics.frechet import frechet_distance

__all__ = ["frechet_distance", "kernel_inception_distance", "precision_recall"]


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): the unbiased MMD² with the cubic kernel
    k(x, y) = (x·y / d + 1)³, averaged over random subsets; returns (mean, std)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


CHUNK_BYTES = 2**27  # one block of the distance matrix: 128 MiB of float64, whatever the sample count


def _rows_per_chunk(columns: int, chunk: int | None) -> int:
    return chunk or max(1, CHUNK_BYTES // (8 * columns))


def _distances(points: np.ndarray, sq_points: np.ndarray, centres: np.ndarray, sq_centres: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(points), len(centres)) from ||p||² + ||c||² - 2 p·c, in place
    (one matrix of this block's size, not four)."""
    d = points @ centres.T
    d *= -2
    d += sq_points[:, None]
    d += sq_centres[None]
    np.maximum(d, 0, out=d)  # rounding can make a point's distance to itself slightly negative
    return np.sqrt(d, out=d)


def _radii(x: np.ndarray, k: int, chunk: int | None = None) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour within x, a block of rows at a time."""
    sq = (x * x).sum(1)
    rows = _rows_per_chunk(len(x), chunk)
    out = np.empty(len(x))
    for i in range(0, len(x), rows):
        d = _distances(x[i:i + rows], sq[i:i + rows], x, sq)
        out[i:i + rows] = np.partition(d, k, axis=1)[:, k]  # the k+1-th smallest: index 0 is the point itself
    return out


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """For each point: does it lie in some centre's ball (distance <= that centre's radius)?"""
    sq_p, sq_c = (points * points).sum(1), (centres * centres).sum(1)
    rows = _rows_per_chunk(len(centres), chunk)
    out = np.empty(len(points), bool)
    for i in range(0, len(points), rows):
        out[i:i + rows] = (_distances(points[i:i + rows], sq_p[i:i + rows], centres, sq_c) <= radii[None]).any(1)
    return out


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): with B_k(x) the ball around x
    reaching its k-th nearest neighbour in x's own set,

        precision = (1/|fake|) Σ_{f ∈ fake} 1[∃ r ∈ real: ||f - r|| <= ||r - NN_k(r)||]
        recall    = (1/|real|) Σ_{r ∈ real} 1[∃ f ∈ fake: ||r - f|| <= ||f - NN_k(f)||]

    Distances are computed `chunk` rows at a time (default: blocks of CHUNK_BYTES), so memory
    grows with the sample count, not with its square: 50k against 50k needs blocks of 128 MiB,
    not 20 GB matrices."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = float(_inside(fake, real, _radii(real, k, chunk), chunk).mean())
    recall = float(_inside(real, fake, _radii(fake, k, chunk), chunk).mean())
    return precision, recall
