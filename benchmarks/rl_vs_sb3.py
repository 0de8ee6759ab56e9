"""CartPole-v1: our PPO and DQN against Stable-Baselines3's, side by side in one run. SB3 runs RL
Zoo's tuned hyper-parameters; we run the same numbers (configs/rl/cartpole_{ppo,dqn}_zoo.yaml,
like for like) and our CPU-tuned configs (cartpole_ppo.yaml, cartpole_dqn.yaml: fewer, cheaper
gradient steps per environment step). Plus our REINFORCE and A2C.

    pip install -e '.[bench]'              # stable-baselines3, pinned in constraints.txt
    python benchmarks/rl_vs_sb3.py         # 5 seeds each (about 15 minutes on 2 cores)
    python benchmarks/rl_vs_sb3.py --seeds 2 --algos ppo

Both sides: one torch thread, evaluation every 2,000 environment steps with 10 deterministic
episodes on a separate environment, its time excluded. Reported per algorithm: environment
steps and training seconds to the first evaluation ≥ 475 (construction of the agent and its
environments included on both sides; a process-wide warm-up run first, so neither pays
import costs), and the final evaluation. Our evaluations happen at the first rollout boundary
at or after each multiple of 2,000 (PPO: 2,048, 4,096, ...), SB3's at the exact multiple.

Prints markdown tables and writes benchmarks/results/rl_vs_sb3.json.
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

from common import markdown  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.train import train  # noqa: E402

SOLVED = 475.0
EVAL_EVERY, EVAL_EPISODES = 2000, 10
# Ours with the Zoo's exact settings (like for like) and with our CPU-tuned configs.
OURS = {"ppo": "cartpole_ppo", "ppo_zoo": "cartpole_ppo_zoo", "dqn": "cartpole_dqn", "dqn_zoo": "cartpole_dqn_zoo",
        "a2c": "cartpole_a2c", "reinforce": "cartpole_reinforce"}
PEERS = {"ppo": ["ppo_zoo"], "dqn": ["dqn_zoo"]}  # also run SB3 (Zoo settings) and these beside it


def first_solved(evals: list[tuple[int, float, float]]) -> tuple[int | None, float | None]:
    """(environment steps, training seconds) at the first evaluation ≥ 475, or (None, None)."""
    for step, ret, seconds in evals:
        if ret >= SOLVED:
            return step, seconds
    return None, None


# ---- ours ------------------------------------------------------------------------------------
def run_ours(algo: str, seed: int, steps: int | None = None) -> dict:
    overrides = [f"seed={seed}", f"train.eval_every={EVAL_EVERY}", f"eval.episodes={EVAL_EPISODES}", "eval.gif=false",
                 "train.checkpoint_every=10000000"]
    if steps:
        overrides.append(f"train.steps={steps}")
    cfg = configlib.load(ROOT / "configs" / "rl" / f"{OURS[algo]}.yaml", overrides)
    with tempfile.TemporaryDirectory() as out:
        train(cfg, out, device="cpu")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["eval_return"], r["wall_seconds"] - r["eval_seconds"]) for r in rows if "eval_return" in r]
    return summarise(evals, cfg.train.steps)


def summarise(evals: list[tuple[int, float, float]], steps: int) -> dict:
    step, seconds = first_solved(evals)
    return {"solved_step": step, "solved_seconds": seconds, "final_return": evals[-1][1],
            "train_seconds": evals[-1][2], "steps_per_second": evals[-1][0] / evals[-1][2], "steps": steps,
            "curve": evals}


# ---- Stable-Baselines3 -----------------------------------------------------------------------
def run_sb3(algo: str, seed: int, steps: int) -> dict:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    class Eval(BaseCallback):
        """Every EVAL_EVERY environment steps: 10 deterministic episodes, timed and excluded."""

        def __init__(self, t0: float):
            super().__init__()
            self.t0, self.eval_seconds, self.evals = t0, 0.0, []

        def _on_step(self) -> bool:
            n, prev = self.num_timesteps, self.num_timesteps - self.training_env.num_envs
            if n // EVAL_EVERY > prev // EVAL_EVERY:
                self.evaluate()
            return True

        def evaluate(self) -> None:
            t = time.perf_counter()
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
            self.eval_seconds += time.perf_counter() - t
            self.evals.append((self.num_timesteps, float(mean), time.perf_counter() - self.t0 - self.eval_seconds))

    linear = lambda start: (lambda remaining: start * remaining)  # noqa: E731
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=2024)
    t0 = time.perf_counter()  # from construction, as our wall_seconds
    if algo == "ppo":
        env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
        model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                    ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu")
    else:
        env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
        model = DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                    gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                    exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs={"net_arch": [256, 256]},
                    seed=seed, device="cpu")
    callback = Eval(t0)
    model.learn(total_timesteps=steps, callback=callback)
    if not callback.evals or callback.evals[-1][0] != model.num_timesteps:
        callback.evaluate()  # the final evaluation, as our loop makes one at the end
    return summarise(callback.evals, steps)


def stats(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return "never"
    med = float(np.median(values))
    return f"{med:.3g} ({min(values):.3g}-{max(values):.3g})" + ("" if len(values) == len(runs) else
                                                                f", {len(values)}/{len(runs)} solved")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--algos", nargs="*", default=["ppo", "dqn", "a2c", "reinforce"],
                    choices=["ppo", "dqn", "a2c", "reinforce"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    run_ours("ppo", 0, steps=512)  # warm-up: imports and first-call costs paid before timing
    results: dict = {"seeds": args.seeds, "runs": {}}
    rows = []
    for algo in args.algos:
        variants = [algo, *PEERS.get(algo, [])]
        runs: dict[str, list] = {v: [] for v in variants}
        sb3: list = []
        for seed in range(args.seeds):
            for v in variants:  # interleaved, so a slow spell of the machine hits every side
                runs[v].append(run_ours(v, seed))
            line = ", ".join(f"{v} at {runs[v][-1]['solved_step']} ({runs[v][-1]['solved_seconds']})" for v in variants)
            if algo in ("ppo", "dqn"):
                sb3.append(run_sb3(algo, seed, runs[algo][-1]["steps"]))
                line += f", SB3 at {sb3[-1]['solved_step']} ({sb3[-1]['solved_seconds']})"
            print(f"{algo} seed {seed}: {line}", file=sys.stderr, flush=True)
        results["runs"][algo] = {**runs, "sb3": sb3}
        sides = [(f"fewlabels ({OURS[v]}.yaml)", runs[v]) for v in variants] + ([("SB3 (Zoo settings)", sb3)] if sb3
                                                                               else [])
        sb3_median = np.median([r["solved_seconds"] for r in sb3 if r["solved_seconds"] is not None]) \
            if any(r["solved_seconds"] is not None for r in sb3) else None
        for side, rs in sides:
            n_solved = sum(r["solved_step"] is not None for r in rs)
            row = {"algorithm": algo, "side": side, "solved": f"{n_solved}/{len(rs)}",
                   "steps to ≥ 475": stats(rs, "solved_step"), "seconds to ≥ 475": stats(rs, "solved_seconds"),
                   "final return": stats(rs, "final_return"), "training steps/s": stats(rs, "steps_per_second")}
            solved = [r["solved_seconds"] for r in rs if r["solved_seconds"] is not None]
            if sb3_median is not None and solved and not side.startswith("SB3"):
                row["SB3 median / ours median"] = f"{sb3_median / np.median(solved):.2f}x"
            rows.append(row)
    print(f"\n## CartPole-v1, {args.seeds} seeds: median (min-max); evaluation time excluded\n")
    print(markdown(rows, ["algorithm", "side", "solved", "steps to ≥ 475", "seconds to ≥ 475", "final return",
                          "training steps/s", "SB3 median / ours median"]))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    results["table"] = rows
    (out / "rl_vs_sb3.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
