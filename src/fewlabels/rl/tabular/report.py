"""The tabular RL run's part of report.html: learning curve, greedy policy on the grid, and
how the learned policy compares with the planned optimum when the model is known."""

from __future__ import annotations

import numpy as np

from fewlabels.errors import UserError
from fewlabels.report import Section, table
from fewlabels.rl import plots
from fewlabels.rl.planning.layouts import grid_layout
from fewlabels.rl.tabular.methods import policy_path
from fewlabels.viz.plots import curves


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    learn = [r for r in rows if r.get("return_mean") is not None]
    if learn:
        x = np.array([r["step"] for r in learn])
        series = {f"{exp.cfg.agent.name} (mean of {exp.cfg.train.log_every} episodes)":
                  (x, np.array([r["return_mean"] for r in learn]))}
        evals = [r for r in rows if r.get("mean_return") is not None]
        if evals:
            series["greedy policy (evaluation)"] = (np.array([r["step"] for r in evals]),
                                                    np.array([r["mean_return"] for r in evals]))
        fig = plots.return_curves(series, run.samples / "returns.png", "online return per episode")
        out.append(Section("Learning curve", image=fig,
                           text="Return of the episodes the agent played while learning (ε-greedy), "
                                "and of its greedy policy at each evaluation."))
    fig = curves(rows, ["epsilon", "alpha"], run.samples / "schedules.png", "ε and α over episodes")
    if fig:
        out.append(Section("Exploration and step size", image=fig))
    out += _policy_sections(exp, run)
    out += _planning_section(exp)
    return out


def _policy_sections(exp, run) -> list[Section]:
    layout = grid_layout(exp.env)
    if layout is None:
        return []
    q = exp.q
    best = q.max(axis=1, keepdims=True)
    tied = (q >= best - 1e-9 * np.maximum(1, np.abs(best))).reshape(layout.rows, layout.cols, -1)
    values = best.reshape(layout.rows, layout.cols)
    fig = plots.value_policy_map(layout, values, tied, run.samples / "greedy_policy.png",
                                 "max_a Q(s, a) and the greedy actions")
    out = [Section("Greedy policy", image=fig)]
    walk = policy_path(exp.eval_env, exp.greedy_policy(), exp.cfg.eval.seed, exp.cfg.eval.max_steps)
    fig = plots.paths_on_grid(layout, {"greedy policy": walk}, run.samples / "greedy_path.png",
                              "one episode of the greedy policy")
    out.append(Section("One greedy episode", image=fig))
    return out


def _planning_section(exp) -> list[Section]:
    """When the environment's model is known, planning gives the target learning aims at."""
    from fewlabels.rl.planning import dp as planning
    from fewlabels.rl.planning.mdp import MDP

    try:
        mdp = MDP.from_gym(exp.env, exp.cfg.agent.gamma)
        optimum = planning.value_iteration(mdp, tol=1e-9)
    except UserError as e:
        return [Section("Compared with planning", text=f"Not available: {e}")]
    start = mdp.start
    try:
        greedy = planning.expected_return(mdp, planning.deterministic_policy(mdp, exp.greedy_policy()))
    except UserError:
        greedy = "never ends an episode"
    row = {"v*(s0), value iteration": float(start @ optimum.values),
           "return of the greedy policy (exact)": greedy,
           "max_a Q(s0, a), learned": float(start @ exp.q.max(axis=1)),
           "states where greedy is optimal": f"{_optimal_share(optimum, exp.greedy_policy(), mdp):.1%}"}
    return [Section("Compared with planning", html=table([row]),
                    text=f"The environment's model is known, so value iteration (gamma = {mdp.gamma:g}) gives the "
                         "optimum the learned Q aims at; expectations over the start distribution s0.")]


def _optimal_share(solution, actions, mdp) -> float:
    live = ~mdp.inert
    hit = solution.greedy[np.arange(mdp.n_states), actions]
    return float(hit[live].mean()) if live.any() else 1.0
