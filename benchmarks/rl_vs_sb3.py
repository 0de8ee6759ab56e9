"""CartPole-v1: our PPO and DQN against Stable-Baselines3's, side by side in one run.

The headline is like for like: SB3 given *our* tuned hyper-parameters (the same numbers read from
configs/rl/cartpole_{ppo,dqn}.yaml: epochs, minibatches, n_steps, learning rate and its schedule,
network size and activation, number of environments, ...) against ours with
`env.vectorization: sync`, i.e. Python environments stepped one after another, as SB3's
DummyVecEnv does (DQN: both as plain DQN, since SB3 has no Double DQN). What is left between
those two rows is the library. The other rows, labelled:
ours as shipped (Gymnasium's own vectorised CartPole), and both sides with RL Zoo's settings
(configs/rl/cartpole_{ppo,dqn}_zoo.yaml, which is what SB3 users run). Plus our REINFORCE and A2C.

    pip install -e '.[bench]'                       # stable-baselines3, pinned in constraints.txt
    python benchmarks/rl_vs_sb3.py                  # seeds 0-4, every row (long: full budgets)
    python benchmarks/rl_vs_sb3.py --fresh          # seeds 100-109, never used for tuning
    python benchmarks/rl_vs_sb3.py --seeds 0 1 --algos ppo --sides ours_sync sb3_ours
    python benchmarks/rl_vs_sb3.py --fresh --until-solved   # times to solve only, both sides stop there

Both sides: one torch thread, evaluation every 2,000 environment steps with 10 deterministic
episodes on a separate environment, its time excluded. Every run uses its config's whole
budget (train.steps). Per row: how many seeds reached an evaluation ≥ 475 (the unsolved ones
named), and MEDIANS OVER ALL SEEDS of environment steps and training seconds to the first
evaluation ≥ 475, an unsolved seed counted at its budget (all its steps, all its training
seconds), so a row cannot look fast by dropping its failures; then the final evaluation and
training throughput. Seconds include building the agent and its environments on both sides;
a warm-up run first pays process-wide import costs. Our evaluations happen at the first
rollout boundary at or after each multiple of 2,000 (PPO: 2,048, 4,096, ...), SB3's at the
exact multiple.

Timing ratios mean something only on an otherwise idle machine. Prints markdown tables and
writes JSON (default benchmarks/results/rl_vs_sb3.json, or rl_vs_sb3_fresh.json with --fresh).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import CONFIGS, markdown  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.loop import train  # noqa: E402
from fewlabels.rl.deep.report import evaluations  # noqa: E402
from fewlabels.run import RunDir  # noqa: E402

SOLVED = 475.0
EVAL_EVERY, EVAL_EPISODES, EVAL_SEED = 2000, 10, 2024
FRESH_SEEDS = list(range(100, 110))  # never used to tune any shipped config
UNTIL_SOLVED = False  # --until-solved: every run stops at its first evaluation >= SOLVED (no final return)


class Solved(Exception):
    """--until-solved: raised from our run directory's log when an evaluation reaches SOLVED."""

# side -> (config per algorithm, runner, overrides, label). Order = table order: like for like first.
TUNED = {"ppo": "cartpole_ppo", "dqn": "cartpole_dqn", "a2c": "cartpole_a2c", "reinforce": "cartpole_reinforce"}
ZOO = {"ppo": "cartpole_ppo_zoo", "dqn": "cartpole_dqn_zoo"}
SIDES = {
    "ours_sync": (TUNED, "ours", ["env.vectorization=sync"], "fewlabels, {cfg}.yaml, env.vectorization: sync"),
    "sb3_ours": (TUNED, "sb3", [], "SB3 with our settings ({cfg}.yaml), DummyVecEnv"),
    "ours": (TUNED, "ours", [], "fewlabels, {cfg}.yaml as shipped"),
    "ours_zoo": (ZOO, "ours", [], "fewlabels, RL Zoo settings ({cfg}.yaml)"),
    "sb3_zoo": (ZOO, "sb3", [], "SB3, RL Zoo settings ({cfg}.yaml)"),
}
SB3_REFERENCE = {"ours_sync": "sb3_ours", "ours": "sb3_ours", "ours_zoo": "sb3_zoo"}  # the ratio column
LIKE_FOR_LIKE = ("ours_sync", "sb3_ours")
# SB3's DQN has no Double DQN, so both like-for-like DQN rows run cartpole_dqn.yaml as plain DQN.
LIKE_FOR_LIKE_OVERRIDES = {"dqn": ["agent.double=false"]}


