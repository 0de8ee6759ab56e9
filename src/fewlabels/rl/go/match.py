"""A match between two Go players (`fewlabels match`): N games, colours alternating, every move
checked by a referee, finished games scored, one SGF file per game, and the result as JSON
with a Wilson 95 % interval on the win rate.

The referee is a board of our rules (players.PolicyPlayer with no policy): simple ko and suicide
are illegal; a whole-board repetition (a draw for OpenSpiel) is played on, as GNU Go does, and
counted in `repetitions`. A game ends when both players pass in a row, one resigns, one plays an
illegal move (it loses: `illegal_moves` says how often), or after `max_moves` moves (scored as it
stands). A move the referee accepts but the other side refuses (their rules differ) is also lost
by the mover. Scores: a GTP opponent's `final_score` when it has one (GNU Go with
--capture-all-dead removes dead stones before it passes; with two GTP engines, White's), else
Tromp-Taylor; both are kept in the SGF comment, and `score_disagreements` counts games where they
name different winners. The win rate counts draws as not won; its interval is Wilson's on wins.

A trained run's player (it has a `batch_policy`) plays up to `parallel` games at once, each with
its own opponent: its moves in every game waiting for one come from one batched search (each game
its own tree, the network called on all of them together, as in self-play), which is several
times the positions a second of one game at a time on a CPU. The games advance in lockstep, so the
same seed and `parallel` play the same games (another `parallel` batches the network's calls
differently, which may change the last bits of its outputs, and so a near-tie in the search).
Where every opponent is a GTP engine (a process each), the games' turns between two of the
agent's moves run in threads, so the engines think at the same time; in-process opponents take
their turns one game after another (they hold the interpreter, and copies of one share its
random stream, whose order keeps a match reproducible).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fewlabels.errors import UserError
from fewlabels.rl.go.gtp import GTPProcess, OpponentFailed
from fewlabels.rl.go.players import RESIGN, IllegalMove, PolicyPlayer, random_player, score_string
from fewlabels.rl.go.rules import BLACK, WHITE, action_to_vertex

GNUGO_FLAGS = "--mode gtp --chinese-rules --capture-all-dead"


def gnugo_path() -> str | None:
    """GNU Go's binary: on PATH, or in Debian's games directory (not on every PATH)."""
    return shutil.which("gnugo") or next((p for p in ("/usr/games/gnugo", "/usr/local/games/gnugo")
                                          if os.access(p, os.X_OK)), None)


def gnugo_command(level: int) -> str:
    path = gnugo_path()
    if path is None:
        raise UserError("GNU Go is not installed (Debian: apt-get install gnugo; it lands in /usr/games)")
    return f"{path} {GNUGO_FLAGS} --level {level}"


def wilson(wins: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion wins / n (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class GameRecord:
    black: str
    white: str
    moves: list[tuple[int, int]] = field(default_factory=list)  # (colour, action)
    winner: int = 0  # BLACK, WHITE, 0 for a tie
    result: str = ""  # SGF's RE: "B+3.5", "W+R", "B+F" (forfeit by an illegal move)
    reason: str = ""  # passes, resign, illegal, move cap
    tromp_taylor: str = ""
    reported: str | None = None  # the opponent's final_score
    repetitions: int = 0


def play_game(black, white, size: int, komi: float, max_moves: int, names: tuple[str, str]) -> GameRecord:
    """One game; `black` and `white` have the player interface (players.py)."""
    try:
        next(_game(black, white, size, komi, max_moves, names))
    except StopIteration as finished:
        return finished.value
    raise AssertionError("a game without a batched player does not wait for a move")


def _game(black, white, size: int, komi: float, max_moves: int, names: tuple[str, str], batched=None,
          seed: int | None = None):
    """play_game as a generator: where the player to move is `batched`, the game yields the
    position it is to move in and waits to be sent the action (the match runner chooses the moves
    of several games at once); it returns the GameRecord. A GTP engine that takes a seed (GNU Go
    does) is given `seed` first."""
    for p in (black, white):
        if seed is not None and isinstance(p, GTPProcess) and "set_random_seed" in p.known:
            p.send(f"set_random_seed {seed}")
        p.new_game(size, komi)
    referee = PolicyPlayer(None, "referee")
    referee.new_game(size, komi)
    record = GameRecord(*names)
    seat = {BLACK: black, WHITE: white}
    colour, passes = BLACK, 0
    while True:
        if len(record.moves) >= max_moves:
            record.reason = "move cap"
            break
        player = seat[colour]
        if player is batched:
            action = player.commit(colour, (yield player.to_move(colour)))
        else:
            action = player.genmove(colour)
        if action == RESIGN:
            record.winner, record.result, record.reason = -colour, f"{'W' if colour == BLACK else 'B'}+R", "resign"
            return record
        try:
            referee.play(colour, action)
        except IllegalMove:
            return _forfeit(record, colour, action, f"illegal move {action_to_vertex(action, size)}")
        record.moves.append((colour, action))
        try:
            seat[-colour].play(colour, action)
        except (IllegalMove, OpponentFailed) as e:
            if isinstance(e, OpponentFailed) and "refused" not in str(e):
                raise  # it died or hung: the match stops
            # legal for the referee, refused by the other side's rules: counted against the mover
            return _forfeit(record, colour, None, f"{action_to_vertex(action, size)} refused by the opponent")
        passes = passes + 1 if action == size * size else 0
        if passes == 2:
            record.reason = "passes"
            break
        colour = -colour
    record.repetitions = referee.repetitions
    score = referee.position.score()
    record.tromp_taylor = score_string(score)
    for p in (black, white):
        if isinstance(p, GTPProcess):
            record.reported = p.final_score()
    result = record.reported if record.reported is not None else record.tromp_taylor
    record.result = result
    record.winner = BLACK if result.upper().startswith("B+") else WHITE if result.upper().startswith("W+") else 0
    return record


def _forfeit(record: GameRecord, colour: int, action: int | None, reason: str) -> GameRecord:
    """The game lost by `colour` (SGF's "+F"), `action` recorded if it is not yet."""
    if action is not None:
        record.moves.append((colour, action))
    record.winner, record.result, record.reason = -colour, f"{'W' if colour == BLACK else 'B'}+F", reason
    return record


def write_sgf(record: GameRecord, size: int, komi: float, path: Path) -> None:
    from sgfmill import sgf

    game = sgf.Sgf_game(size=size)
    root = game.get_root()
    root.set("KM", komi)
    root.set("PB", record.black)
    root.set("PW", record.white)
    root.set("RE", record.result or "0")
    root.set("RU", "Chinese")
    root.set("DT", time.strftime("%Y-%m-%d"))
    root.set("C", f"ended by {record.reason}; Tromp-Taylor {record.tromp_taylor or '-'}; "
                  f"opponent's final_score {record.reported or '-'}; repetitions played on: {record.repetitions}")
    for colour, action in record.moves:
        node = game.extend_main_sequence()
        node.set_move("b" if colour == BLACK else "w", None if action == size * size else divmod(action, size))
    path.write_bytes(game.serialise())


def make_player(spec: str, seed: int = 0, simulations: int | None = None, device: str = "cpu"):
    """(player, name) from --opponent: "random", "gnugo:L", "mcts:S", a run directory, or a GTP command."""
    from fewlabels.rl.go.players import mcts_player

    kind, _, arg = spec.partition(":")
    if spec == "random":
        return random_player(seed), "random"
    if kind == "gnugo" and arg.isascii() and arg.isdigit():
        return GTPProcess(gnugo_command(int(arg)), f"gnugo-{arg}"), f"GNU Go level {arg}"
    if kind == "mcts" and arg.isascii() and arg.isdigit():
        return mcts_player(int(arg), seed), f"MCTSBot {arg} rollouts"
    if kind == "run" and arg or (Path(spec) / "config.yaml").is_file():
        from fewlabels.rl.go.load import load_player

        path = arg if kind == "run" and arg else spec
        return load_player(path, simulations=simulations, device=device), Path(path).name
    return GTPProcess(spec), spec.split()[0].rsplit("/", 1)[-1]


PARALLEL = 16  # games played at once by default (`match --parallel`, training's evaluations)


def spawner(opponent, spec: str, device: str = "cpu"):
    """spawn(k) for run_match: the opponent of the k-th game slot. A GTP engine is a process each
    (started from `spec`); an in-process player (random, MCTSBot, another run) is a copy with its
    own board and the same policy (no second network loaded; its random stream serves the games
    in the match's lockstep order, so the match stays reproducible)."""
    def spawn(k: int):
        return copy.copy(opponent) if isinstance(opponent, PolicyPlayer) else make_player(spec, device=device)[0]
    return spawn


def run_match(agent, opponent, games: int, size: int, komi: float, names: tuple[str, str],
              out: Path | None = None, max_moves: int | None = None, progress: bool = True,
              parallel: int = 1, spawn=None) -> dict:
    """`games` games of `agent` against `opponent`, the agent Black in even-numbered games. Where
    the agent has a `batch_policy` and `parallel` > 1, up to `parallel` games are played at once,
    game k's opponent made by `spawn(k)` for k ≥ 1 (closed here when the match ends); the
    agent's moves in every waiting game come from one call of its batch_policy."""
    from tqdm import tqdm

    cap = 4 * size * size if max_moves is None else max_moves
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    choose = getattr(agent, "batch_policy", None)
    slots = max(1, min(parallel, games)) if choose is not None and spawn is not None else 1
    wins = losses = draws = illegal = disagree = repetitions = 0
    seen: set[tuple] = set()  # distinct move sequences: deterministic players repeat games
    by_colour = {"black": [0, 0], "white": [0, 0]}  # [wins, games]
    t0 = time.perf_counter()
    bar = tqdm(total=games, desc="match", disable=not progress, leave=False)
    seats = [(agent, opponent)]
    running: dict[int, tuple] = {}  # slot -> (game, its generator, the position the agent is to move in)

    def tally(g: int, record: GameRecord) -> None:
        nonlocal wins, losses, draws, illegal, disagree, repetitions
        me, side = (BLACK, "black") if g % 2 == 0 else (WHITE, "white")
        by_colour[side][1] += 1
        if record.winner == me:
            wins += 1
            by_colour[side][0] += 1
        elif record.winner == 0:
            draws += 1
        else:
            losses += 1
        illegal += record.reason.startswith("illegal")
        repetitions += record.repetitions
        seen.add(tuple(record.moves))
        if record.reported is not None and record.reason == "passes":
            disagree += _sign(record.reported) != _sign(record.tromp_taylor)
        if out is not None:
            write_sgf(record, size, komi, out / f"game{g + 1:04d}.sgf")
        bar.update(1)
        bar.set_postfix(wins=wins, losses=losses)

    def step(send: tuple):
        """Send `action` (None: start) to the game of (slot, g, game, action) and run it until it
        waits for the agent again: ("wait", position), ("end", record) or ("failed", error).
        Touches nothing shared."""
        game, action = send[2], send[3]
        try:
            return "wait", game.send(action)
        except StopIteration as end:
            return "end", end.value
        except Exception as e:  # (raised below, once the games that ended beside it are kept)
            return "failed", e

    def advance(sends: list[tuple]) -> list[int]:
        """Step every (slot, g, game, action) (at once, in threads, where `pool`); tally the games
        that end and return their slots; raise, keeping the finished games, if an opponent failed."""
        outcomes = list((pool.map if pool else map)(step, sends))
        ended, failed = [], []
        for (slot, g, game, _), (kind, value) in zip(sends, outcomes):
            if kind == "wait":
                running[slot] = (g, game, value)
            elif kind == "end":
                tally(g, value)
                ended.append(slot)
            else:
                failed.append((g, value))
        if failed:
            (g, e), left = failed[0], len(running) + len(failed) - 1
            if not isinstance(e, OpponentFailed):
                raise e
            beside = f" (and the {left} played beside it)" if left else ""
            finished = by_colour["black"][1] + by_colour["white"][1]
            raise OpponentFailed(f"{e}; game {g + 1} of {games} stopped{beside}, the {finished} finished games are "
                                 "kept" + (f" in {out}" if out else "")) from None
        return ended

    pool = None
    try:
        for k in range(1, slots):
            seats.append((copy.copy(agent), spawn(k)))  # the agent's copy: its own board, the same search
        if slots > 1 and all(isinstance(theirs, GTPProcess) for _, theirs in seats):
            pool = ThreadPoolExecutor(slots, thread_name_prefix="match")  # the engines think at once
        free, next_game = list(range(slots)), 0
        while next_game < games or running:
            while free and next_game < games:
                starts = []
                for slot in free[: games - next_game]:
                    g, (mine, theirs) = next_game, seats[slot]
                    next_game += 1
                    black, white = (mine, theirs) if g % 2 == 0 else (theirs, mine)
                    pair = names if g % 2 == 0 else names[::-1]
                    game = _game(black, white, size, komi, cap, pair, batched=mine if choose else None, seed=g + 1)
                    starts.append((slot, g, game, None))
                del free[: len(starts)]
                free[:0] = advance(starts)  # a game over before the agent's first move frees its slot at once
            if running:
                waiting = sorted(running)
                actions = choose([running[s][2] for s in waiting], [running[s][0] for s in waiting])
                sends = [(slot, *running.pop(slot)[:2], action) for slot, action in zip(waiting, actions)]
                free += advance(sends)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        bar.close()
        for game in running.values():
            game[1].close()
        for _, theirs in seats[1:]:
            theirs.close()
    lo, hi = wilson(wins, games)
    result = {"games": games, "wins": wins, "losses": losses, "draws": draws, "win_rate": wins / games,
              "ci95": [round(lo, 4), round(hi, 4)], "agent": names[0], "opponent": names[1], "size": size,
              "komi": komi, "win_rate_as_black": _rate(*by_colour["black"]),
              "win_rate_as_white": _rate(*by_colour["white"]), "illegal_moves": illegal,
              "score_disagreements": disagree, "repetitions": repetitions, "distinct_games": len(seen),
              "seconds": round(time.perf_counter() - t0, 1), "parallel": slots,
              "score_utility": getattr(agent, "score_utility", None),
              "gumbel_actions": getattr(agent, "gumbel_actions", None)}
    if out is not None:
        (out / "match.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _sign(result: str) -> int:
    r = result.strip().upper()
    return 1 if r.startswith("B+") else -1 if r.startswith("W+") else 0


def _rate(wins: int, n: int) -> float | None:
    return wins / n if n else None
