"""The diffusion part of `fewlabels demo`: DDPM on the swiss roll and grid25, the forward and
reverse strips, DDIM's steps against EMD and time, and diffusion next to the GAN on grid25 with
the same metrics."""

from __future__ import annotations

import sys
from pathlib import Path

from fewlabels.report import Section, images_html, table
from fewlabels.run import RunDir

CONFIGS = ("swissroll", "grid25")
METRICS = ("emd", "real_emd", "modes", "modes_20", "hq_percent", "reverse_kl")


def diffusion_part(out: Path, quick: bool) -> list[Section]:
    from fewlabels.config import load_shipped as shipped_config
    from fewlabels.diffusion.config import SamplerConfig
    from fewlabels.diffusion.report import sampler_table
    from fewlabels.loop import open_run, train
    from fewlabels.viz import plots

    # --quick (tests): a few hundred steps and T = 100 (the linear β rescaled to keep ᾱ_T ≈ 0).
    budget = ["train.steps=300", "train.snapshot_every=100", "train.checkpoint_every=300", "schedule.T=100",
              "eval.samples=500"] if quick else []
    rows, sections, exps = [], [], {}
    for name in CONFIGS:
        run_name = f"diffusion_{name}"
        cfg = shipped_config(f"diffusion/{name}.yaml", budget)
        print(f"fewlabels demo: training {run_name}", file=sys.stderr, flush=True)
        summary = train(cfg, str(out / run_name), device="cpu", stop_raises=True)
        _, _, exp = open_run(str(out / run_name), "cpu")
        exps[name] = exp
        rows.append({"run": run_name, **{k: summary["metrics"].get(k) for k in METRICS},
                     "wall s": summary["wall_seconds"]})
    grid = exps["grid25"]
    samples = out / "diffusion_grid25" / "samples"
    sections.append(Section(
        "Diffusion: the forward and the reverse process",
        text="Forward: q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I) turns the grid into noise in closed form. "
             "Reverse: DDPM's ancestral sampler walks T = 1000 steps back from x_T ~ N(0, I).",
        html=images_html([samples / "forward_strip.png", samples / "reverse_strip.png"])))

    # The GAN of the adversarial part, on the same data, scored by the same protocol.
    panels = [("DDPM, 1000 steps", grid.sample(1000)),
              ("DDIM, 50 steps", grid.sample(1000, sampler=SamplerConfig(name="ddim", steps=50)))]
    gan_dir = out / "grid25_best"
    gan = RunDir(gan_dir).read_summary()
    if gan is not None and "metrics" in gan:
        rows.append({"run": "grid25_best (GAN)", **{k: gan["metrics"].get(k) for k in METRICS},
                     "wall s": gan["wall_seconds"]})
        panels.insert(0, ("GAN (grid25_best)", open_run(str(gan_dir), "cpu")[2].sample(1000)))
    links = " · ".join(f'<a href="diffusion_{n}/report.html">diffusion_{n} report</a>' for n in CONFIGS)
    fig = plots.scatter_compare(panels, grid.data.holdout(1000), out / "diffusion_vs_gan.png")
    sections.append(Section(
        "Diffusion next to the GAN",
        text="Same data, same metrics (EMD against held-out points with the real-vs-real floor; on grid25 the "
             "PacGAN protocol: modes with ≥ 1 and ≥ 20 high-quality samples, high-quality %, reverse KL). "
             "Diffusion covers every mode but leaves some samples between modes, which lowers high-quality % "
             "and barely moves EMD.",
        html=table(rows) + f"<p>{links}</p>", image=fig))
    sections.append(Section("DDIM: fewer steps", html=table(sampler_table(grid)),
                            text="The same grid25 network sampled with fewer steps: DDIM (η = 0) against "
                                 "DDPM's 1000; EMD on 1,000 points and seconds on this CPU."))
    return sections