def load_config(name: str, seed: int, overrides: list[str] = ()):
    return configlib.load(CONFIGS / "rl" / f"{name}.yaml", [
        f"seed={seed}", f"train.eval_every={EVAL_EVERY}", f"eval.episodes={EVAL_EPISODES}", f"eval.seed={EVAL_SEED}",
        "eval.gif=false", "train.checkpoint_every=100000000", *overrides])


def summarise(evals: list[tuple[int, float, float]], budget: int, seed: int) -> dict:
    """evals: (environment steps, eval return, training seconds so far), in order."""
    first = next(((s, sec) for s, ret, sec in evals if ret >= SOLVED), None)
    return {"seed": seed, "solved": first is not None,
            # unsolved: counted at the budget, all of it
            "steps_to_solve": first[0] if first else budget, "seconds_to_solve": first[1] if first else evals[-1][2],
            "final_return": None if UNTIL_SOLVED else evals[-1][1], "train_seconds": evals[-1][2],
            "steps_per_second": evals[-1][0] / evals[-1][2], "budget": budget, "curve": evals}


# ---- ours ------------------------------------------------------------------------------------
def run_ours(name: str, seed: int, overrides: list[str] = ()) -> dict:
    cfg = load_config(name, seed, overrides)
    with tempfile.TemporaryDirectory() as out:
        log = RunDir.log

        def log_until_solved(run, step, values):  # --until-solved: stop once this row is written
            row = log(run, step, values)
            if UNTIL_SOLVED and values.get("mean_return", -np.inf) >= SOLVED:
                run.close()
                raise Solved
            return row

        RunDir.log = log_until_solved
        try:
            train(cfg, out, device="cpu")
        except Solved:
            pass
        finally:
            RunDir.log = log
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["mean_return"], r["wall_seconds"] - r["eval_seconds"]) for r in evaluations(rows)]
    return summarise(evals, cfg.train.steps, seed)


# ---- Stable-Baselines3, given one of our configs ----------------------------------------------
def sb3_model(cfg, seed: int):
    """An SB3 PPO or DQN with exactly the numbers of our config (refused where SB3 has no
    equivalent), on a DummyVecEnv of cfg.env.num_envs CartPoles."""
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    a, e = cfg.agent, cfg.env
    if e.normalize_obs or e.normalize_reward or e.reward_clip is not None or e.kwargs or e.max_episode_steps:
        raise SystemExit(f"{cfg.name}: env options other than id and num_envs have no SB3 mapping here")
    env = make_vec_env(e.id, n_envs=e.num_envs, seed=seed)
    linear = lambda start: (lambda remaining: start * remaining)  # noqa: E731 (SB3's progress_remaining)
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
    if cfg.family == "pg":
        if a.algo != "ppo" or a.optimizer != "adam":
            raise SystemExit(f"{cfg.name}: only PPO with Adam is mapped to SB3")
        # SB3's ActorCriticPolicy: separate pi/vf MLPs, orthogonal init, Adam eps 1e-5: as ours.
        return PPO("MlpPolicy", env, learning_rate=linear(a.lr) if a.anneal_lr else a.lr, n_steps=a.n_steps,
                   batch_size=a.minibatch_size, n_epochs=a.epochs, gamma=a.gamma, gae_lambda=a.gae_lambda,
                   clip_range=linear(a.clip) if a.anneal_clip else a.clip, clip_range_vf=a.clip_value,
                   normalize_advantage=a.normalize_advantage, ent_coef=a.ent_coef, vf_coef=a.vf_coef,
                   max_grad_norm=a.max_grad_norm if a.max_grad_norm is not None else float("inf"),
                   policy_kwargs={"net_arch": {"pi": list(a.hidden), "vf": list(a.hidden)},
                                  "activation_fn": activation[a.activation], "ortho_init": a.ortho_init},
                   seed=seed, device="cpu")
    if a.double or a.loss != "huber":
        raise SystemExit(f"{cfg.name}: SB3's DQN has no Double DQN (set agent.double=false) and uses the Huber loss")
    # Our Q-network is an MLP with ReLU (SB3's default); Adam with torch's defaults on both sides.
    return DQN("MlpPolicy", env, learning_rate=a.lr, buffer_size=a.buffer_size, learning_starts=a.learning_starts,
               batch_size=a.batch_size, tau=a.tau, gamma=a.gamma, train_freq=a.train_freq,
               gradient_steps=a.gradient_steps, target_update_interval=a.target_update,
               exploration_fraction=a.eps_fraction, exploration_initial_eps=a.eps_start,
               exploration_final_eps=a.eps_end,
               max_grad_norm=a.max_grad_norm if a.max_grad_norm is not None else float("inf"),
               policy_kwargs={"net_arch": list(a.hidden)}, seed=seed, device="cpu")


