"""Match speed: `fewlabels match` with games played at once (`--parallel P`, the run's moves in
all waiting games from one batched search) against one game at a time (`--parallel 1`), the
same run, opponent, games and simulations, run side by side, each pinned to its own core with
one thread (and its opponent processes with it), so both see the same machine.

    python benchmarks/go_match_parallel.py RUN --opponent gnugo:1 --games 16 --playouts 256
    python benchmarks/go_match_parallel.py RUN --opponent random --games 32 --playouts 64 --parallel 32

Prints a markdown table (seconds, seconds a game, the speed-up, the results) and writes
benchmarks/results/go_match_parallel[_TAG].json. Different --parallel play different games
where --sample-moves draws (the network sees other batches), so the win rates are shown, not
compared.
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

from common import markdown  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a Go run directory")
    ap.add_argument("--opponent", default="gnugo:1")
    ap.add_argument("--games", type=int, default=16)
    ap.add_argument("--playouts", type=int, default=256)
    ap.add_argument("--parallel", type=int, default=16, help="games at once in the batched match (default: 16)")
    ap.add_argument("--sample-moves", type=int, default=6)
    ap.add_argument("--cores", default="0,1", help="the two cores, one-at-a-time first (default: 0,1)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    cores = args.cores.split(",")
    if len(cores) != 2:
        ap.error("--cores takes two cores, e.g. 0,1")
    env = {**os.environ, "FEWLABELS_MAX_THREADS": "1", "PATH": os.environ.get("PATH", "") + ":/usr/games"}
    jobs = []
    for core, parallel in zip(cores, (1, args.parallel)):
        command = ["taskset", "-c", core, sys.executable, "-m", "fewlabels", "match", args.run, "--opponent",
                   args.opponent, "--games", str(args.games), "--playouts", str(args.playouts), "--sample-moves",
                   str(args.sample_moves), "--parallel", str(parallel), "--device", "cpu"]
        jobs.append((parallel, command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                         text=True, env=env)))
    rows = []
    for parallel, command, job in jobs:
        out, err = job.communicate()
        if job.returncode != 0:
            print(err, file=sys.stderr)
            return job.returncode
        result = json.loads(out.strip().splitlines()[-1])
        rows.append({"games at once": parallel, "seconds": result["seconds"],
                     "seconds a game": round(result["seconds"] / result["games"], 2),
                     "wins": f"{result['wins']} / {result['games']}", "distinct games": result["distinct_games"],
                     # (no interpreter or machine path: portable)
                     "command": " ".join(["fewlabels", "match", Path(args.run).name, *command[8:]])})
    base = rows[0]["seconds"]
    for r in rows:
        r["speed-up"] = round(base / r["seconds"], 2)
    print(markdown(rows, ["games at once", "seconds", "seconds a game", "speed-up", "wins", "distinct games"]))
    name = "go_match_parallel" + (f"_{args.tag}" if args.tag else "") + ".json"
    path = ROOT / "benchmarks" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": Path(args.run).name, "opponent": args.opponent, "playouts": args.playouts,
                                "games": args.games, "rows": rows}, indent=2) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
