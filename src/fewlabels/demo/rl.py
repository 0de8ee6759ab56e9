"""The reinforcement-learning parts of `fewlabels demo`: the Grid World (exact planning, Figure 4.1,
random vs optimal policy, a large grid's value map), FrozenLake solved by planning and by
Q-learning, CliffWalking learned by Q-learning and SARSA (Figure 6.4), PPO on CartPole, and Go on
5x5 by AlphaZero-style self-play."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from fewlabels.config import load_shipped as shipped_config
from fewlabels.report import Section, images_html, table
from fewlabels.rl import plots
from fewlabels.rl.envs import make_env
from fewlabels.rl.planning import dp as pl
from fewlabels.rl.planning.gridworld import Grid, GridMDP
from fewlabels.rl.planning.layouts import GridLayout, grid_layout
from fewlabels.rl.planning.mdp import MDP
from fewlabels.rl.tabular.methods import policy_path, run_policy

FIGURE_4_1_KS = (0, 1, 2, 3, 10)


def sutton_barto_grid() -> GridMDP:
    """Sutton & Barto Example 4.1 / the lecture's Grid World: 4x4, grey terminal corners, -1 per move."""
    return GridMDP(Grid.make(4, 4, [(0, 0), (3, 3)]), gamma=1.0)


def figure_4_1(out: Path) -> Path:
    mdp = sutton_barto_grid()
    layout = GridLayout.of_grid(mdp.grid)
    ev = pl.policy_evaluation(mdp, pl.random_policy(mdp), tol=1e-10, record=FIGURE_4_1_KS)
    history = {**{k: ev.history[k] for k in FIGURE_4_1_KS}, "∞": ev.values}
    shape = mdp.shape
    greedy = {k: pl.greedy_actions(mdp, pl.q_values(mdp, v)).reshape(*shape, 4) for k, v in history.items()}
    return plots.figure_4_1(layout, {k: v.reshape(shape) for k, v in history.items()}, greedy,
                            out / "figure_4_1.png")


def random_vs_optimal(out: Path) -> Path:
    mdp = sutton_barto_grid()
    v_random = pl.policy_evaluation(mdp, pl.random_policy(mdp)).values
    best = pl.value_iteration(mdp)
    return plots.random_vs_optimal(GridLayout.of_grid(mdp.grid), v_random.reshape(mdp.shape),
                                   best.values.reshape(mdp.shape), best.greedy.reshape(*mdp.shape, 4),
                                   out / "random_vs_optimal.png")


def big_grid(out: Path, quick: bool) -> Section:
    """Value iteration on a large grid: how long it takes, and its value map with walls."""
    n = 200 if quick else 1000
    mdp = GridMDP(Grid.make(n, n, [(0, 0), (n - 1, n - 1)]))
    t0 = time.perf_counter()
    sol = pl.value_iteration(mdp, tol=1e-6)
    seconds = time.perf_counter() - t0
    rows, cols = 40, 60  # a maze-like grid for the picture: walls with gaps
    walls = [(r, c) for c in range(10, cols, 12) for r in range(rows) if (r + c) % 40 > 5]
    maze = GridMDP(Grid.make(rows, cols, [(0, cols - 1), (rows - 1, 0)], walls))
    v = pl.value_iteration(maze).values.reshape(rows, cols)
    fig = plots.value_policy_map(GridLayout.of_grid(maze.grid), v, None, out / "maze_values.png",
                                 "v*(s) = -(steps to the nearest terminal cell) on a 40x60 grid with walls")
    row = {"grid": f"{n}x{n}", "states": n * n, "sweeps": sol.sweeps, "seconds": round(seconds, 2),
           "states x sweeps per second": f"{n * n * sol.sweeps / seconds:.3g}",
           "max |v + distance|": float(np.abs(sol.values + _distance_to_corners(n)).max())}
    return Section("Value iteration at scale", image=fig, html=table([row]),
                   text="Value iteration with gamma = 1 from v = 0 on a large grid world with terminals in two "
                        "corners; the result is minus the distance to the nearest corner. benchmarks/planning.py "
                        "compares it with a plain Python double loop.")


def _distance_to_corners(n: int) -> np.ndarray:
    r, c = np.divmod(np.arange(n * n), n)
    return np.minimum(r + c, 2 * (n - 1) - r - c)


