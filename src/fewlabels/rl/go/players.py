"""Players of a Go match, all with one interface (GTP's verbs, in-process):

    new_game(size, komi); play(colour, action); genmove(colour) -> action or RESIGN;
    final_score() -> "B+3.5" / "W+0.5" / "0" or None; close()

- `PolicyPlayer`: a board of its own plus a policy `(position) -> action`. The random player,
  OpenSpiel's MCTSBot, and a trained run (network alone or network plus search) are policy
  players; `fewlabels gtp` serves one over stdin/stdout.
- `GTPProcess` (gtp.py): any GTP engine as a subprocess, e.g. GNU Go.

Rules on each side: our positions are OpenSpiel's (simple ko illegal, suicide illegal), but a
whole-board repetition, which OpenSpiel calls the end of the game (a draw), is played on when a
controller or an opponent with simple ko only (GNU Go) plays it: the board before the move is
set up afresh (`Rules.setup`) and the move played there, so the ko it makes is still known. Games
played through these players have no length cap but the referee's (match.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fewlabels.errors import UserError
from fewlabels.rl.go.rules import BLACK, Position, Rules, action_to_vertex, colour_name

RESIGN = -1
# Room for any real game: GNU Go plays on until both pass; the referee has its own cap.
MOVE_CAP_PER_POINT = 12


class IllegalMove(ValueError):
    pass


class PolicyPlayer:
    """A player with its own board, choosing moves with `policy(position) -> action` (or RESIGN)."""

    def __init__(self, policy: Callable[[Position], int], name: str, history: int = 8,
                 sizes: tuple[int, ...] | None = None):
        self.policy, self.name, self.keep, self.sizes = policy, name, history, sizes
        self.rules: Rules | None = None
        self.trained_komi: float | None = None
        self.position: Position | None = None
        self.moves: list[tuple[int, int]] = []  # (colour, action) since clear_board, for undo
        self.repetitions = 0  # whole-board repetitions played on since clear_board
        # (positions, games) -> actions, one batched search for several games' moves (a trained
        # run's player: GoAgent.batch_policy); the match runner uses it to play games at once
        self.batch_policy: Callable[[list[Position], list[int]], list[int]] | None = None

    # -- GTP's board verbs -------------------------------------------------------------------
    def new_game(self, size: int, komi: float) -> None:
        if self.sizes is not None and size not in self.sizes:
            boards = " or ".join(f"{s}x{s}" for s in self.sizes)
            raise UserError(f"{self.name} plays on {boards} boards, not {size}x{size}")
        self.rules = Rules(size, float(komi), MOVE_CAP_PER_POINT * size * size)
        self.position = self.rules.new()
        self.moves = []
        self.repetitions = 0

    @property
    def komi(self) -> float | None:
        """The komi of the player's game; a trained run's is the one it learned with."""
        return self.rules.komi if self.rules is not None else self.trained_komi

    def set_komi(self, komi: float) -> None:
        self.rules = Rules(self.rules.size, float(komi), self.rules.max_moves)
        self._replay(self.moves)

    def play(self, colour: int, action: int) -> None:
        """Record `colour`'s move; IllegalMove when our rules forbid it (the board is unchanged)."""
        before = self.position
        try:
            self._apply(colour, action)
        except ValueError as e:
            self.position = before
            raise IllegalMove(str(e)) from None
        self.moves.append((colour, action))

    def genmove(self, colour: int) -> int:
        return self.commit(colour, self.policy(self.to_move(colour)))

    def to_move(self, colour: int) -> Position:
        """The position in which `colour` is to choose a move (set up afresh if the other colour was
        to move, or the game was over: GTP lets a controller ask either colour)."""
        if self.position.to_play != colour or self.position.over:
            self._setup(self.position.board(), colour)
        return self.position

    def commit(self, colour: int, action: int) -> int:
        """Play the move chosen for `to_move(colour)` (a resignation is returned, not played)."""
        if action != RESIGN:
            self.play(colour, action)
        return action

    def undo(self) -> None:
        if not self.moves:
            raise IllegalMove("cannot undo: no moves played")
        self._replay(self.moves[:-1])

    def final_score(self) -> str | None:
        return score_string(self.position.score())

    def close(self) -> None:
        pass

    # -- the board -----------------------------------------------------------------------------
    def _apply(self, colour: int, action: int) -> None:
        pos = self.position
        if pos.over or pos.to_play != colour:
            # a game over by two passes that the controller plays on, or two moves of one colour
            # in a row (GTP allows it): the board is set up afresh with `colour` to move
            pos = self._setup(pos.board(), colour)
        if not pos.legal_mask()[action]:
            raise ValueError(f"{colour_name(colour)} {action_to_vertex(action, self.rules.size)} is illegal here "
                             "(occupied, suicide, or a ko recapture)")
        after = pos.after(action, self.keep)
        if after.repetition_ended():
            # OpenSpiel ends the game on a whole-board repetition; GNU Go plays on under simple ko,
            # and so do we: the board before the move is set up afresh and the move played there,
            # so OpenSpiel knows the ko it makes (the move is legal there: it was legal here)
            after = self.rules.setup(pos.board(), colour).after(action, self.keep)
            self.repetitions += 1
        self.position = after

    def _setup(self, board: np.ndarray, colour: int) -> Position:
        self.position = self.rules.setup(board, colour)
        return self.position

    def _replay(self, moves: list[tuple[int, int]]) -> None:
        self.position = self.rules.new()
        self.moves = []
        self.repetitions = 0
        for colour, action in moves:
            self.play(colour, action)


