"""The diffusion run's part of report.html: the forward and reverse strips, samples over
training, the loss curve, and the evaluations next to the real-data floor."""

from __future__ import annotations

import time

from fewlabels.diffusion import plots as dplots
from fewlabels.diffusion.config import EVAL_SEED, SNAPSHOT_STEPS, SamplerConfig
from fewlabels.metrics.floors import mean_std
from fewlabels.report import Section, read_snapshots, table
from fewlabels.viz import plots

DDIM_STEPS = (10, 20, 50, 100)


def sections(exp, run) -> list[Section]:
    folder = run.samples
    rows = run.read_metrics()
    times = exp.strip_times()
    out = []
    if exp.is_image:
        x0 = exp.data.holdout(6)
        fwd = dplots.image_strip(exp.forward_strip(x0, times), folder / "forward_strip.png",
                                 "forward process q(x_t | x_0): data to noise")
        rev = exp.reverse_strip(6, EVAL_SEED + 3, times)
        rev = dplots.image_strip(dict(sorted(rev.items(), reverse=True)), folder / "reverse_strip.png",
                                 f"reverse process ({exp.cfg.sampler.name}): noise to data")
        grid = dplots.image_grid(exp.sample(64, seed=EVAL_SEED + 4), folder / "samples.png", "samples (EMA weights)")
        out.append(Section("Samples", image=grid))
        snaps = read_snapshots(folder)
        fig = dplots.image_snapshots(snaps, folder / "snapshots.png")
    else:
        bounds = exp.plot_bounds()
        real = exp.data.holdout(1000)
        fwd = dplots.point_strip(exp.forward_strip(real, times), bounds, folder / "forward_strip.png",
                                 "forward process q(x_t | x_0): data to noise")
        rev = exp.reverse_strip(1000, EVAL_SEED + 3, times)
        rev = dplots.point_strip(dict(sorted(rev.items(), reverse=True)), bounds, folder / "reverse_strip.png",
                                 f"reverse process ({exp.cfg.sampler.name}): noise to data", real=real)
        snaps = read_snapshots(folder)
        fig = dplots.point_snapshots(snaps, real, bounds, folder / "snapshots.png")
    out.append(Section("Forward process", image=fwd,
                       text="x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε in closed form, the same ε for every t."))
    out.append(Section("Reverse process", image=rev, text="One sample path from x_T ~ N(0, I) to x_0."))
    if fig:
        out.append(Section("Samples over training", image=fig,
                           text=f"Drawn by DDIM with {SNAPSHOT_STEPS} steps from the EMA weights at each step."))
    fig = plots.curves(rows, ["loss"], folder / "losses.png", "simple loss ||ε - ε_θ(x_t, t)||²", logy=True)
    if fig:
        out.append(Section("Loss", image=fig))
    evals = [r for r in rows if "emd" in r or "fd" in r]
    if evals:
        wanted = ("step", "modes", "modes_20", "hq_percent", "reverse_kl", "emd", "real_emd", "real_hq_percent",
                  "fd", "real_fd", "confident_percent", "real_confident_percent")
        floors = [{**r, **{k: mean_std(r, k) for k in wanted if k.startswith("real_") and k in r}} for r in evals]
        out.append(Section("Evaluations", html=table(floors, [k for k in wanted if k in evals[-1]]),
                           text="The real_* columns are the real-vs-real floor: disjoint real sets at the same "
                                "sample counts, mean ± std over independent draws."))
    if not exp.is_image:
        out.append(Section("Samplers: steps against EMD and time", html=table(sampler_table(exp)),
                           text="The same trained network sampled by DDPM (T steps) and DDIM (η = 0) with fewer "
                                "steps; EMD against held-out points, n vs n (eval.emd_points); the floor is "
                                "disjoint real sets of the same sizes, mean ± std over draws."))
    return out


def sampler_table(exp, ddim_steps=DDIM_STEPS, n: int | None = None) -> list[dict]:
    """EMD and sampling seconds for DDIM at several step counts and for DDPM with T steps."""
    from fewlabels.metrics.distances import emd

    n = n or exp.cfg.eval.emd_points
    held = exp.data.holdout(n)
    configs = [SamplerConfig(name="ddim", steps=s) for s in ddim_steps if s < exp.schedule.T]
    configs.append(SamplerConfig(name="ddpm", variance=exp.cfg.sampler.variance))
    rows = []
    for sc in configs:
        t0 = time.perf_counter()
        fake = exp.sample(n, sampler=sc)
        seconds = time.perf_counter() - t0
        steps = sc.steps if sc.name == "ddim" else exp.schedule.T
        rows.append({"sampler": sc.name, "steps": steps, "EMD": emd(fake, held), "seconds": seconds})
    rows.append({"sampler": "real data (floor)", "EMD": mean_std(exp.real_floor(), "real_emd")})
    return rows
