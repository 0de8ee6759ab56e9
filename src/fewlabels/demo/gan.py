"""The adversarial part of `fewlabels demo`: Theorem 1 numerically, the parallel lines, GAN vs WGAN-GP
on grid25 and on a 1D manifold, a DCGAN on the 8x8 digits, a Progressive GAN growing 4x4 -> 8x8, and
a class-conditional BigGAN asked for each digit."""

from __future__ import annotations

import html
import sys
from pathlib import Path

from fewlabels.config import load_shipped as shipped_config
from fewlabels.report import Section, images_html, read_snapshots, table


def adversarial_part(out: Path, quick: bool) -> list[Section]:
    from fewlabels.gan.theory import theorem1_check
    from fewlabels.gan.theory_plots import plot_parallel_lines, plot_theorem1
    from fewlabels.loop import open_run, train
    from fewlabels.viz import plots

    checks = [theorem1_check(1), theorem1_check(2)]
    rows = [{k: c[k] for k in ("dim", "C", "JSD", "identity_error", "C_at_equality", "equality_error")} for c in checks]
    sections = [
        Section("Theorem 1, numerically",
                text="For Gaussian mixtures on a fine grid: D*(x) = p_data/(p_data + p_g); "
                     "C(G) = -log 4 + 2 JSD(p_data || p_g), and C(G) = -log 4 exactly when p_g = p_data.",
                html=table(rows, digits=8), image=plot_theorem1(out / "theorem1.png")),
        Section("Why Wasserstein: parallel lines",
                text="P0 = (0, Z), P_theta = (theta, Z): JS is log 2 for every theta != 0 (no gradient), "
                     "while W = |theta| points the generator home.",
                image=plot_parallel_lines(out / "parallel_lines.png")),
    ]
    runs, panels = [], []
    steps = ["train.steps=300", "train.snapshot_every=100", "train.checkpoint_every=300"] if quick else []
    for name in ("grid25_best", "grid25_wgan_gp"):
        cfg = shipped_config(f"gan/{name}.yaml", steps)
        print(f"fewlabels demo: training {name}", file=sys.stderr, flush=True)
        summary = train(cfg, str(out / name), device="cpu", stop_raises=True)
        _, _, exp = open_run(str(out / name), "cpu")
        panels.append((name, exp.sample(1000)))
        m = summary["metrics"]
        runs.append({"run": name, "modes (>=20)": m.get("modes_20"), "HQ %": m.get("hq_percent"),
                     "reverse KL": m.get("reverse_kl"), "EMD": m.get("emd"), "real EMD": m.get("real_emd"),
                     "wall s": summary["wall_seconds"]})
    links = " · ".join(f'<a href="{html.escape(r["run"])}/report.html">{html.escape(r["run"])} report</a>'
                       for r in runs)
    fig = plots.scatter_compare(panels, exp.data.holdout(1000), out / "gan_vs_wgan.png")
    sections.append(Section("GAN vs WGAN-GP on grid25", html=table(runs) + f"<p>{links}</p>", image=fig))
    sections.append(manifold_part(out, quick))
    return sections


