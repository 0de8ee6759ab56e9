"""A trained Go run as a player, for `fewlabels gtp`, `fewlabels match` and run-directory
opponents (apart from agent.py, which evaluates through the match runner: no import circle)."""

from __future__ import annotations

from fewlabels.rl.go.players import PolicyPlayer


def load_player(run_dir: str, simulations: int | None = None, device: str = "cpu", sample_moves: int = 0,
                seed: int = 0, score_utility: float | None = None, gumbel_actions: int = 0) -> PolicyPlayer:
    """A trained Go run as a player (for `fewlabels gtp` and `fewlabels match`): its search with
    `simulations` per move (default: its config's eval.simulations), 0 for the network alone; its
    moves drawn from the visit counts while fewer than `sample_moves` have been played (GoAgent.batch_policy);
    its search's score utility λ (default: the run's alphazero.score_utility; mcts.py); PUCT, or
    Gumbel AlphaZero's search with `gumbel_actions` m > 0 considered moves (default 0: PUCT)."""
    import math
    from pathlib import Path

    from fewlabels.errors import UserError
    from fewlabels.loop import open_run

    cfg, _, exp = open_run(run_dir, device)
    if cfg.family != "go":
        raise UserError(f"{run_dir!r} is a {cfg.family} run; Go players come from runs of a configs/go/ config")
    sims = cfg.eval.simulations if simulations is None else simulations
    if sims < 0:
        raise UserError(f"--playouts is {sims}; give 0 (the network alone) or more")
    if sample_moves < 0:
        raise UserError(f"--sample-moves is {sample_moves}; give 0 (always the best move) or more")
    if score_utility is not None and not (score_utility >= 0 and math.isfinite(score_utility)):
        raise UserError(f"--score-utility is {score_utility}; give 0 (win or lose only) or more (KataGo's 0.3)")
    if gumbel_actions < 0:
        raise UserError(f"--gumbel is {gumbel_actions}; give 0 (PUCT) or the moves a Gumbel search considers (16)")
    return exp.player(sims, name=f"{Path(run_dir).name} ({sims} playouts)" if sims else Path(run_dir).name,
                      sample_moves=sample_moves, seed=seed, score_utility=score_utility,
                      gumbel_actions=gumbel_actions)
