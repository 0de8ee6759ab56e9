"""The deep-RL run's part of report.html: the learning curve (training episodes and
evaluations against environment steps), the losses, and one evaluation episode as a GIF."""

from __future__ import annotations

import numpy as np

from fewlabels.report import Section, table
from fewlabels.rl import plots
from fewlabels.viz.plots import curves

LOSSES = ("policy_loss", "value_loss", "entropy", "approx_kl", "q_loss", "q_mean", "epsilon")


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    series = {}
    train = [r for r in rows if r.get("ep_return") is not None]
    if train:
        series["training episodes (mean of last 100)"] = (np.array([r["step"] for r in train]),
                                                         np.array([r["ep_return"] for r in train]))
    evals = [r for r in rows if r.get("eval_return") is not None]
    if evals:
        series[f"evaluation ({exp.cfg.eval.episodes} deterministic episodes)"] = (
            np.array([r["step"] for r in evals]), np.array([r["eval_return"] for r in evals]))
    fig = plots.return_curves(series, run.samples / "returns.png", f"{exp.cfg.env.id}: return",
                              xlabel="environment steps")
    if fig:
        out.append(Section("Learning curve", image=fig))
    if evals:
        last = evals[-1]
        out.append(Section("Evaluation", html=table([{
            "environment steps": last["step"], "eval return": last["eval_return"],
            "std": last.get("eval_return_std"), "training seconds": last["wall_seconds"] - last.get("eval_seconds", 0),
            "evaluation seconds": last.get("eval_seconds")}])))
    fig = curves(rows, [k for k in LOSSES if any(k in r for r in rows)], run.samples / "losses.png",
                 "losses against environment steps")
    if fig:
        out.append(Section("Losses", image=fig))
    if exp.cfg.eval.gif:
        try:
            gif = exp.record_gif(run.samples / "episode.gif")
            out.append(Section("One evaluation episode", image=gif))
        except Exception as e:  # rendering needs pygame / OpenGL; a report never fails for it
            out.append(Section("One evaluation episode", text=f"Not recorded: {type(e).__name__}: {e}"))
    return out
