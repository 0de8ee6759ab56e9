"""Planning benchmark: value iteration on grid worlds (γ = 1, -1 per move, terminals in two
opposite corners), against a straightforward Python double loop over cells in the same run.

    python benchmarks/planning.py                 # 100x100 (all three) and 1000x1000 (ours), ~30 s
    python benchmarks/planning.py --sizes 100 300

Every method runs synchronous sweeps from v = 0 until no value changes by 1e-6, so all need the
same number of sweeps; throughput is states x sweeps per second. "structured" is the grid
world's own backup (shifted copies of the value array), "sparse" the generic one every MDP
has (one sparse matrix-vector product over (A·S) x S per sweep). Each result is checked against
the exact answer, minus the distance to the nearest corner. Prints markdown tables and writes
benchmarks/results/planning.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fewlabels.rl.planning.dp import value_iteration  # noqa: E402
from fewlabels.rl.planning.gridworld import Grid, GridMDP  # noqa: E402
from fewlabels.rl.planning.mdp import MDP  # noqa: E402

TOL = 1e-6


def python_value_iteration(n: int) -> tuple[list[list[float]], int]:
    """Value iteration as a first program would write it: a double loop over the cells, a loop
    over the four moves, lists of lists."""
    terminals = {(0, 0), (n - 1, n - 1)}
    moves = ((-1, 0), (0, 1), (1, 0), (0, -1))
    v = [[0.0] * n for _ in range(n)]
    sweeps = 0
    while True:
        sweeps += 1
        new = [[0.0] * n for _ in range(n)]
        delta = 0.0
        for r in range(n):
            for c in range(n):
                if (r, c) in terminals:
                    continue
                best = -float("inf")
                for dr, dc in moves:
                    r2, c2 = r + dr, c + dc
                    if not (0 <= r2 < n and 0 <= c2 < n):
                        r2, c2 = r, c
                    best = max(best, -1.0 + v[r2][c2])
                new[r][c] = best
                delta = max(delta, abs(best - v[r][c]))
        v = new
        if delta < TOL:
            return v, sweeps


def exact(n: int) -> np.ndarray:
    r, c = np.divmod(np.arange(n * n), n)
    return -np.minimum(r + c, 2 * (n - 1) - r - c).astype(np.float64)


def generic(mdp: GridMDP) -> MDP:
    """The same model as a plain MDP: its Bellman backup is the sparse product."""
    return MDP(mdp.n_states, mdp.n_actions, mdp.transitions, mdp.gamma, mdp.terminal, mdp.start,
               mdp.action_names, "generic", check=False)


def measure(n: int, method: str) -> dict:
    build = 0.0
    if method == "python double loop":
        t0 = time.perf_counter()
        values, sweeps = python_value_iteration(n)
        seconds = time.perf_counter() - t0
        values = np.array(values).ravel()
    else:
        t0 = time.perf_counter()
        mdp = GridMDP(Grid.make(n, n, [(0, 0), (n - 1, n - 1)]))
        if method == "sparse (generic MDP)":
            mdp = generic(mdp)
            mdp.P  # noqa: B018  (build the sparse matrix outside the timed sweeps)
        build = time.perf_counter() - t0
        seconds = float("inf")
        for _ in range(5 if n <= 300 else 1):  # small grids take milliseconds: best of five
            t0 = time.perf_counter()
            sol = value_iteration(mdp, tol=TOL)
            seconds = min(seconds, time.perf_counter() - t0)
        values, sweeps = sol.values, sol.sweeps
    return {"grid": f"{n}x{n}", "states": n * n, "method": method, "sweeps": sweeps,
            "build s": round(build, 3), "sweeps s": round(seconds, 4),
            "states x sweeps / s": n * n * sweeps / seconds,
            "max error": float(np.abs(values - exact(n)).max())}


def markdown(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="grid sides n (n x n cells)")
    ap.add_argument("--loop-max", type=int, default=100, help="largest n the Python loop runs on")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "planning.json",
                    help="where to write the results")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        methods = ["structured (GridMDP)", "sparse (generic MDP)"]
        if n <= args.loop_max:
            methods.append("python double loop")
        for method in methods:
            row = measure(n, method)
            rows.append(row)
            print(f"{row['grid']} {method}: {row['sweeps']} sweeps in {row['sweeps s']} s", file=sys.stderr,
                  flush=True)
    loop = {r["grid"]: r["states x sweeps / s"] for r in rows if r["method"] == "python double loop"}
    base = next(iter(loop.values()), None)
    for r in rows:
        r["x python loop"] = r["states x sweeps / s"] / base if base else None
    cols = ["grid", "method", "sweeps", "build s", "sweeps s", "states x sweeps / s", "x python loop", "max error"]
    print("\n## Value iteration on grid worlds (γ = 1, tolerance 1e-6, one process, same run)\n")
    print(markdown(rows, cols))
    if base:
        print(f"\n'x python loop' divides by the Python double loop's throughput on {next(iter(loop))}.")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"tolerance": TOL, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
