"""Win rates of a Go agent against the evaluation's opponents (eval.opponents), colours alternating."""

from __future__ import annotations

import sys

from fewlabels.rl.go.match import gnugo_path, make_player, run_match


def metric_name(spec: str) -> str:
    """`win_rate_<name>` of an opponent spec: random, gnugo1, mcts1000."""
    return "win_rate_" + spec.replace(":", "")


def evaluate_agent(exp, cfg) -> dict[str, float]:
    out: dict[str, float] = {}
    modes = [(cfg.simulations, "")] + ([(0, "_net")] if cfg.network_alone and cfg.simulations > 0 else [])
    for spec in cfg.opponents:
        if spec.startswith("gnugo:") and gnugo_path() is None:
            print(f"fewlabels: skipping the evaluation against {spec}: GNU Go is not installed", file=sys.stderr)
            continue
        for sims, suffix in modes:
            opponent, name = make_player(spec, seed=cfg.seed)
            try:
                agent = exp.player(sims)
                result = run_match(agent, opponent, cfg.games, exp.rules.size, exp.rules.komi,
                                   ("fewlabels", name), progress=False)
            finally:
                opponent.close()
            out[metric_name(spec) + suffix] = result["win_rate"]
    out["eval_games"] = float(cfg.games)
    return out