def run_sb3(name: str, seed: int, overrides: list[str] = ()) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    cfg = load_config(name, seed, overrides)

    class Eval(BaseCallback):
        """Every EVAL_EVERY environment steps: 10 deterministic episodes, timed and excluded."""

        def __init__(self, t0: float):
            super().__init__()
            self.t0, self.eval_seconds, self.evals, self.solved = t0, 0.0, [], False

        def _on_step(self) -> bool:
            n, prev = self.num_timesteps, self.num_timesteps - self.training_env.num_envs
            if n // EVAL_EVERY > prev // EVAL_EVERY:
                self.evaluate()
            return not (UNTIL_SOLVED and self.solved)  # False stops SB3's learn()

        def evaluate(self) -> None:
            t = time.perf_counter()
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
            self.eval_seconds += time.perf_counter() - t
            self.evals.append((self.num_timesteps, float(mean), time.perf_counter() - self.t0 - self.eval_seconds))
            self.solved = mean >= SOLVED

    eval_env = make_vec_env(cfg.env.id, n_envs=1, seed=EVAL_SEED)
    t0 = time.perf_counter()  # from construction, as our wall_seconds
    model = sb3_model(cfg, seed)
    callback = Eval(t0)
    model.learn(total_timesteps=cfg.train.steps, callback=callback)
    if not callback.solved and (not callback.evals or callback.evals[-1][0] != model.num_timesteps):
        callback.evaluate()  # the final evaluation, as our loop makes one at the end
    return summarise(callback.evals, cfg.train.steps, seed)


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


