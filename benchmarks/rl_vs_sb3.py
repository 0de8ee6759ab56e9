"""CartPole-v1: our PPO and DQN against Stable-Baselines3's, side by side in one run, with RL
Zoo's tuned hyper-parameters on both sides (configs/rl/cartpole_ppo.yaml and cartpole_dqn.yaml
carry the same numbers), plus our REINFORCE and A2C.

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
OURS = {"ppo": "cartpole_ppo", "dqn": "cartpole_dqn", "a2c": "cartpole_a2c", "reinforce": "cartpole_reinforce"}


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
    ap.add_argument("--algos", nargs="*", default=["ppo", "dqn", "a2c", "reinforce"], choices=list(OURS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    run_ours("ppo", 0, steps=512)  # warm-up: imports and first-call costs paid before timing
    results: dict = {"seeds": args.seeds, "runs": {}}
    rows = []
    for algo in args.algos:
        ours, theirs = [], []
        for seed in range(args.seeds):
            ours.append(run_ours(algo, seed))
            line = f"{algo} seed {seed}: ours solved at {ours[-1]['solved_step']} ({ours[-1]['solved_seconds']})"
            if algo in ("ppo", "dqn"):
                theirs.append(run_sb3(algo, seed, ours[-1]["steps"]))
                line += f", SB3 at {theirs[-1]['solved_step']} ({theirs[-1]['solved_seconds']})"
            print(line, file=sys.stderr, flush=True)
        results["runs"][algo] = {"ours": ours, "sb3": theirs}
        for side, runs in (("fewlabels", ours), ("SB3", theirs)):
            if runs:
                rows.append({"algorithm": algo, "side": side, "steps to ≥ 475": stats(runs, "solved_step"),
                             "seconds to ≥ 475": stats(runs, "solved_seconds"),
                             "final return": stats(runs, "final_return"),
                             "training steps/s": stats(runs, "steps_per_second")})
        if theirs:
            o = [r["solved_seconds"] for r in ours if r["solved_seconds"] is not None]
            t = [r["solved_seconds"] for r in theirs if r["solved_seconds"] is not None]
            if o and t:
                rows[-1]["SB3 median / ours median (seconds)"] = f"{np.median(t) / np.median(o):.2f}x"
    print(f"\n## CartPole-v1, {args.seeds} seeds: median (min-max); evaluation time excluded\n")
    print(markdown(rows, ["algorithm", "side", "steps to ≥ 475", "seconds to ≥ 475", "final return",
                          "training steps/s", "SB3 median / ours median (seconds)"]))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    results["table"] = rows
    (out / "rl_vs_sb3.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