def frozen_lake(out: Path, quick: bool) -> Section:
    """Planning on FrozenLake's own model, checked by playing the real environment."""
    env = make_env("FrozenLake-v1")
    mdp = MDP.from_gym(env, gamma=1.0)
    sol = pl.value_iteration(mdp, tol=1e-10)
    episodes = 1000 if quick else 10_000
    returns, _ = run_policy(env, sol.policy, episodes, seed=0, max_steps=100)
    exact = pl.policy_evaluation(mdp, pl.deterministic_policy(mdp, sol.policy), tol=0, max_sweeps=100).values
    layout = grid_layout(env)
    one = np.zeros_like(sol.greedy)
    one[np.arange(mdp.n_states), sol.policy] = True
    one[mdp.terminal] = False
    fig = plots.value_policy_map(layout, sol.values.reshape(4, 4), one.reshape(4, 4, 4), out / "frozenlake.png",
                                 "FrozenLake-v1: v*(s) = P(reach the goal) and the value-iteration policy")
    row = {"policy": "value iteration (gamma = 1)", "episodes played": episodes,
           "success rate": float(returns.mean()), "exact P(success within 100 steps)": float(mdp.start @ exact)}
    return Section("FrozenLake: planning with the environment's own model", image=fig, html=table([row]),
                   text="The slippery lake moves you where you meant with probability 1/3. The model is "
                        "Gymnasium's own P table; the policy is played in the real environment (100-step limit).")


