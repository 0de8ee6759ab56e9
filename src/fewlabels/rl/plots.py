"""Pictures of values and policies on grids: Sutton & Barto's Figure 4.1, the lecture's random
and optimal policies as arrows, value heat maps, paths on CliffWalking, and return curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from fewlabels.rl.planning.layouts import GridLayout  # noqa: E402
from fewlabels.viz.plots import save  # noqa: E402

KIND_COLOURS = {"terminal": "#aaaaaa", "goal": "#aaaaaa", "wall": "#333333", "hole": "#c44e52", "cliff": "#8c5a3c"}
SPECIAL = ("terminal", "goal", "wall", "hole", "cliff")


def _cells(ax, layout: GridLayout, values: np.ndarray | None, cmap: str = "viridis", numbers: bool = False):
    """The grid: a heat map of `values` (or white), special cells in their colours, cell lines."""
    rows, cols = layout.rows, layout.cols
    im = None
    if values is not None:
        shown = np.where(np.isin(layout.kinds, SPECIAL), np.nan, values)
        im = ax.imshow(shown, cmap=cmap, interpolation="nearest")
    else:
        ax.imshow(np.ones((rows, cols)), cmap=ListedColormap(["white"]), vmin=0, vmax=1)
    for kind, colour in KIND_COLOURS.items():
        mask = layout.kinds == kind
        if mask.any():
            overlay = np.where(mask, 1.0, np.nan)
            ax.imshow(overlay, cmap=ListedColormap([colour]), vmin=0, vmax=1, interpolation="nearest")
    if max(rows, cols) <= 40:
        ax.set_xticks(np.arange(-0.5, cols), minor=True)
        ax.set_yticks(np.arange(-0.5, rows), minor=True)
        ax.grid(which="minor", color="0.6", lw=0.6)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if numbers and values is not None:
        lo, hi = np.nanmin(values), np.nanmax(values)
        digits = 2 if max(abs(lo), abs(hi)) < 10 else 1
        for r in range(rows):
            for c in range(cols):
                if layout.kinds[r, c] in SPECIAL:
                    continue
                light = (values[r, c] - lo) / (hi - lo) > 0.6 if hi > lo else False
                ax.text(c - 0.45, r - 0.45, f"{values[r, c]:.{digits}f}", ha="left", va="top", fontsize=6,
                        color="black" if light else "white")
    return im


def _arrows(ax, layout: GridLayout, tied: np.ndarray, colour: str = "black") -> None:
    """An arrow from each cell's centre for every action in tied[r, c] (shape rows x cols x A)."""
    xs, ys, us, vs = [], [], [], []
    for a, (dr, dc) in enumerate(layout.moves):
        r, c = np.nonzero(tied[:, :, a])
        xs.append(c)
        ys.append(r)
        us.append(np.full(r.size, 0.36 * dc))
        vs.append(np.full(r.size, 0.36 * dr))
    x, y, u, v = (np.concatenate(z) for z in (xs, ys, us, vs))
    if x.size:  # angles="xy": arrows in data coordinates, so "up" points up on the image's axis
        ax.quiver(x, y, u, v, angles="xy", scale_units="xy", scale=1, color=colour, width=0.012,
                  headwidth=4, headlength=4, headaxislength=3.5)


def value_policy_map(layout: GridLayout, values: np.ndarray, tied: np.ndarray | None, path: Path,
                     title: str = "", numbers: bool | None = None) -> Path:
    """A value heat map with the greedy actions as arrows (arrows and numbers on small grids)."""
    small = max(layout.rows, layout.cols) <= 16
    fig, ax = plt.subplots(figsize=(min(12, 2.5 + 0.55 * layout.cols), min(9, 1.8 + 0.55 * layout.rows)))
    im = _cells(ax, layout, values, numbers=small if numbers is None else numbers)
    if tied is not None and small:
        _arrows(ax, layout, tied & ~np.isin(layout.kinds, SPECIAL)[:, :, None], colour="white")
    fig.colorbar(im, ax=ax, shrink=0.8, label="value")
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def figure_4_1(layout: GridLayout, history: dict, greedy: dict, path: Path) -> Path:
    """Sutton & Barto Figure 4.1: v_k of the random policy (left) and the greedy policy with
    respect to v_k (right), for the k in `history` (the key "∞" for the converged values)."""
    ks = list(history)
    fig, axes = plt.subplots(len(ks), 2, figsize=(5.2, 2.5 * len(ks)), squeeze=False)
    for row, k in zip(axes, ks):
        _cells(row[0], layout, None)
        v = history[k]
        for r in range(layout.rows):
            for c in range(layout.cols):
                row[0].text(c, r, f"{v[r, c]:.1f}", ha="center", va="center", fontsize=9)
        _cells(row[1], layout, None)
        _arrows(row[1], layout, greedy[k])
        row[0].set_ylabel(f"k = {k}", rotation=0, labelpad=24, fontsize=10)
    axes[0, 0].set_title("v_k for the random policy", fontsize=10)
    axes[0, 1].set_title("greedy policy w.r.t. v_k", fontsize=10)
    return save(fig, path)


def random_vs_optimal(layout: GridLayout, v_random: np.ndarray, v_optimal: np.ndarray, optimal: np.ndarray,
                      path: Path) -> Path:
    """The lecture's pair: the random policy (every action, each with probability 1/4) and the
    optimal policy (every tied best action), as arrows over their values."""
    fig, axes = plt.subplots(1, 2, figsize=(2 * min(6, 1.0 + 0.6 * layout.cols), min(6, 1.0 + 0.6 * layout.rows)))
    everything = np.broadcast_to(~np.isin(layout.kinds, SPECIAL)[:, :, None], optimal.shape)
    for ax, tied, v, title in ((axes[0], everything, v_random, "random policy"),
                               (axes[1], optimal, v_optimal, "optimal policy")):
        _cells(ax, layout, None)
        _arrows(ax, layout, tied)
        for r in range(layout.rows):
            for c in range(layout.cols):
                if layout.kinds[r, c] not in SPECIAL:
                    ax.text(c + 0.42, r + 0.42, f"{v[r, c]:.0f}", ha="right", va="bottom", fontsize=6, color="0.4")
        ax.set_title(title, fontsize=10)
    return save(fig, path)


def paths_on_grid(layout: GridLayout, paths: dict[str, list[int]], path: Path, title: str = "") -> Path:
    """Each named path of states drawn through the cell centres (slightly offset, so two paths
    along the same cells stay visible)."""
    fig, ax = plt.subplots(figsize=(min(12, 1.0 + 0.6 * layout.cols), min(6, 0.9 + 0.6 * layout.rows)))
    _cells(ax, layout, None)
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
    for i, (name, states) in enumerate(paths.items()):
        rc = np.array([layout.cell(s) for s in states], dtype=float)
        offset = (i - (len(paths) - 1) / 2) * 0.12
        ax.plot(rc[:, 1] + offset, rc[:, 0] + offset, "-o", color=colours[i % 4], ms=3, lw=2,
                label=f"{name} ({len(states) - 1} steps)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(paths))
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def return_curves(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "",
                  ylim: tuple[float, float] | None = None, xlabel: str = "episode") -> Path | None:
    """Return per episode (or per window of episodes) for each named run."""
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (x, y) in series.items():
        ax.plot(x, y, lw=1.4, label=name, marker="o" if len(x) < 15 else None, ms=4)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("sum of rewards during episode")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