def manifold_part(out: Path, quick: bool) -> Section:
    """GAN and WGAN-GP side by side on data with zero area (the unit circle)."""
    from fewlabels.loop import open_run, train
    from fewlabels.run import RunDir
    from fewlabels.viz import plots

    # About the same wall time for both: the WGAN-GP step is 5 critic steps with a gradient penalty.
    budgets = {"circle_gan": 2500, "circle_wgan_gp": 800} if not quick else {"circle_gan": 200, "circle_wgan_gp": 60}
    panels, curves = [], []
    for name, steps in budgets.items():
        every = max(1, steps // 10)
        cfg = shipped_config(f"gan/{name}.yaml", [f"train.steps={steps}", f"train.eval_every={every}",
                                                   "train.snapshot_every=0"])
        print(f"fewlabels demo: training {name}", file=sys.stderr, flush=True)
        train(cfg, str(out / name), device="cpu", stop_raises=True)
        _, _, exp = open_run(str(out / name), "cpu")
        panels.append((name, exp.sample(1000)))
        rows = RunDir(out / name).read_metrics()
        curves += [{"step": r["step"], f"EMD {name}": r["emd"]} for r in rows if "emd" in r]
    plots.scatter_compare(panels, exp.data.holdout(1000), out / "manifold_samples.png")
    fig = plots.curves(curves, ["EMD circle_gan", "EMD circle_wgan_gp"], out / "manifold_emd.png",
                       "EMD to held-out circle points (lower is better)")
    return Section("Data on a 1D manifold: GAN vs WGAN-GP",
                   text="The unit circle has zero area, so the generator's support and the data's are disjoint "
                        "at first: for the optimal discriminator JS is saturated (log 2) and gives no gradient, "
                        "while W still says how far apart they are. In practice a small MLP discriminator "
                        "trained a few steps at a time is far from optimal and smooth, so the non-saturating GAN "
                        "still learns here, and in this CPU budget it reaches the real-data EMD floor first; "
                        "WGAN-GP pays five critic steps with a gradient penalty per generator step. "
                        "Measured, not assumed: see the EMD curves.",
                   html=images_html([out / "manifold_samples.png", fig]))


def digits_gan_part(out: Path, quick: bool) -> list[Section]:
    """A DCGAN on the 8x8 digits: adversarial learning on images, scored in a classifier's features."""
    from fewlabels.loop import open_run, train
    from fewlabels.viz import plots

    steps = 200 if quick else 1200  # about a minute; `fewlabels train gan/digits_dcgan` runs the full recipe
    cfg = shipped_config("gan/digits_dcgan.yaml", [f"train.steps={steps}", f"train.eval_every={steps // 2}",
                                                   f"train.snapshot_every={steps // 4}"])
    print("fewlabels demo: training digits_dcgan", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "digits_dcgan"), device="cpu", stop_raises=True)
    _, run, exp = open_run(str(out / "digits_dcgan"), "cpu")
    m = summary["metrics"]
    grid = plots.image_grid(exp.sample(48, seed=7), out / "digits_dcgan.png", f"DCGAN samples after {steps} steps")
    row = {"steps": steps, "Fréchet distance": m.get("fd"), "real-vs-real floor": m.get("real_fd"),
           "wall s": summary["wall_seconds"]}
    return [Section("A GAN on images: DCGAN on the 8x8 digits",
                    text=f"Conv generator and discriminator, non-saturating loss with R1, EMA generator. "
                         f"Fréchet distance in the features of {m.get('feature_extractor', 'a small classifier')}.",
                    html=table([row]) + images_html([grid])
                    + '<p><a href="digits_dcgan/report.html">digits_dcgan report</a></p>')]


def digits_biggan_part(out: Path, quick: bool) -> list[Section]:
    """A class-conditional BigGAN on the 8x8 digits (configs/gan/digits_biggan.yaml, shortened): the
    generator asked for each class, a truncation strip, and class consistency by the digits
    classifier against its accuracy on real held-out digits."""
    from fewlabels.gan.report import conditional_sections
    from fewlabels.loop import open_run, train

    steps = 20 if quick else 600
    cfg = shipped_config("gan/digits_biggan.yaml", [
        f"train.steps={steps}", f"train.eval_every={steps}", f"train.snapshot_every={steps // 2}",
        f"train.checkpoint_every={steps}", f"train.ema_start={steps // 4}"])
    print("fewlabels demo: training digits_biggan", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "digits_biggan"), device="cpu", stop_raises=True)
    _, run, exp = open_run(str(out / "digits_biggan"), "cpu")
    m = summary["metrics"]
    by_class, strip = conditional_sections(exp, run)
    row = {"steps": steps, "class consistency %": m.get("class_consistency"),
           "real held-out digits %": m.get("real_class_consistency"), "Fréchet distance": m.get("fd"),
           "real-vs-real floor": m.get("real_fd"), "intra-class FD": m.get("intra_fd"),
           "its floor": m.get("real_intra_fd"), "wall s": summary["wall_seconds"]}
    return [Section("BigGAN: a class-conditional GAN, asked for each digit",
                    text="Residual generator whose batch norms take gains and biases from one shared class "
                         "embedding and a chunk of z; projection discriminator; spectral norm in both, "
                         "orthogonal initialisation and regularisation, hinge loss, 2 D steps per G step, EMA "
                         "generator with standing statistics. Class consistency: the share of samples that the "
                         "digits classifier assigns to the class asked for (the same classifier on real "
                         "held-out digits: the second column).",
                    html=table([row]) + images_html([by_class.image, strip.image])
                    + '<p><a href="digits_biggan/report.html">digits_biggan report</a></p>')]


