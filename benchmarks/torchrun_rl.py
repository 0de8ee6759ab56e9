"""Does a second process pay for PPO and Go self-play on this machine? CartPole, Hopper and 5x5
AlphaZero, the same config three ways, one after another (run it on an otherwise idle machine):

    1 process  x 1 thread     FEWLABELS_MAX_THREADS=1
    1 process  x 2 threads    FEWLABELS_MAX_THREADS=2
    2 processes x 1 thread    torchrun --nproc_per_node=2, each rank half of env.num_envs

Steps a second of training (environment steps; for Go, self-play games; evaluation not counted)
and the training time to the first evaluation at or above the target (return; for Go, the win
rate against the random player), in one table (benchmarks/results/torchrun_rl_<envs>.json).
Hopper's shipped config steps one environment; here it steps two (n_steps 1024, so a rollout is
still 2,048 steps) so that two processes can split them. Go's threads come from
FEWLABELS_MAX_THREADS here (train.threads=0), as the others'.

    python benchmarks/torchrun_rl.py                 # all three, budgets below
    python benchmarks/torchrun_rl.py --envs cartpole
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import launcher, markdown  # noqa: E402

CASES = {
    "cartpole": {"config": "rl/cartpole_ppo", "target": 475.0,
                 "sets": ["train.steps=100000", "train.eval_every=4096"]},
    "hopper": {"config": "rl/hopper_ppo", "target": 1000.0,
               "sets": ["env.num_envs=2", "agent.n_steps=1024", "train.steps=204800", "train.eval_every=20480",
                        "eval.episodes=5"]},
    "go5": {"config": "go/go5_alphazero", "target": 0.95, "metric": "win_rate_random", "unit": "self-play games",
            "sets": ["train.threads=0", "train.steps=1024", "train.eval_every=256"]},
}
SETUPS = (("1 x 1 thread", 1, 1), ("1 x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1))


def threads_env(threads: int) -> dict:
    return dict(os.environ, FEWLABELS_MAX_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                PYTHONPATH=str(ROOT / "src"))


def run(case: dict, processes: int, threads: int, out: Path) -> dict:
    cmd = [*launcher(processes), "-m", "fewlabels", "train", case["config"], "--device", "cpu", "--out", str(out)]
    for s in case["sets"]:
        cmd += ["--set", s]
    done = subprocess.run(cmd, env=threads_env(threads), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{out.name} failed: {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    metric = case.get("metric", "mean_return")
    reached = next((r for r in rows if r.get("kind") == "eval" and r[metric] >= case["target"]), None)
    return {"steps": summary["steps"], "training_seconds": summary["training_seconds"],
            "steps_per_s": round(summary["steps"] / summary["training_seconds"], 2),
            "final": summary["metrics"].get(metric),
            "target_reached_at_step": reached and reached["step"],
            "seconds_to_target": reached and round(reached["wall_seconds"] - reached.get("eval_seconds", 0.0), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "torchrun_rl"))
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    table = []
    for name in args.envs:
        case = CASES[name]
        base = None
        for label, processes, threads in SETUPS:
            out = root / f"{name}_{processes}p{threads}t"
            if out.exists():
                import shutil

                shutil.rmtree(out)  # a timing: always trained afresh
            r = run(case, processes, threads, out)
            base = base or r["steps_per_s"]
            table.append({"env": name, "setup": label, "steps/s": r["steps_per_s"],
                          "steps are": case.get("unit", "env steps"), "vs 1 x 1": f"{r['steps_per_s'] / base:.2f}x",
                          "s to target": r["seconds_to_target"], "at step": r["target_reached_at_step"],
                          "final": r["final"], "target": f"{case.get('metric', 'mean_return')} >= {case['target']}"})
            print(table[-1], flush=True)
    print(markdown(table, list(table[0])))
    (root.parent / f"torchrun_rl_{'_'.join(args.envs)}.json").write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
