"""The GAN run's part of report.html."""

from __future__ import annotations

import numpy as np

from fewlabels.report import Section, table
from fewlabels.viz import plots


def image_sections(exp, run, rows: list[dict], snaps: list[dict]) -> list[Section]:
    out = []
    fig = plots.image_snapshots(snaps, run.samples / "snapshots.png")
    if fig:
        out.append(Section("Samples over training", image=fig, text="16 samples of the EMA generator at each step."))
    levels = {int(sn["level"]): sn for sn in snaps if int(sn.get("level", -1)) >= 0}  # the last one per level
    if len(levels) > 1:
        side = exp.data.shape[-1]
        strip = [levels[k] for k in sorted(levels)]
        fig = plots.image_snapshots(strip, run.samples / "growth.png", columns=len(strip))
        out.append(Section("Growth: one snapshot per resolution", image=fig,
                           text=" → ".join(f"{side >> (exp.G.levels - k)}×{side >> (exp.G.levels - k)}"
                                           for k in sorted(levels))
                           + " (lower resolutions shown enlarged): the Progressive GAN's growth, as in the lecture."))
    grid = plots.image_grid(exp.sample(64, seed=7), run.samples / "samples.png", "64 samples (EMA generator)")
    out.append(Section("Samples", image=grid))
    evals = [r for r in rows if "fd" in r]
    if evals:
        out.append(Section("Fréchet distance", html=table(evals, ["step", "fd", "real_fd", "confident_percent",
                                                                   "real_confident_percent"]),
                           text=f"Features: {evals[-1].get('feature_extractor', '')}; real_fd is real training "
                                "images against the same held-out images (the floor)."))
    return out


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    snaps = [dict(np.load(p)) for p in sorted(run.samples.glob("snapshot_*.npz"))]
    if exp.is_image:
        return image_sections(exp, run, rows, snaps) + [
            Section("Losses", image=plots.curves(rows, ["loss_d", "loss_g"], run.samples / "losses.png", "losses"))]
    heat = "D(x)" if exp.cfg.loss.name in ("minimax", "nonsaturating") else "critic f(x)"
    fig = plots.snapshot_grid(snaps, exp.data.holdout(1000), run.samples / "snapshots.png", heat_label=heat)
    if fig:
        out.append(Section("Samples over training", image=fig,
                           text=f"Generated samples (orange) over held-out real points (grey), on {heat}."))
    fig = plots.curves(rows, ["loss_d", "loss_g"], run.samples / "losses.png", "losses")
    if fig:
        out.append(Section("Losses", image=fig))
    fig = plots.curves(rows, ["w_estimate"], run.samples / "w_estimate.png",
                       "critic's estimate of W: E f(x) - E f(G(z))")
    if fig:
        out.append(Section("Wasserstein estimate", image=fig))
    evals = [r for r in rows if "emd" in r]
    if evals:
        wanted = ("step", "modes", "modes_20", "hq_percent", "reverse_kl", "emd", "real_emd")
        keys = [k for k in wanted if k in evals[-1]]
        out.append(Section("Evaluations", html=table(evals, keys)))
        fig = plots.curves(evals, ["emd", "real_emd"], run.samples / "emd.png", "EMD to held-out data")
        if fig:
            out.append(Section("EMD over training", image=fig))
    return out
