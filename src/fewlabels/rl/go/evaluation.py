"""Win rates of a Go agent against the evaluation's opponents (eval.opponents), colours alternating.

Against the random player every game is played at once, and the agent's searches run as one
batch (mcts.py), as in self-play: about 5x the positions a second of one game at a time
(benchmarks/go_search.py). Those games keep OpenSpiel's rules (a repetition is a draw; its cap of
2 N² moves). Every other opponent (GNU Go, OpenSpiel's MCTSBot, another run) plays through the
match runner under the referee's rules (match.py), up to 16 games at once (an opponent each), the
agent's moves again from one batched search."""

from __future__ import annotations

import sys

import numpy as np

from fewlabels.rl.go.match import PARALLEL, gnugo_path, make_player, run_match, spawner
from fewlabels.rl.go.rules import BLACK, WHITE


def metric_name(spec: str) -> str:
    """`win_rate_<name>` of an opponent spec: random, gnugo1, mcts1000."""
    return "win_rate_" + spec.replace(":", "")


def against_random(exp, simulations: int, games: int, seed: int) -> dict[str, float]:
    """The agent's win rate against the random player over `games` games played at once (and as
    Black, in the even-numbered ones, and as White): its moves from one batched search of every
    game it is to move in (or the network alone, with 0 simulations)."""
    rng = np.random.default_rng(seed)
    exp.net.eval()
    search = exp.searcher(simulations)
    evaluate = search.evaluate
    positions = [exp.rules.new() for _ in range(games)]
    agent = [BLACK if g % 2 == 0 else WHITE for g in range(games)]
    while True:
        live = [g for g, p in enumerate(positions) if not p.over]
        if not live:
            break
        mine = [g for g in live if positions[g].to_play == agent[g]]
        if mine:
            if simulations:
                actions = [search.best(root) for root in search.run([positions[g] for g in mine])]
            else:
                priors = evaluate([positions[g] for g in mine])[0]
                actions = [int(np.argmax(np.where(positions[g].legal_mask(), prior, -1.0)))
                           for g, prior in zip(mine, priors)]
            for g, action in zip(mine, actions):
                positions[g].play(action, exp.history)
        for g in live:
            if g not in mine:
                positions[g].play(int(rng.choice(np.flatnonzero(positions[g].legal_mask()))), exp.history)
    won = np.array([p.winner() == a for p, a in zip(positions, agent)], float)
    return {"win_rate": float(won.mean()), "as_black": float(won[0::2].mean()),
            "as_white": float(won[1::2].mean()) if games > 1 else float("nan")}


def evaluate_agent(exp, cfg) -> dict[str, float]:
    out: dict[str, float] = {}
    modes = [(cfg.simulations, "")] + ([(0, "_net")] if cfg.network_alone and cfg.simulations > 0 else [])
    for spec in cfg.opponents:
        if spec.startswith("gnugo:") and gnugo_path() is None:
            print(f"fewlabels: skipping the evaluation against {spec}: GNU Go is not installed", file=sys.stderr)
            continue
        for sims, suffix in modes:
            if spec == "random":
                out[metric_name(spec) + suffix] = against_random(exp, sims, cfg.games, cfg.seed)["win_rate"]
                continue
            opponent, name = make_player(spec, seed=cfg.seed)
            try:
                result = run_match(exp.player(sims), opponent, cfg.games, exp.rules.size, exp.rules.komi,
                                   ("fewlabels", name), progress=False, parallel=PARALLEL,
                                   spawn=spawner(opponent, spec))
            finally:
                opponent.close()
            out[metric_name(spec) + suffix] = result["win_rate"]
    out["eval_games"] = float(cfg.games)
    return out
