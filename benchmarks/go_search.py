"""Search speed for Go self-play: positions evaluated per second by PUCT search with the network
called once per batch of leaves (one leaf from each of G games, as self-play runs it) against the
same search with one network call per leaf. One thread (the self-play default).

    python benchmarks/go_search.py                 # 5x5 and 7x7, G = 1, 8, 32, 64
    python benchmarks/go_search.py --sizes 7 --games 64 --simulations 64

Both searches visit the same trees (a test checks that batched and one-by-one visits are equal),
so the ratio is the whole effect of batching. Prints a markdown table and writes
benchmarks/results/go_search.json.

    python benchmarks/go_search.py --sizes 7 --games 64 --score-utility 0.3 --out ...json

adds a third row per board and G: the batched search with score utility λ (mcts.py; the network
with an ownership head in every row), and its cost as a ratio to the batched row without it.

    python benchmarks/go_search.py --sizes 7 --games 64 --gumbel 16 --out ...json

does the same for Gumbel AlphaZero's search (m = 16 considered root moves) against PUCT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import markdown  # noqa: E402
from fewlabels.rl.go.mcts import network_search  # noqa: E402
from fewlabels.rl.go.net import PolicyValueNet  # noqa: E402
from fewlabels.rl.go.rules import Rules, default_komi  # noqa: E402

NETS = {5: (32, 3), 7: (32, 4), 9: (64, 6)}  # (channels, blocks) of the shipped configs


def positions(rules: Rules, games: int, rng: np.random.Generator) -> list:
    """`games` mid-game positions (10 random moves in), so searches do not start from one tree."""
    out = []
    for _ in range(games):
        pos = rules.new()
        for _ in range(10):
            stones = np.flatnonzero(pos.legal_mask()[:-1])
            pos.play(int(rng.choice(stones)), 3)
        out.append(pos)
    return out


def measure(size: int, games: int, simulations: int, batched: bool, seconds: float, score_utility: float = 0.0,
            ownership: bool = False, gumbel_actions: int = 0) -> dict:
    channels, blocks = NETS[size]
    torch.manual_seed(0)
    net = PolicyValueNet(7, size, channels, blocks, ownership=ownership).eval()
    rules = Rules(size, default_komi(size))
    search = network_search(net, 3, simulations, score_utility=score_utility, batched=batched,
                            gumbel_actions=gumbel_actions)
    roots = positions(rules, games, np.random.default_rng(0))
    search.run(roots[:1])  # warm-up
    search.evaluated, t0, calls = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        search.run(roots)
        calls += 1
    dt = time.perf_counter() - t0
    return {"board": f"{size}x{size}", "net": f"{channels}x{blocks}", "games": games, "simulations": simulations,
            "network calls": ("one per batch" if batched else "one per leaf")
            + (f", score utility {score_utility:g}" if score_utility else "")
            + (f", Gumbel m = {gumbel_actions}" if gumbel_actions else ""),
            "positions/s": round(search.evaluated / dt), "moves searched/s": round(calls * games / dt, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5, 7])
    p.add_argument("--games", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--simulations", type=int, default=32)
    p.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    p.add_argument("--score-utility", type=float, default=0.0, metavar="W",
                   help="also the batched search with score utility W (an ownership head in every row's network)")
    p.add_argument("--gumbel", type=int, default=0, metavar="M",
                   help="also the batched search of Gumbel AlphaZero with M considered root moves")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "go_search.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for size in args.sizes:
        for games in args.games:
            own = args.score_utility > 0
            pair = [measure(size, games, args.simulations, b, args.seconds, ownership=own) for b in (False, True)]
            pair[1]["speed-up"] = round(pair[1]["positions/s"] / pair[0]["positions/s"], 2)
            if own:
                scored = measure(size, games, args.simulations, True, args.seconds, args.score_utility, own)
                scored["speed-up"] = round(scored["positions/s"] / pair[0]["positions/s"], 2)
                scored["cost"] = round(pair[1]["positions/s"] / scored["positions/s"], 2)
                pair.append(scored)
            if args.gumbel:
                gumbel = measure(size, games, args.simulations, True, args.seconds, args.score_utility, own,
                                 args.gumbel)
                gumbel["speed-up"] = round(gumbel["positions/s"] / pair[0]["positions/s"], 2)
                gumbel["cost"] = round(pair[-1]["positions/s"] / gumbel["positions/s"], 2)
                pair.append(gumbel)
            rows += pair
            print(markdown(pair, list(pair[1])), flush=True)
    print()
    print(markdown(rows, ["board", "net", "games", "simulations", "network calls", "positions/s", "moves searched/s",
                          "speed-up"] + (["cost"] if args.score_utility > 0 or args.gumbel else [])))
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
