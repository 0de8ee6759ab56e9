"""The Go run's part of report.html: win rates against each evaluation opponent over training,
the self-play losses, and one finished game as a board diagram with move numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewlabels.report import Section, table
from fewlabels.rl.go.rules import BLACK, COLUMNS
from fewlabels.viz.plots import curves


def board_diagram(size: int, moves: list[tuple[int, int]], path: Path, title: str) -> Path:
    """The stones left at the end, each numbered by the move that placed it (captured stones are
    not drawn; the SGF file has every move)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fewlabels.rl.go.players import PolicyPlayer

    board = PolicyPlayer(None, "diagram")
    board.new_game(size, 0.0)
    number = np.zeros((size, size), int)
    for k, (colour, action) in enumerate(moves, 1):
        board.play(colour, action)
        if action < size * size:
            number[divmod(action, size)] = k
    final = board.position.board()
    fig, ax = plt.subplots(figsize=(0.55 * size + 1.2, 0.55 * size + 1.5))
    ax.set_facecolor("#dcb35c")
    for i in range(size):
        ax.plot([0, size - 1], [i, i], color="k", lw=0.8, zorder=1)
        ax.plot([i, i], [0, size - 1], color="k", lw=0.8, zorder=1)
    for r in range(size):
        for c in range(size):
            if final[r, c] == 0:
                continue
            black = final[r, c] == BLACK
            ax.add_patch(plt.Circle((c, r), 0.45, facecolor="k" if black else "w", edgecolor="k", zorder=2))
            ax.text(c, r, str(number[r, c]), ha="center", va="center", fontsize=8 if number[r, c] < 100 else 6,
                    color="w" if black else "k", zorder=3)
    ax.set_xticks(range(size), list(COLUMNS[:size]))
    ax.set_yticks(range(size), [str(i + 1) for i in range(size)])
    ax.set_xlim(-0.7, size - 0.3)
    ax.set_ylim(-0.7, size - 0.3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sections(exp, run) -> list[Section]:
    rows = run.read_metrics()
    out = []
    evals = [r for r in rows if r.get("kind") == "eval"]
    keys = sorted({k for r in evals for k in r if k.startswith("win_rate_")})
    if keys:
        fig = curves(evals, keys, run.samples / "win_rates.png", "win rate against self-play games")
        if fig:
            out.append(Section("Win rates over training", image=fig))
        last = evals[-1]
        out.append(Section("Last evaluation", html=table([{"games played": last["step"],
                                                           **{k: last.get(k) for k in keys}}])))
    fig = curves(rows, [k for k in ("value_loss", "policy_loss") if any(k in r for r in rows)],
                 run.samples / "losses.png", "losses against self-play games")
    if fig:
        out.append(Section("Losses", image=fig))
    from fewlabels.rl.go.match import play_game
    from fewlabels.rl.go.players import random_player

    record = play_game(exp.player(exp.cfg.eval.simulations), random_player(exp.cfg.eval.seed), exp.rules.size,
                       exp.rules.komi, 4 * exp.rules.size ** 2, ("fewlabels", "random"))
    fig = board_diagram(exp.rules.size, record.moves, run.samples / "game.png",
                        f"fewlabels (Black) vs random: {record.result} ({record.reason})")
    out.append(Section("One game", image=fig))
    return out
