"""Where a PPO rank's time goes, one process against two (issue 16: why two processes do not pay
on two cores). Each rank trains under cProfile with a CPU-time clock (so the split holds even when
ranks share a core), and its time is cut into: stepping the environments, the network calls that
choose actions, gradient steps (loss, backward, clip, Adam), the work across ranks (CPU time in
the collectives and their wrappers: a wait that blocks costs none), and the rest. CPU
milliseconds per 1,000 environment steps of all ranks, per rank and summed over ranks, beside the calls per 1,000 steps.
Run it on an otherwise idle machine:

    python benchmarks/torchrun_profile.py                 # CartPole, 40,960 steps
    python benchmarks/torchrun_profile.py --env hopper --steps 20480
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import markdown  # noqa: E402
from torchrun_rl import CASES, launcher, threads_env  # noqa: E402

COLLECTIVES = {"all_reduce", "all_gather", "all_gather_into_tensor", "broadcast", "barrier"}


def worker(out: Path, argv: list[str]) -> None:
    """One rank: train under cProfile (CPU time), dump the stats as prof.<rank>."""
    from fewlabels.cli import main

    prof = cProfile.Profile(time.process_time)
    code = prof.runcall(main, argv)
    prof.dump_stats(str(out / f"prof.{os.environ.get('RANK', '0')}"))
    raise SystemExit(code)


def split(path: Path) -> dict[str, float]:
    """CPU seconds of one rank's training steps by part, and how many calls set each part's
    overhead. `sync` is the cross-rank work: gradient averaging, advantage standardisation over
    ranks, merging statistics and episode counts, the loop's stop decision (collectives and their
    wrappers; near nothing in one process)."""
    stats = pstats.Stats(str(path)).stats
    home = {"train_step": "pg.py", "update": "pg.py", "act_and_step": "pg.py", "loss_and_grads": "pg.py",
            "step_envs": "agent.py", "sync_ranks": "agent.py", "episode_logs": "agent.py",
            "average_gradients": "distributed.py", "standardise": "distributed.py", "agree": "distributed.py"}
    ours = {n: (v[1], v[3]) for (f, _, n), v in stats.items()
            if n in home and f.endswith(home[n]) and "fewlabels" in f}
    cum = lambda name: ours.get(name, (0, 0.0))[1]  # noqa: E731
    sync_parts = ("average_gradients", "standardise", "sync_ranks", "episode_logs", "agree")
    total = cum("train_step") + cum("agree")
    env = cum("step_envs")
    act = cum("act_and_step") - env
    learn = cum("update") - cum("average_gradients") - cum("standardise")
    sync = sum(cum(n) for n in sync_parts)
    collective_calls = sum(v[1] for (f, _, n), v in stats.items()
                           if n in COLLECTIVES and f.endswith("distributed_c10d.py"))
    return {"total": total, "environments": env, "acting (network)": act, "gradient steps": learn, "sync": sync,
            "other": total - env - act - learn - sync, "vector steps": ours.get("act_and_step", (0, 0))[0],
            "gradient steps n": ours.get("loss_and_grads", (0, 0))[0], "collective calls": collective_calls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="cartpole", choices=["cartpole", "hopper"])
    ap.add_argument("--steps", type=int, default=40960)
    ap.add_argument("--out", default="/tmp/fewlabels_torchrun_profile")
    if sys.argv[1:2] == ["--worker"]:  # one rank, launched below: --worker DIR <fewlabels arguments>
        worker(Path(sys.argv[2]), sys.argv[3:])
    args = ap.parse_args()
    case = CASES[args.env]
    root = Path(args.out)
    table = []
    for processes in (1, 2):
        out = root / f"{args.env}_{processes}p"
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("prof.*"):
            old.unlink()
        shutil.rmtree(out / "run", ignore_errors=True)  # a timing: always trained afresh
        train = ["train", case["config"], "--device", "cpu", "--out", str(out / "run"),
                 *sum((["--set", s] for s in case["sets"] if not s.startswith(("train.steps", "train.eval_every"))),
                      []), "--set", f"train.steps={args.steps}", "--set", "train.eval_every=0"]
        done = subprocess.run([*launcher(processes), __file__, "--worker", str(out), *train], env=threads_env(1),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{out.name} failed: {done.stderr.strip().splitlines()[-3:]}")
        summary = json.loads((out / "run" / "summary.json").read_text())
        ranks = [split(p) for p in sorted(out.glob("prof.*"))]
        per_k = 1000.0 / summary["steps"]
        row = {"setup": f"{processes} process{'es' if processes > 1 else ''} x 1 thread",
               "wall s (training)": round(summary["training_seconds"], 1)}
        for part in ("environments", "acting (network)", "gradient steps", "sync", "other", "total"):
            each = [r[part] * per_k * 1000 for r in ranks]
            row[f"{part} ms/1k"] = " + ".join(f"{x:.0f}" for x in each) if processes > 1 else f"{each[0]:.0f}"
        row["sum over ranks ms/1k"] = round(sum(r["total"] for r in ranks) * per_k * 1000)
        row["vector steps/1k (per rank)"] = round(ranks[0]["vector steps"] * per_k, 1)
        row["gradient steps/1k (per rank)"] = round(ranks[0]["gradient steps n"] * per_k, 1)
        row["collectives/1k (per rank)"] = round(ranks[0]["collective calls"] * per_k, 1)
        table.append(row)
        print(row, flush=True)
    print(markdown(table, list(table[0])))
    (ROOT / "benchmarks" / "results" / f"torchrun_profile_{args.env}.json").write_text(json.dumps(table, indent=2)
                                                                                     + "\n")


if __name__ == "__main__":
    main()
