"""Where a match's games turn: GNU Go's own judgement (GTP `estimate_score`) after every move of
every SGF that `fewlabels match --out DIR` wrote, as the agent's margin (positive: the agent
ahead), summarised per colour over the games the agent lost.

    python benchmarks/go_turning_points.py /tmp/match_dir --agent go7_own_s1

The agent is the player named `--agent` in the SGF (PB/PW); the estimate is GNU Go's (its level
does not change it), crude on small boards, so read medians over many games, not one line. The
median after move k is over the lost games that lasted k moves.
Writes benchmarks/results/go_turning_points_<tag>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sgfmill import sgf

from fewlabels.rl.go.gtp import GTPProcess, OpponentFailed
from fewlabels.rl.go.match import gnugo_command
from fewlabels.rl.go.rules import BLACK, WHITE

MOVES = (2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40)


def margins(engine: GTPProcess, path: Path, agent: str) -> dict:
    """The agent's colour, result and GNU Go's estimate of its margin after each move (a forfeit's
    rejected last move, which GNU Go refuses too, ends the replay)."""
    game = sgf.Sgf_game.from_bytes(path.read_bytes())
    root = game.get_root()
    names = {"b": root.get("PB"), "w": root.get("PW")}
    if names["b"] == names["w"] or agent not in names.values():
        raise SystemExit(f"{path}: needs exactly one player named {agent!r} (players: {names['b']!r}, "
                         f"{names['w']!r})")
    ours, size = ("b" if names["b"] == agent else "w"), game.get_size()
    engine.new_game(size, float(root.get("KM")))
    out = []
    for node in game.get_main_sequence()[1:]:
        colour, move = node.get_move()
        if colour is None:
            continue
        try:  # sgfmill's (row, col), row 0 at the bottom: the action row * N + col; None is a pass
            engine.play(BLACK if colour == "b" else WHITE, size * size if move is None else move[0] * size + move[1])
        except OpponentFailed:
            break
        estimate = engine.send("estimate_score").split()[0]  # "W+12.5", "B+3.0" or "0"
        value = float(estimate[2:]) if "+" in estimate else 0.0
        out.append(value if estimate[0].lower() == ours else -value)
    result = root.get("RE")
    return {"game": path.name, "ours": ours, "result": result,
            "outcome": "draw" if result[0] == "0" else ("won" if result[0].lower() == ours else "lost"),
            "margins": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="a `fewlabels match --out` folder of SGF files")
    p.add_argument("--agent", required=True, help="the agent's player name in the SGF files")
    p.add_argument("--tag", default=None, help="results file suffix (default: the folder's name)")
    args = p.parse_args()
    files = sorted(args.folder.glob("*.sgf"))
    if not files:
        raise SystemExit(f"{args.folder}: no SGF files")
    engine = GTPProcess(gnugo_command(1), name="GNU Go")
    try:
        games = [margins(engine, f, args.agent) for f in files]
    finally:
        engine.close()
    summary = {}
    print(f"{len(games)} games, agent {args.agent!r}; GNU Go's estimate of the agent's margin in lost games")
    print("colour  lost  " + "  ".join(f"m{k:>3}" for k in MOVES) + "   final")
    for colour in "bw":
        lost = [g for g in games if g["ours"] == colour and g["outcome"] == "lost" and g["margins"]]
        if not lost:
            continue
        # after move k: the median over the lost games that reached move k
        at = {k: float(np.median([g["margins"][k - 1] for g in lost if len(g["margins"]) >= k] or [np.nan]))
              for k in MOVES}
        final = float(np.median([g["margins"][-1] for g in lost]))
        summary[colour] = {"games": sum(g["ours"] == colour for g in games), "lost": len(lost),
                           "won": sum(g["ours"] == colour and g["outcome"] == "won" for g in games),
                           "median_margin_after_move": at, "median_final_margin": final}
        print(f"{colour:6}  {len(lost):4}  " + "  ".join(f"{at[k]:5.1f}" for k in MOVES) + f"  {final:6.1f}")
    out = Path(__file__).parent / "results" / f"go_turning_points_{args.tag or args.folder.name}.json"
    out.write_text(json.dumps({"folder": str(args.folder), "agent": args.agent, "summary": summary,
                               "games": games}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
