"""Self-play speed with playout-cap randomisation (KataGo; `alphazero.full_search_fraction`).

Each arm is the shipped 7x7 AlphaZero config with some search settings, written SIMS (every move a
full search of SIMS simulations) or SIMS/FAST/P (a full search with probability P, else a fast
one of FAST). Arms play self-play iterations (`parallel_games` games, one batch, as training
does) in ABBA order on one thread; the table gives moves, games and kept training positions a
second, and each arm's ratio to the first. Every arm has the same network: a trained run's
(`--run`, its config with the arm's settings) or the untrained one of a fixed seed. An untrained
network's games are not a trained one's (fast searches on it pass early), so compare moves a
second there, games a minute only with `--run`.

Self-play searches as the config says: the shipped go7 config by Gumbel (`alphazero.gumbel_actions:
16`) since session 17, the stored figures (docs/go.md, session 13) by PUCT; `--set
alphazero.gumbel_actions=0` measures PUCT again. The JSON records which search the arms used.

    python benchmarks/go_playout_cap.py --run runs/go7_az      # 32 against 32/8/0.25 and 64/12/0.25
    python benchmarks/go_playout_cap.py --arms 32 32/8/0.25 --rounds 2 --set alphazero.gumbel_actions=0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from common import markdown  # noqa: E402
from fewlabels import checkpoint  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.loop import open_run  # noqa: E402
from fewlabels.rl.go.alphazero import AlphaZeroExperiment  # noqa: E402


def arm_settings(arm: str) -> list[str]:
    parts = arm.split("/")
    if len(parts) == 1:  # every move a full search, whatever the config or --set says
        return [f"alphazero.simulations={int(parts[0])}", "alphazero.full_search_fraction=1.0"]
    sims, fast, p = parts
    return [f"alphazero.simulations={int(sims)}", f"alphazero.fast_simulations={int(fast)}",
            f"alphazero.full_search_fraction={float(p)}"]


def experiment(arm: str, config: str, games: int, run: str | None, extra: list[str]) -> AlphaZeroExperiment:
    settings = extra + arm_settings(arm) + [f"alphazero.parallel_games={games}"]
    cfg = configlib.load(Path(run) / "config.yaml", settings) if run else configlib.load_shipped(config, settings)
    checkpoint.seed_everything(0)
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    if run:
        exp.net.load_state_dict(open_run(run, "cpu")[2].net.state_dict())
    return exp


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", nargs="+", default=["32", "32/8/0.25", "64/12/0.25"])
    p.add_argument("--run", help="a trained AlphaZero run directory whose network (and config) every arm uses")
    p.add_argument("--config", default="go/go7_alphazero.yaml", help="the shipped config, without --run")
    p.add_argument("--games", type=int, default=64, help="self-play games an iteration (the shipped 64)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds: each arm plays 2 x rounds iterations")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config setting for every arm, e.g. alphazero.gumbel_actions=0; the arm's own "
                   "search settings and --games come after it and win")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "go_playout_cap.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    exps = {arm: experiment(arm, args.config, args.games, args.run, args.overrides) for arm in args.arms}
    m = next(iter(exps.values())).cfg.alphazero.gumbel_actions
    search = f"Gumbel, m = {m}" if m else "PUCT"
    print(f"self-play search: {search}", flush=True)
    totals = {arm: {"seconds": 0.0, "moves": 0, "games": 0, "kept": 0, "each": []} for arm in args.arms}
    order = []
    for _ in range(args.rounds):
        order += list(args.arms) + list(reversed(args.arms))
    for arm in order:
        t0 = time.perf_counter()
        _, _, z, _, stats = exps[arm].self_play(args.games)
        t = totals[arm]
        t["each"].append(round(time.perf_counter() - t0, 2))
        t["seconds"] += t["each"][-1]
        t["moves"] += round(stats["game_length"] * args.games)
        t["games"] += args.games
        t["kept"] += len(z)
        print(f"{arm}: {len(z)} positions kept, {stats['game_length']:.1f} moves a game, "
              f"{stats['self_play_seconds']:.1f} s", flush=True)
    rows, first = [], None
    for arm, t in totals.items():
        row = {"arm": arm, "iterations": t["games"] // args.games, "moves/s": round(t["moves"] / t["seconds"], 1),
               "games/min": round(60 * t["games"] / t["seconds"], 1),
               "kept positions/s": round(t["kept"] / t["seconds"], 1),
               "kept fraction": round(t["kept"] / t["moves"], 3)}
        first = first or row
        row["games/min vs first"] = round(row["games/min"] / first["games/min"], 2)
        rows.append(row)
    print(markdown(rows, list(rows[0])))
    for row in rows:
        row["iteration seconds"] = totals[row["arm"]]["each"]
    source = Path(args.run).name if args.run else args.config
    Path(args.out).write_text(json.dumps({"network": source, "search": search, "settings": args.overrides,
                                          "games": args.games, "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