def score_string(score: float) -> str:
    """GTP's result: "B+3.5", "W+0.5", or "0" for a tie."""
    if score == 0:
        return "0"
    return f"{'B' if score > 0 else 'W'}+{abs(score):g}"


def random_player(seed: int = 0) -> PolicyPlayer:
    rng = np.random.default_rng(seed)
    return PolicyPlayer(lambda p: int(rng.choice(np.flatnonzero(p.legal_mask()))), "random")


def mcts_player(simulations: int, seed: int = 0) -> PolicyPlayer:
    """OpenSpiel's plain Monte-Carlo tree search (MCTSBot: UCT c = 2, random rollouts), the
    yardstick of issue 14: no learned evaluation."""
    from open_spiel.python.algorithms import mcts

    rng = np.random.RandomState(seed)
    bots: dict = {}

    def policy(position: Position) -> int:
        game = position.state.get_game()
        key = id(game)
        if key not in bots:
            bots[key] = mcts.MCTSBot(game, uct_c=2.0, max_simulations=simulations,
                                     evaluator=mcts.RandomRolloutEvaluator(1, rng), random_state=rng)
        return int(bots[key].step(position.state))
    return PolicyPlayer(policy, f"mcts-{simulations}")


def parse_opponent(spec: str, where: str = "--opponent") -> tuple[str, str]:
    """(kind, argument) of an opponent: random; gnugo:L (level L); mcts:S (simulations); run:DIR."""
    kind, _, arg = spec.partition(":")
    if kind == "random" and not arg:
        return kind, ""
    if kind in ("gnugo", "mcts") and arg.isascii() and arg.isdigit():
        return kind, arg
    if kind == "run" and arg:
        return kind, arg
    raise UserError(f"{where} {spec!r} is not an opponent; valid: random, gnugo:LEVEL (e.g. gnugo:1), "
                    "mcts:SIMULATIONS (e.g. mcts:1000), run:RUN_DIR")


def colour_of(text: str) -> int:
    t = text.strip().lower()
    if t in ("b", "black"):
        return BLACK
    if t in ("w", "white"):
        return -BLACK
    raise ValueError(f"colour {text!r} is not b, black, w or white")