def digits_progan_part(out: Path, quick: bool) -> list[Section]:
    """A Progressive GAN on the 8x8 digits (configs/gan/digits_progan.yaml, shortened): 4x4 for one
    phase, the 8x8 block faded in over the next, then trained at 8x8. Its growth strip shows the
    end of 4x4, the middle of the fade-in and the end, through the report's plotting function."""
    from fewlabels.loop import train
    from fewlabels.viz import plots

    # Phases of 8,000 images (64,000 in the config, 800,000 in the paper): 250 steps of 32 each,
    # about a minute on one core; --quick: 10 steps a phase, a few seconds.
    batch, phase_steps = 32, 10 if quick else 250
    steps = 3 * phase_steps
    cfg = shipped_config("gan/digits_progan.yaml", [
        f"model.phase_images={batch * phase_steps}", f"train.batch_size={batch}", f"train.steps={steps}",
        "train.eval_every=0", f"train.snapshot_every={phase_steps // 2}", f"train.checkpoint_every={steps}",
        "train.threads=1"])
    print("fewlabels demo: training digits_progan", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "digits_progan"), device="cpu", stop_raises=True)
    snaps = read_snapshots(out / "digits_progan" / "samples")
    low = [sn for sn in snaps if int(sn["level"]) == 0]
    fading = [sn for sn in snaps if float(sn["alpha"]) < 1]
    strip = low[-1:] + sorted(fading, key=lambda sn: abs(float(sn["alpha"]) - 0.5))[:1] + snaps[-1:]
    fig = plots.image_snapshots(strip, out / "digits_progan_growth.png", columns=len(strip))
    stages = " → ".join(f"step {int(sn['step'])}: " + ("4×4, shown enlarged" if int(sn["level"]) == 0 else
                                                        f"8×8 at α = {float(sn['alpha']):.2f}") for sn in strip)
    m = summary["metrics"]
    row = {"steps": steps, "images per phase": batch * phase_steps, "Fréchet distance": m.get("fd"),
           "real-vs-real floor": m.get("real_fd"), "wall s": summary["wall_seconds"]}
    return [Section("Progressive GAN: growing from 4×4 to 8×8",
                    text="Every block exists from the start; the stage follows from the images shown. G and D "
                         "train at 4×4 for one phase, then the 8×8 block fades in (its output blended with the "
                         "upsampled 4×4 one by α from 0 to 1) and trains for one more phase. Equalised learning "
                         "rate, pixel norm, minibatch std over groups of 4, WGAN-GP with the drift term, Adam's "
                         f"moments reset at each stage change, EMA generator. {stages}. On 8×8 images there is "
                         "one growth step and a short budget, so the Fréchet distance stays well above the DCGAN's: "
                         "the method is for 32 pixels and up.",
                    html=table([row]) + images_html([fig])
                    + '<p><a href="digits_progan/report.html">digits_progan report</a></p>')]
