"""The GAN run's part of report.html."""

from __future__ import annotations

import numpy as np

from fewlabels.metrics.floors import mean_std
from fewlabels.report import Section, read_snapshots, table
from fewlabels.viz import plots

CRITIC_GAP_TITLE = "critic gap E f(x) − E f(G(z))  (≈ K·W for a K-Lipschitz critic, not W)"
CRITIC_GAP_TEXT = ("The critic's gap between real and generated samples. The Kantorovich-Rubinstein duality gives "
                   "W(P_r, P_g) = sup over 1-Lipschitz f of E f(x) − E f(G(z)); a critic that is only K-Lipschitz "
                   "(weight clipping bounds K, but not at 1) estimates K·W at best, with K unknown and changing as "
                   "the weights move (the lecture's formula carries the 1/K). Read its trend, not its value.")


def with_floor_columns(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Rows with each floor key shown as 'mean ± std (n draws)'."""
    return [{**r, **{k: mean_std(r, k) for k in keys if k in r}} for r in rows]


def critic_gap_rows(rows: list[dict]) -> list[dict]:
    """Rows with `critic_gap`, read from the older key `w_estimate` where a run logged that."""
    return [{**r, "critic_gap": r["w_estimate"]} if "critic_gap" not in r and "w_estimate" in r else r
            for r in rows]


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
    if exp.conditional:
        out += conditional_sections(exp, run)
    else:
        grid = plots.image_grid(exp.sample(64, seed=7), run.samples / "samples.png", "64 samples (EMA generator)")
        out.append(Section("Samples", image=grid))
    evals = [r for r in rows if "fd" in r]
    if evals:
        floor_keys = ("real_fd", "real_confident_percent", "real_kid", "real_precision", "real_recall",
                      "real_class_consistency", "real_intra_fd")
        wanted = ("step", "fd", "real_fd", "confident_percent", "real_confident_percent", "kid", "real_kid",
                  "precision", "real_precision", "recall", "real_recall", "class_consistency",
                  "real_class_consistency", "intra_fd", "real_intra_fd")
        out.append(Section("Fréchet distance", html=table(with_floor_columns(evals, floor_keys),
                                                          [k for k in wanted if k in evals[-1]]),
                           text=f"Features: {evals[-1].get('feature_extractor', '')}; "
                                f"{evals[-1].get('samples_vs_real', '')}. The real_* columns are the floor: "
                                "real training images against disjoint held-out images, mean ± std over draws."))
    return out


STRIP_TRUNCATIONS = (0.25, 0.5, 1.0, 2.0, None)


def conditional_sections(exp, run) -> list[Section]:
    """A conditional GAN's per-class grid (one class a column) and its truncation strip (the same z
    and class down each column, truncated at each T of STRIP_TRUNCATIONS, one T a row)."""
    k = exp.classes
    rows = max(1, 64 // k)
    per_class, _ = exp.sample_labelled(k * rows, seed=7)
    grid = plots.image_grid(per_class, run.samples / "per_class.png", f"{rows} samples of each class", columns=k)
    strip = np.concatenate([exp.sample_labelled(k, seed=8, truncation=t)[0] for t in STRIP_TRUNCATIONS])
    names = ", ".join("none" if t is None else str(t) for t in STRIP_TRUNCATIONS)
    fig = plots.image_grid(strip, run.samples / "truncation_strip.png", f"truncation, by row: {names}", columns=k)
    return [Section("Samples by class", image=grid, text="Column k: samples the generator was asked for class k."),
            Section("Truncation strip", image=fig,
                    text=f"Rows: z truncated to |z_i| ≤ T by resampling, T = {names} (top to bottom); the "
                         "same z and class down each column. Small T: typical, alike; large T: varied. "
                         "`fewlabels truncation RUN` measures the trade.")]


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    snaps = read_snapshots(run.samples)
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
    fig = plots.curves(critic_gap_rows(rows), ["critic_gap"], run.samples / "critic_gap.png", CRITIC_GAP_TITLE)
    if fig:
        out.append(Section("Critic gap", image=fig, text=CRITIC_GAP_TEXT))
    evals = [r for r in rows if "emd" in r]
    if evals:
        floor_keys = ("real_emd", "real_modes", "real_modes_20", "real_hq_percent", "real_reverse_kl")
        wanted = ("step", "modes", "modes_20", "hq_percent", "reverse_kl", "emd", *floor_keys)
        keys = [k for k in wanted if k in evals[-1]]
        out.append(Section("Evaluations", html=table(with_floor_columns(evals, floor_keys), keys),
                           text="The real_* columns are the real-vs-real floor: disjoint real sets at the same "
                                "sample counts, mean ± std over independent draws."))
        fig = plots.curves(evals, ["emd", "real_emd"], run.samples / "emd.png",
                           "EMD to held-out data (floor: mean ± std band)")
        if fig:
            out.append(Section("EMD over training", image=fig))
    return out
