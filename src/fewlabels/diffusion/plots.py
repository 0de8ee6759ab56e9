"""Diffusion figures: the forward and reverse strips, samples over training, image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewlabels.viz.plots import evenly_spaced, image_grid, image_snapshots, plt, save, show_image  # noqa: F401


def point_strip(strip: dict[int, np.ndarray], bounds: tuple[float, float], path: Path, title: str,
                real: np.ndarray | None = None) -> Path:
    """A row of scatter plots of x_t, one per t (in the order given)."""
    fig, axes = plt.subplots(1, len(strip), figsize=(2.3 * len(strip), 2.5), squeeze=False)
    lo, hi = bounds
    lim = max(hi, 3.5)  # x_T ~ N(0, I) must fit too
    for ax, (t, pts) in zip(axes.flat, strip.items()):
        if real is not None:
            ax.scatter(real[:, 0], real[:, 1], s=1, c="0.85")
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:blue", alpha=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t = {t}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def image_strip(strip: dict[int, np.ndarray], path: Path, title: str) -> Path:
    """Rows are images, columns are t (in the order given)."""
    ts = list(strip)
    rows = len(strip[ts[0]])
    fig, axes = plt.subplots(rows, len(ts), figsize=(1.1 * len(ts), 1.1 * rows + 0.4), squeeze=False)
    for j, t in enumerate(ts):
        for i in range(rows):
            show_image(axes[i, j], strip[t][i])
        axes[0, j].set_title(f"t = {t}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def point_snapshots(snapshots: list[dict], real: np.ndarray, bounds: tuple[float, float], path: Path,
                    columns: int = 5) -> Path | None:
    """Samples (orange) over held-out points (grey) at several training steps."""
    if not snapshots:
        return None
    snapshots = evenly_spaced(snapshots, columns)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(2.6 * len(snapshots), 2.7), squeeze=False)
    lo, hi = bounds
    for ax, s in zip(axes.flat, snapshots):
        ax.scatter(real[:, 0], real[:, 1], s=1, c="0.8")
        ax.scatter(s["samples"][:, 0], s["samples"][:, 1], s=1.5, c="tab:orange")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {int(s['step'])}", fontsize=9)
    return save(fig, path)
