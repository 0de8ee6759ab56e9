"""`fewlabels demo`: the lecture in one command, ending in one HTML page that links the runs."""

from __future__ import annotations

import html
import json
import sys
import time
from pathlib import Path

from fewlabels import config as configlib
from fewlabels.errors import UserError
from fewlabels.report import Section, page, table

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def shipped_config(relative: str, overrides: list[str]):
    path = CONFIGS / relative
    if not path.is_file():
        raise UserError(f"shipped config {str(path)!r} is missing; run the demo from a checkout of fewlabels")
    return configlib.load(path, overrides)


def adversarial_part(out: Path, quick: bool) -> list[Section]:
    from fewlabels.gan.theory import theorem1_check
    from fewlabels.train import open_run, train
    from fewlabels.viz import plots
    from fewlabels.viz.theory_plots import plot_parallel_lines, plot_theorem1

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
        summary = train(cfg, str(out / name), device="cpu")
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
    from fewlabels.run import RunDir
    from fewlabels.train import open_run, train
    from fewlabels.viz import plots

    # About the same wall time for both: the WGAN-GP step is 5 critic steps with a gradient penalty.
    budgets = {"circle_gan": 2500, "circle_wgan_gp": 800} if not quick else {"circle_gan": 200, "circle_wgan_gp": 60}
    panels, curves = [], []
    for name, steps in budgets.items():
        every = max(1, steps // 10)
        cfg = shipped_config(f"gan/{name}.yaml", [f"train.steps={steps}", f"train.eval_every={every}",
                                                   "train.snapshot_every=0"])
        print(f"fewlabels demo: training {name}", file=sys.stderr, flush=True)
        train(cfg, str(out / name), device="cpu")
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
                   html=plots_html([out / "manifold_samples.png", fig]))


def plots_html(paths) -> str:
    from fewlabels.report import img_tag

    return "".join(img_tag(p) for p in paths if p is not None)


def digits_gan_part(out: Path, quick: bool) -> list[Section]:
    """A DCGAN on the 8x8 digits: adversarial learning on images, scored in a classifier's features."""
    from fewlabels.train import open_run, train
    from fewlabels.viz import plots

    steps = 200 if quick else 2000
    cfg = shipped_config("gan/digits_dcgan.yaml", [f"train.steps={steps}", f"train.eval_every={steps // 2}",
                                                   f"train.snapshot_every={steps // 4}"])
    print("fewlabels demo: training digits_dcgan", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "digits_dcgan"), device="cpu")
    _, run, exp = open_run(str(out / "digits_dcgan"), "cpu")
    m = summary["metrics"]
    grid = plots.image_grid(exp.sample(48, seed=7), out / "digits_dcgan.png", f"DCGAN samples after {steps} steps")
    row = {"steps": steps, "Fréchet distance": m.get("fd"), "real-vs-real floor": m.get("real_fd"),
           "wall s": summary["wall_seconds"]}
    return [Section("A GAN on images: DCGAN on the 8x8 digits",
                    text=f"Conv generator and discriminator, non-saturating loss with R1, EMA generator. "
                         f"Fréchet distance in the features of {m.get('feature_extractor', 'a small classifier')}.",
                    html=table([row]) + plots_html([grid])
                    + '<p><a href="digits_dcgan/report.html">digits_dcgan report</a></p>')]


def diffusion_part(out: Path, quick: bool) -> list[Section]:
    """DDPM on the swiss roll and grid25, DDIM, and diffusion next to the GAN (same metrics)."""
    from fewlabels.diffusion.demo import diffusion_part as part

    return part(out, quick)


def gridworld_part(out: Path, quick: bool) -> list[Section]:
    """MDPs and the Grid World: planning, random vs optimal policy, Q-learning vs SARSA."""
    from fewlabels.rl.demo import gridworld_part as part

    return part(out, quick)


def deep_rl_part(out: Path, quick: bool) -> list[Section]:
    """PPO on CartPole: policy gradients with a deep network, learning curve and one episode."""
    from fewlabels.train import open_run, train

    steps = 4096 if quick else 60_000
    cfg = shipped_config("rl/cartpole_ppo.yaml", [f"train.steps={steps}", "eval.gif_frames=300"])
    print("fewlabels demo: training cartpole_ppo", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "cartpole_ppo"), device="cpu")
    _, run, exp = open_run(str(out / "cartpole_ppo"), "cpu")
    rows = run.read_metrics()
    evals = [r for r in rows if "eval_return" in r]
    solved = next((r for r in evals if r["eval_return"] >= 475), None)
    row = {"environment steps": summary["steps"], "final eval return": summary["metrics"].get("eval_return"),
           "first eval >= 475 at step": solved["step"] if solved else "not yet",
           "training seconds (evaluation excluded)": round(summary["wall_seconds"] - evals[-1]["eval_seconds"], 1)}
    images = [run.samples / name for name in ("returns.png", "episode.gif") if (run.samples / name).exists()]
    return [Section("Policy gradients: PPO on CartPole-v1",
                    text="A pole on a cart: +1 per step while it stays up, at most 500. PPO with RL Zoo's tuned "
                         "settings, 8 environments; evaluation = 10 deterministic episodes every 2,000 steps.",
                    html=table([row]) + plots_html(images)
                    + '<p><a href="cartpole_ppo/report.html">cartpole_ppo report</a></p>')]


def demo(out: str = "runs/demo", quick: bool = False) -> str:
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sections = adversarial_part(root, quick)
    sections += digits_gan_part(root, quick)
    sections += diffusion_part(root, quick)
    sections += gridworld_part(root, quick)
    sections += deep_rl_part(root, quick)
    index = root / "index.html"
    index.write_text(page("fewlabels demo: the lecture in one command", sections,
                          subtitle=f"made in {time.perf_counter() - t0:.0f} s on the CPU"))
    return json.dumps({"index": str(index), "seconds": round(time.perf_counter() - t0, 1)})