def cliff_walking(out: Path, quick: bool) -> list[Section]:
    """Sutton & Barto Figure 6.4: Q-learning vs SARSA on CliffWalking, trained by the spine."""
    from fewlabels.loop import open_run, train
    from fewlabels.run import RunDir

    series, paths, rows = {}, {}, []
    seeds = 5 if quick else 20
    for name in ("cliff_q_learning", "cliff_sarsa"):
        cfg = shipped_config(f"rl/{name}.yaml", ["train.steps=200"] if quick else [])
        print(f"fewlabels demo: training {name}", file=sys.stderr, flush=True)
        summary = train(cfg, str(out / name), device="cpu", stop_raises=True)
        _, _, exp = open_run(str(out / name), "cpu")
        logged = [r for r in RunDir(out / name).read_metrics() if r.get("return_mean") is not None]
        label = "Q-learning" if cfg.agent.name == "q_learning" else "SARSA"
        returns = online_returns(cfg, seeds)
        series[label] = (np.arange(1, returns.size + 1), _smooth(returns, 10))
        paths[label] = policy_path(exp.eval_env, exp.greedy_policy(), seed=0, max_steps=100)
        online = np.array([r["return_mean"] for r in logged])
        rows.append({"run": name, "greedy path (steps)": len(paths[label]) - 1,
                     "greedy return": summary["metrics"].get("mean_return"),
                     "mean online return, last half": float(online[len(online) // 2:].mean()),
                     f"same, mean of {seeds} seeds": float(returns[returns.size // 2:].mean())})
    layout = grid_layout(make_env("CliffWalking-v1"))
    curve = plots.return_curves(series, out / "cliff_returns.png",
                                f"CliffWalking, ε = 0.1: online return, mean of {seeds} runs, "
                                "smoothed over 10 episodes", ylim=(-100, 0))
    walk = plots.paths_on_grid(layout, paths, out / "cliff_paths.png", "greedy paths after learning")
    links = " · ".join(f'<a href="{r["run"]}/report.html">{r["run"]} report</a>' for r in rows)
    return [Section("CliffWalking: Q-learning vs SARSA", image=curve, html=table(rows) + f"<p>{links}</p>",
                    text="Q-learning learns the optimal path along the cliff but, exploring with ε = 0.1, falls "
                         "off now and then; SARSA's targets include its own exploration, so it learns the safer "
                         "path and earns more online (Sutton & Barto, Figure 6.4)."),
            Section("Learned paths", image=walk)]


def online_returns(cfg, seeds: int) -> np.ndarray:
    """The return of every training episode, averaged over runs with seeds 0..seeds-1 (the
    textbook averages its Figure 6.4 over 100 runs). These runs are kept in memory only."""
    from fewlabels.rl.tabular.trainer import TabularExperiment

    total = np.zeros(cfg.train.steps)
    for seed in range(seeds):
        exp = TabularExperiment(dataclasses.replace(cfg, seed=seed))
        total += [exp.train_step(step)["return"] for step in range(1, cfg.train.steps + 1)]
    return total / seeds


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last `window` values (fewer at the start)."""
    c = np.cumsum(np.concatenate([[0.0], x]))
    lo = np.maximum(0, np.arange(1, x.size + 1) - window)
    return (c[1:] - c[lo]) / (np.arange(1, x.size + 1) - lo)


def gridworld_part(out: Path, quick: bool) -> list[Section]:
    out.mkdir(parents=True, exist_ok=True)
    print("fewlabels demo: planning on the grid world", file=sys.stderr, flush=True)
    return [
        Section("MDPs and the Grid World: random policy vs optimal policy", image=random_vs_optimal(out),
                text="Actions up, right, down, left; reward -1 per move; the grey cells end the episode. Left: the "
                     "random policy (each action with probability 1/4) and its values v_π; right: the optimal "
                     "policy (every tied best action) and v*, minus the distance to the nearest grey cell."),
        Section("Iterative policy evaluation (Sutton & Barto, Figure 4.1)", image=figure_4_1(out),
                text="v_k of the random policy after k synchronous sweeps, and the greedy policy with respect to "
                     "each v_k: from k = 3 on it is already optimal."),
        big_grid(out, quick),
        frozen_lake(out, quick),
        *cliff_walking(out, quick),
    ]


def deep_rl_part(out: Path, quick: bool) -> list[Section]:
    """PPO on CartPole: policy gradients with a deep network, learning curve and one episode."""
    from fewlabels.loop import open_run, train
    from fewlabels.rl.deep.report import evaluations

    steps = 4096 if quick else 60_000
    cfg = shipped_config("rl/cartpole_ppo.yaml", [f"train.steps={steps}", "eval.gif_frames=300"])
    print("fewlabels demo: training cartpole_ppo", file=sys.stderr, flush=True)
    summary = train(cfg, str(out / "cartpole_ppo"), device="cpu", stop_raises=True)
    _, run, exp = open_run(str(out / "cartpole_ppo"), "cpu")
    rows = run.read_metrics()
    evals = evaluations(rows)
    solved = next((r for r in evals if r["mean_return"] >= 475), None)
    row = {"environment steps": summary["steps"], "final eval return": summary["metrics"].get("mean_return"),
           "first eval >= 475 at step": solved["step"] if solved else "not yet",
           "training seconds (evaluation excluded)": round(summary["wall_seconds"] - evals[-1]["eval_seconds"], 1)}
    images = [run.samples / name for name in ("returns.png", "episode.gif") if (run.samples / name).exists()]
    return [Section("Policy gradients: PPO on CartPole-v1",
                    text="A pole on a cart: +1 per step while it stays up, at most 500. PPO with RL Zoo's tuned "
                         "settings, 8 environments; evaluation = 10 deterministic episodes every 2,000 steps.",
                    html=table([row]) + images_html(images)
                    + '<p><a href="cartpole_ppo/report.html">cartpole_ppo report</a></p>')]


def go_part(out: Path, quick: bool) -> list[Section]:
    """Go on 5x5: AlphaZero-style self-play for 256 games (about 35 s on one core), then its win rate
    against the random player and one of its games as a board diagram."""
    from fewlabels.loop import train

    games = 16 if quick else 256
    cfg = shipped_config("go/go5_alphazero.yaml", [
        f"train.steps={games}", "alphazero.simulations=16", f"alphazero.parallel_games={16 if quick else 32}",
        "train.eval_every=0", f"eval.games={4 if quick else 40}"])
    print("fewlabels demo: training go5_alphazero", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    summary = train(cfg, str(out / "go5_alphazero"), device="cpu", stop_raises=True)
    m = summary["metrics"]
    row = {"self-play games": summary["steps"], "training seconds (evaluation excluded)":
           round(summary["wall_seconds"] - m.get("eval_seconds", 0.0), 1),
           f"wins against random, {cfg.eval.simulations} playouts a move": m.get("win_rate_random"),
           "wins against random, network alone": m.get("win_rate_random_net"), "demo part seconds":
           round(time.perf_counter() - t0, 1)}
    board = out / "go5_alphazero" / "samples" / "game.png"
    return [Section("Go: AlphaZero-style self-play on 5x5",
                    text="The lecture's Go: state = the stones, action = where to put the next one, reward 1 for a "
                         "win at the end. Komi 24.5, so Black wins only by owning the whole board. A residual "
                         "policy-value network learns from its own games, each move chosen by PUCT search; "
                         f"then {cfg.eval.games} games against a random player, colours alternating. "
                         "`fewlabels gtp` plays it over GTP; `fewlabels match` against GNU Go.",
                    html=table([row]) + images_html([board] if board.exists() else [])
                    + '<p><a href="go5_alphazero/report.html">go5_alphazero report</a></p>')]