# ---- the table -------------------------------------------------------------------------------
def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return "not run (--until-solved)"
    return f"{np.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def table_row(algo: str, side: str, runs: list[dict], reference: list[dict] | None) -> dict:
    configs, _, _, label = SIDES[side]
    if side in LIKE_FOR_LIKE and algo in LIKE_FOR_LIKE_OVERRIDES:
        label += ", " + ", ".join(LIKE_FOR_LIKE_OVERRIDES[algo])
    unsolved = [r["seed"] for r in runs if not r["solved"]]
    solved = f"{len(runs) - len(unsolved)}/{len(runs)}" + (f" (unsolved: {', '.join(map(str, unsolved))})"
                                                         if unsolved else "")
    row = {"algorithm": algo, "side": label.format(cfg=configs[algo]), "key": side, "solved": solved,
           "steps to ≥ 475": spread(runs, "steps_to_solve"), "seconds to ≥ 475": spread(runs, "seconds_to_solve"),
           "final return": spread(runs, "final_return"), "training steps/s": spread(runs, "steps_per_second"),
           "median seconds to ≥ 475": float(np.median([r["seconds_to_solve"] for r in runs]))}
    if reference:
        ratio = np.median([r["seconds_to_solve"] for r in reference]) / row["median seconds to ≥ 475"]
        row["SB3, same hyper-parameters / this row"] = f"{ratio:.2f}x"
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds (default 0-4)")
    ap.add_argument("--fresh", action="store_true", help=f"seeds {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]}, never used for "
                    "tuning (replaces --seeds)")
    ap.add_argument("--algos", nargs="+", default=["ppo", "dqn", "a2c", "reinforce"],
                    choices=["ppo", "dqn", "a2c", "reinforce"])
    ap.add_argument("--sides", nargs="+", default=list(SIDES), choices=list(SIDES),
                    help="rows to run (A2C and REINFORCE have only ours and ours_sync)")
    ap.add_argument("--until-solved", action="store_true",
                    help="stop every run (both sides) at its first evaluation >= 475: times to solve, without "
                         "final returns, in a fraction of the time")
    ap.add_argument("--steps", type=int, help="override every budget (a quick check that it runs, not a result)")
    ap.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/"
                    "rl_vs_sb3.json, or rl_vs_sb3_fresh.json with --fresh)")
    args = ap.parse_args()
    global UNTIL_SOLVED
    UNTIL_SOLVED = args.until_solved
    seeds = FRESH_SEEDS if args.fresh else args.seeds
    out = args.json or ROOT / "benchmarks" / "results" / ("rl_vs_sb3_fresh.json" if args.fresh else "rl_vs_sb3.json")
    torch.set_num_threads(1)
    run_ours("cartpole_ppo", 0, ["train.steps=512"])  # warm-up: imports and first-call costs paid before timing
    results: dict = {"seeds": seeds, "fresh": args.fresh, "until_solved": args.until_solved,
                     "steps_override": args.steps, "solved_at": SOLVED,
                     "eval_every": EVAL_EVERY, "eval_episodes": EVAL_EPISODES, "runs": {}}
    rows, headlines = [], []
    for algo in args.algos:
        sides = [s for s in args.sides if algo in SIDES[s][0] and (algo in ZOO or SIDES[s][1] == "ours")]
        runs: dict[str, list] = {s: [] for s in sides}
        for seed in seeds:
            for side in sides:  # interleaved, so a slow spell of the machine hits every side
                configs, runner, overrides, _ = SIDES[side]
                extra = [*LIKE_FOR_LIKE_OVERRIDES.get(algo, [])] if side in LIKE_FOR_LIKE else []
                extra += [f"train.steps={args.steps}"] if args.steps else []
                runs[side].append(RUNNERS[runner](configs[algo], seed, [*overrides, *extra]))
            line = ", ".join(f"{s} {'at ' + str(r[-1]['steps_to_solve']) if r[-1]['solved'] else 'UNSOLVED'} "
                             f"({r[-1]['seconds_to_solve']:.2f} s, final {r[-1]['final_return']})"
                             for s, r in runs.items())
            print(f"{algo} seed {seed}: {line}", file=sys.stderr, flush=True)
        results["runs"][algo] = runs
        for side in sides:
            # DQN as shipped is Double DQN, which SB3 lacks: no "same hyper-parameters" ratio for it
            same = not (side == "ours" and algo in LIKE_FOR_LIKE_OVERRIDES)
            rows.append(table_row(algo, side, runs[side], runs.get(SB3_REFERENCE.get(side, "")) if same else None))
        if all(s in runs for s in LIKE_FOR_LIKE):
            ours, sb3 = (np.median([r["seconds_to_solve"] for r in runs[s]]) for s in LIKE_FOR_LIKE)
            headlines.append(f"- **{algo.upper()}, like for like: {sb3 / ours:.2f}x** (SB3 with our settings, median "
                             f"{sb3:.3g} s to ≥ 475, against ours with sync environments, {ours:.3g} s; "
                             f"medians over all {len(seeds)} seeds, unsolved ones at their budget)")
    title = f"CartPole-v1, seeds {', '.join(map(str, seeds))}" + (" (fresh)" if args.fresh else "")
    print(f"\n## {title}: median (min-max) over all seeds, unsolved seeds at their budget; evaluation time excluded\n")
    print("\n".join(headlines) + "\n" if headlines else "")
    print(markdown(rows, ["algorithm", "side", "solved", "steps to ≥ 475", "seconds to ≥ 475", "final return",
                          "training steps/s", "SB3, same hyper-parameters / this row"]))
    results["table"], results["headlines"] = rows, headlines
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
