"""Figures for the lecture's theory: Theorem 1 (the optimal discriminator and C(G))
and the WGAN paper's parallel-lines example. Each function writes a PNG and
returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from fewlabels.gan.theory import (
    default_mixtures,
    grid,
    mixture_pdf,
    optimal_discriminator,
    parallel_lines,
    theorem1_check,
)

matplotlib.use("Agg")  # before pyplot: no display needed, safe on headless machines

import matplotlib.pyplot as plt


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _title(r: dict) -> str:
    return (
        f"Theorem 1 ({r['dim']}D): C(G) = {r['C']:.6f},  JSD = {r['JSD']:.6f},  "
        f"|C - (-log 4 + 2 JSD)| = {r['identity_error']:.1e}"
    )


def plot_theorem1(path: str | Path, dim: int = 1) -> Path:
    """p_data, p_g and D*_G = p_data / (p_data + p_g) for the ``default_mixtures(dim)`` pair.

    1D: densities on the left axis, D* (with the line D = 1/2) on the right axis.
    2D: three images, p_data, p_g and D* (contour D* = 1/2 drawn on each).
    The title carries C(G), JSD and the identity error of ``theorem1_check(dim)``.
    """
    r = theorem1_check(dim)
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(dim)
    if dim == 1:
        x, _ = grid(-5.0, 5.0, 1000, 1)
        p, q = mixture_pdf(x, dm, ds, dw), mixture_pdf(x, gm, gs, gw)
        d = optimal_discriminator(p, q)
        x = x[:, 0]
        fig, ax = plt.subplots(figsize=(8, 4.2))
        ax.plot(x, p, color="C0", lw=2, label=r"$p_{data}$")
        ax.plot(x, q, color="C1", lw=2, label=r"$p_g$")
        ax.fill_between(x, p, alpha=0.15, color="C0")
        ax.fill_between(x, q, alpha=0.15, color="C1")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(
            x,
            d,
            color="C2",
            lw=2,
            ls="--",
            label=r"$D^*_G = p_{data} / (p_{data} + p_g)$",
        )
        ax2.axhline(
            0.5, color="gray", lw=1, ls=":", label=r"$D = 1/2$ (where $p_{data} = p_g$)"
        )
        ax2.set_ylim(0, 1)
        ax2.set_ylabel(r"$D^*_G(x)$")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_title(_title(r), fontsize=9)
    elif dim == 2:
        n = 200
        pts, _ = grid(-5.0, 5.0, n, 2)
        p, q = mixture_pdf(pts, dm, ds, dw), mixture_pdf(pts, gm, gs, gw)
        d = optimal_discriminator(p, q)
        # grid() varies the last axis fastest: image[i, j] is at (x = axis[i], y = axis[j]).
        imgs = [a.reshape(n, n).T for a in (p, q, d)]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
        names = [r"$p_{data}$", r"$p_g$", r"$D^*_G$"]
        for ax, img, name, cmap in zip(
            axes, imgs, names, ["Blues", "Oranges", "RdBu_r"]
        ):
            kw = {"vmin": 0.0, "vmax": 1.0} if name == r"$D^*_G$" else {}
            im = ax.imshow(img, origin="lower", extent=(-5, 5, -5, 5), cmap=cmap, **kw)
            ax.contour(
                imgs[2], levels=[0.5], extent=(-5, 5, -5, 5), colors="k", linewidths=0.8
            )
            ax.set_title(name)
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.suptitle(_title(r) + "   (black: D* = 1/2)", fontsize=9)
    else:
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    return _save(fig, path)


def plot_parallel_lines(path: str | Path, theta_shown: float = 0.5) -> Path:
    """WGAN Example 1. Left: P_0 and P_theta as vertical segments {0} x [0, 1] and
    {theta} x [0, 1]. Right: W = |theta|, JS and TV as functions of theta in [-1, 1]
    (KL is +inf for every theta != 0). JS is flat, so it gives no gradient; W does."""
    fig, (ax0, ax1) = plt.subplots(
        1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.6]}
    )

    ax0.plot([0, 0], [0, 1], color="C0", lw=4, label=r"$P_0$: $(0, Z)$")
    ax0.plot(
        [theta_shown] * 2,
        [0, 1],
        color="C1",
        lw=4,
        label=rf"$P_\theta$: $(\theta, Z)$, $\theta={theta_shown:g}$",
    )
    ax0.annotate(
        "",
        xy=(theta_shown, 0.5),
        xytext=(0, 0.5),
        arrowprops={"arrowstyle": "<->", "color": "gray"},
    )
    ax0.text(theta_shown / 2, 0.53, r"$\theta$", ha="center", color="gray")
    ax0.set_xlim(-0.6, 1.1)
    ax0.set_xticks([-0.5, 0.0, 0.5, 1.0])
    ax0.set_ylim(-0.1, 1.25)
    ax0.set_xlabel("first coordinate")
    ax0.set_ylabel(r"second coordinate $Z \sim U[0, 1]$")
    ax0.legend(loc="upper right", fontsize=8)
    ax0.set_title(
        "two parallel segments: disjoint supports for every θ ≠ 0", fontsize=9
    )

    theta = np.linspace(-1.0, 1.0, 401)
    theta = theta[theta != 0]  # draw the jump at 0 explicitly
    r = parallel_lines(theta)
    at0 = parallel_lines(np.array([0.0]))
    ax1.plot(theta, r["W"], color="C2", lw=2, label=r"$W(P_0, P_\theta) = |\theta|$")
    for key, color, label in [
        ("JS", "C3", r"$JS = \log 2$ ($\theta \neq 0$)"),
        ("TV", "C4", r"$TV = 1$ ($\theta \neq 0$)"),
    ]:
        left, right = theta < 0, theta > 0
        ax1.plot(theta[left], r[key][left], color=color, lw=2, label=label)
        ax1.plot(theta[right], r[key][right], color=color, lw=2)
        ax1.plot([0], at0[key], "o", color=color, ms=6)  # the value at theta = 0
        ax1.plot([0], r[key][:1], "o", mfc="white", color=color, ms=6)  # the open end
    ax1.plot([], [], " ", label=r"$KL = +\infty$ for $\theta \neq 0$ (off the chart)")
    ax1.set_xlabel(r"$\theta$")
    ax1.set_ylabel("distance")
    ax1.set_ylim(-0.05, 1.25)
    ax1.legend(loc="upper center", fontsize=8, ncol=2)
    ax1.set_title(
        r"JS is flat ($\nabla_\theta JS = 0$): no gradient;  "
        r"$W = |\theta|$: $\nabla_\theta W = \mathrm{sign}(\theta)$ points home",
        fontsize=9,
    )
    fig.suptitle(
        "WGAN Example 1: parallel lines, KL = +∞ and JS, TV jump at θ = 0; only W is continuous",
        fontsize=10,
    )
    return _save(fig, path)
