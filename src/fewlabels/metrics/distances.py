"""Distances between two samples."""

from __future__ import annotations

import numpy as np


def emd(a: np.ndarray, b: np.ndarray) -> float:
    """Exact earth mover's distance W1 between the empirical measures of a and b (uniform
    weights, Euclidean ground cost), by network simplex (POT's ot.emd2)."""
    import ot

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=10**7))
