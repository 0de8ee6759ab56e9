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


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour within x."""
    sq = (x * x).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0))
    return np.sort(dist, axis=1)[:, k]  # column 0 is the point itself


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    sq_p, sq_c = (points * points).sum(1), (centres * centres).sum(1)
    dist = np.sqrt(np.maximum(sq_p[:, None] + sq_c[None] - 2 * points @ centres.T, 0))
    return (dist <= radii[None]).any(1)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the real (fake) manifold is the
    union of balls reaching each point's k-th nearest neighbour; precision = share of fake points
    inside the real manifold, recall = share of real points inside the fake one."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = float(_inside(fake, real, _radii(real, k)).mean())
    recall = float(_inside(real, fake, _radii(fake, k)).mean())
    return precision, recall
