"""The deep-RL run's part of report.html: the learning curve (training episodes and
evaluations against environment steps), the losses, and one evaluation episode as a GIF."""

from __future__ import annotations

import numpy as np

from fewlabels.report import Section, table
from fewlabels.rl import plots
from fewlabels.viz.plots import curves

LOSSES = ("policy_loss", "value_loss", "entropy", "approx_kl", "q_loss", "q_mean", "epsilon")


def evaluations(rows: list[dict]) -> list[dict]:
    """The evaluation rows of a deep RL run's metrics, with `mean_return` and `std_return`; runs
    written before RL had one evaluation schema logged them as `eval_return`, `eval_return_std`."""
    out = []
    for r in rows:
        if r.get("mean_return") is None and r.get("eval_return") is not None:
            r = {**r, "mean_return": r["eval_return"], "std_return": r.get("eval_return_std")}
        if r.get("mean_return") is not None:
            out.append(r)
    return out


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    series = {}
    train = [r for r in rows if r.get("ep_return") is not None]
    if train:
        series["training episodes (mean of last 100)"] = (np.array([r["step"] for r in train]),
                                                         np.array([r["ep_return"] for r in train]))
    evals = evaluations(rows)
    if evals:
        series[f"evaluation ({exp.cfg.eval.episodes} deterministic episodes)"] = (
            np.array([r["step"] for r in evals]), np.array([r["mean_return"] for r in evals]))
    fig = plots.return_curves(series, run.samples / "returns.png", f"{exp.cfg.env.id}: return",
                              xlabel="environment steps")
    if fig:
        out.append(Section("Learning curve", image=fig))
    if evals:
        last = evals[-1]
        out.append(Section("Evaluation", html=table([{
            "environment steps": last["step"], "eval return": last["mean_return"],
            "std": last.get("std_return"), "training seconds": last["wall_seconds"] - last.get("eval_seconds", 0),
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
