"""Figures shared by every family: curves over training and 2D sample snapshots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def curves(rows: list[dict], keys: list[str], path: Path, title: str = "", logy: bool = False) -> Path | None:
    """One line per key against `step`, skipping rows that lack it; a key logged with a
    `<key>_std` (a floor: mean ± std over draws) gets a shaded band of ± one std."""
    keys = [k for k in keys if any(k in r and r[k] is not None for r in rows)]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k in keys:
        pts = [(r["step"], r[k], r.get(f"{k}_std")) for r in rows if r.get(k) is not None]
        xs, ys, stds = zip(*pts)
        line, = ax.plot(xs, ys, label=k, lw=1.2, marker="o" if len(xs) < 15 else None, ms=3)
        if all(s is not None for s in stds):
            lo, hi = np.subtract(ys, stds), np.add(ys, stds)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, lw=0, label=f"{k} ± std")
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def snapshot_grid(snapshots: list[dict], real: np.ndarray, path: Path, heat_label: str = "D(x)",
                  columns: int = 5) -> Path | None:
    """Generated samples (orange) over real points (grey), on the discriminator's landscape."""
    if not snapshots:
        return None
    snapshots = evenly_spaced(snapshots, columns * 2)  # keep the page legible; always the last
    rows = (len(snapshots) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, snapshots):
        lo, hi = float(s["lo"]), float(s["hi"])
        im = ax.imshow(s["heat"], extent=(lo, hi, lo, hi), origin="lower", cmap="viridis", alpha=0.85)
        ax.scatter(real[:, 0], real[:, 1], s=1, c="0.85", alpha=0.5)
        ax.scatter(s["samples"][:, 0], s["samples"][:, 1], s=1.5, c="tab:orange")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"step {int(s['step'])}", fontsize=9)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label=heat_label)
    return save(fig, path)


def scatter_compare(panels: list[tuple[str, np.ndarray]], real: np.ndarray, path: Path) -> Path:
    """Side by side: several models' samples over the same real points."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    lim = float(np.abs(real).max()) * 1.25 + 0.1
    for ax, (title, pts) in zip(axes.flat, panels):
        ax.scatter(real[:, 0], real[:, 1], s=1, c="0.7", alpha=0.5)
        ax.scatter(pts[:, 0], pts[:, 1], s=1.5, c="tab:orange")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
    return save(fig, path)


def show_image(ax, img: np.ndarray) -> None:
    """One (C, H, W) image in [-1, 1]."""
    img = np.clip((img + 1) / 2, 0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.transpose(1, 2, 0))
    ax.axis("off")


def mosaic(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] tiled row by row into one (C, rows·(H+gap)-gap, ...) image,
    white between and after them."""
    n, C, H, W = images.shape
    rows = (n + columns - 1) // columns
    out = np.ones((C, rows * (H + gap) - gap, columns * (W + gap) - gap), dtype=np.float32)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        out[:, r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = img
    return out


def image_grid(images: np.ndarray, path: Path, title: str = "", columns: int = 8) -> Path:
    """The images in a grid of `columns`, drawn as one mosaic (one axes: a subplot per image costs
    seconds for a hundred of them)."""
    rows = (len(images) + columns - 1) // columns
    fig, ax = plt.subplots(figsize=(columns * 0.9, rows * 0.9 + 0.3))
    show_image(ax, mosaic(np.asarray(images, dtype=np.float32), columns, gap=max(1, images.shape[-1] // 8)))
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)


def evenly_spaced(items: list, n: int) -> list:
    """At most n items, first and last included, evenly spaced."""
    if len(items) <= n:
        return items
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))]


def image_snapshots(snapshots: list[dict], path: Path, columns: int = 5, per: int = 16) -> Path | None:
    """A 4x4 block of samples at several training steps."""
    if not snapshots:
        return None
    snapshots = evenly_spaced(snapshots, columns)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(2.4 * len(snapshots), 2.6), squeeze=False)
    for ax, s in zip(axes.flat, snapshots):
        imgs = s["samples"][:per]
        side = int(np.sqrt(len(imgs)))
        C, H, W = imgs.shape[1:]
        tile = imgs[: side * side].reshape(side, side, C, H, W).transpose(2, 0, 3, 1, 4).reshape(C, side * H, side * W)
        show_image(ax, tile)
        ax.set_title(f"step {int(s['step'])}", fontsize=9)
    return save(fig, path)


def truncation_curve(rows: list[dict], path: Path) -> Path:
    """A GAN's scores against the truncation T of its z: the distances (FD, intra-class FD) on the
    left, the percentages (precision, recall, class consistency) on the right; a row's floor
    (real_<key>, the real-vs-real mean) as a dotted line of the same colour."""
    ts = [r["truncation"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, keys, scale in ((left, ("fd", "intra_fd", "kid"), 1.0),
                            (right, ("precision", "recall", "class_consistency", "confident_percent"), None)):
        for k in keys:
            if not all(r.get(k) is not None for r in rows):
                continue
            factor = scale if scale is not None else (1.0 if k.endswith(("consistency", "percent")) else 100.0)
            line, = ax.plot(ts, [factor * r[k] for r in rows], marker="o", ms=3, label=k)
            floor = rows[0].get(f"real_{k}")
            if floor is not None:
                ax.axhline(factor * floor, ls=":", color=line.get_color(), lw=1)
        ax.set_xlabel("truncation T")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    left.set_title("distance (lower is better; dotted: real vs real)")
    right.set_title("% (dotted: real vs real)")
    return save(fig, path)
