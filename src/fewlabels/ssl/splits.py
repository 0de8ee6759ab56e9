"""Label splits as data: which training images keep their labels.

A split is L images of every class, drawn without replacement by `split_seed` alone (never the
run's seed, so runs of every seed and every method see the same labelled images). A run keeps
its split in every checkpoint and restores it from there on resume (so its labels never change,
whatever a later numpy draws), and writes it as labelled.npy in its directory.
"""

from __future__ import annotations

import numpy as np

from fewlabels.errors import UserError


def labelled_indices(labels: np.ndarray | None, per_class: int, seed: int, name: str = "the data") -> np.ndarray:
    """Indices (sorted) of `per_class` training images of each class, drawn by `seed`."""
    if labels is None:
        raise UserError(f"{name} has no labels, so no labelled split can be drawn from it; semi-supervised "
                        "training needs labelled images (digits, fashion_mnist, mnist, cifar10, or .npz with labels)")
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    present = np.flatnonzero(counts)
    short = [int(k) for k in present if counts[k] < per_class]
    if short:
        k = short[0]
        raise UserError(f"data.labels_per_class is {per_class} but class {k} of {name} has only {counts[k]} "
                        f"training images; use at most {int(counts[present].min())}")
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == k), per_class, replace=False) for k in present]
    return np.sort(np.concatenate(chosen)).astype(np.int64)

