"""The Go Text Protocol, version 2 (Farnebäck's specification): `GTPEngine` serves a player on
stdin/stdout (`fewlabels gtp RUN_DIR`), so a GUI (Sabaki, GoGui) or another engine can play it;
`GTPProcess` drives any GTP engine as a subprocess (GNU Go, or `fewlabels gtp` itself).

A command is `[id] name [arguments]`; the answer is `=[id] result` or `?[id] error message`,
followed by an empty line. Bad arguments get a `?` answer, never a crash.
"""

from __future__ import annotations

import collections
import math
import queue
import re
import shlex
import subprocess
import sys
import threading
from typing import TextIO

from fewlabels.errors import UserError
from fewlabels.rl.go.players import RESIGN, IllegalMove, PolicyPlayer, colour_of
from fewlabels.rl.go.rules import COLUMNS, SIZES, action_to_vertex, vertex_to_action

DIGITS = re.compile(r"[0-9]+")  # not str.isdigit, which takes "²"
COMMANDS = ("protocol_version", "name", "version", "known_command", "list_commands", "quit", "boardsize",
            "clear_board", "komi", "play", "genmove", "undo", "showboard", "final_score")


class GTPError(Exception):
    """A `?` answer with this message."""


class GTPEngine:
    def __init__(self, player: PolicyPlayer, size: int, komi: float, name: str = "fewlabels"):
        from fewlabels import __version__

        self.player, self.name, self.version = player, name, __version__
        self.size, self.komi = size, komi
        self.player.new_game(size, komi)
        self.quit = False

    # -- protocol --------------------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """The answer to one input line (with its trailing empty line), or None for a line that is
        empty or a comment."""
        # the specification's preprocessing: control characters out, tabs to spaces, comments off
        line = "".join(c for c in line.replace("\t", " ") if " " <= c != "\x7f").split("#", 1)[0].strip()
        if not line:
            return None
        words = line.split()
        ident = ""
        if DIGITS.fullmatch(words[0]):
            ident, words = words[0], words[1:]
            if not words:
                return f"?{ident} empty command\n\n"
        name, args = words[0].lower(), words[1:]
        try:
            if name not in COMMANDS:
                raise GTPError("unknown command")
            result = getattr(self, f"cmd_{name}")(args)
        except GTPError as e:
            return f"?{ident} {e}\n\n"
        except Exception as e:  # never a crash: the controller gets an answer and the engine lives on
            return f"?{ident} internal error: {type(e).__name__}: {e}\n\n"
        return f"={ident} {result}".rstrip(" ") + "\n\n" if result else f"={ident}\n\n"

    def serve(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        for line in stdin:
            answer = self.handle(line)
            if answer is not None:
                stdout.write(answer)
                stdout.flush()
            if self.quit:
                break

    # -- commands ----------------------------------------------------------------------------------
    def cmd_protocol_version(self, args):
        return "2"

    def cmd_name(self, args):
        return self.name

    def cmd_version(self, args):
        return self.version

    def cmd_known_command(self, args):
        _need(args, 1, "known_command NAME")
        return "true" if args[0].lower() in COMMANDS else "false"

    def cmd_list_commands(self, args):
        return "\n".join(COMMANDS)

    def cmd_quit(self, args):
        self.quit = True
        return ""

    def cmd_boardsize(self, args):
        _need(args, 1, "boardsize SIZE")
        if not DIGITS.fullmatch(args[0]):
            raise GTPError("syntax error (boardsize takes an integer)")
        size = int(args[0])
        if size not in SIZES or (self.player.sizes is not None and size not in self.player.sizes):
            raise GTPError("unacceptable size")
        self.size = size
        self.player.new_game(size, self.komi)
        return ""

    def cmd_clear_board(self, args):
        self.player.new_game(self.size, self.komi)
        return ""

    def cmd_komi(self, args):
        _need(args, 1, "komi VALUE")
        try:
            komi = float(args[0])
        except ValueError:
            komi = math.nan
        if not math.isfinite(komi):
            raise GTPError("syntax error (komi takes a finite number)")
        self.komi = komi
        self.player.set_komi(self.komi)
        return ""

    def cmd_play(self, args):
        _need(args, 2, "play COLOUR VERTEX")
        colour, action = self._colour(args[0]), self._vertex(args[1])
        try:
            self.player.play(colour, action)
        except IllegalMove:
            raise GTPError("illegal move") from None
        return ""

    def cmd_genmove(self, args):
        _need(args, 1, "genmove COLOUR")
        action = self.player.genmove(self._colour(args[0]))
        return "resign" if action == RESIGN else action_to_vertex(action, self.size).lower()

    def cmd_undo(self, args):
        try:
            self.player.undo()
        except IllegalMove:
            raise GTPError("cannot undo") from None
        return ""

    def cmd_showboard(self, args):
        board = self.player.position.board()
        rows = [f"{r + 1:2d} " + " ".join(".XO"[int(v)] for v in board[r]) for r in range(self.size - 1, -1, -1)]
        letters = "   " + " ".join(COLUMNS[: self.size])
        return "\n" + "\n".join([letters, *rows, letters])

    def cmd_final_score(self, args):
        return self.player.final_score()

    # -- arguments --------------------------------------------------------------------------------
    def _colour(self, text: str) -> int:
        try:
            return colour_of(text)
        except ValueError:
            raise GTPError("invalid color") from None

    def _vertex(self, text: str) -> int:
        try:
            return vertex_to_action(text, self.size)
        except ValueError:
            raise GTPError("invalid coordinate") from None


def _need(args: list[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise GTPError(f"syntax error (usage: {usage})")


class OpponentFailed(UserError):
    """A GTP subprocess that did not start, died, answered `?` to a move, or timed out."""


class GTPProcess:
    """A GTP engine in a subprocess, with GTP's verbs as methods (the player interface of players.py)."""

    def __init__(self, command: str, name: str | None = None, timeout: float = 120.0):
        self.command, self.name, self.timeout = command, name or command, timeout
        try:
            self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, bufsize=1)
        except (OSError, ValueError) as e:
            raise OpponentFailed(f"opponent command {command!r} does not start ({e}); give a GTP engine's "
                                 "command line, e.g. \"gnugo --mode gtp --level 1\"") from None
        self.lines: queue.Queue = queue.Queue()
        self.errors: collections.deque = collections.deque(maxlen=20)  # its last stderr lines, for messages
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()  # a full pipe would block it
        try:
            self.known = set(self.send("list_commands").split())
        except OpponentFailed:
            self.close()
            raise

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                self.lines.put(line)
        except (OSError, ValueError):  # closed by close()
            pass
        self.lines.put(None)

    def _drain_stderr(self) -> None:
        try:
            for line in self.proc.stderr:
                if line.strip():
                    self.errors.append(line.strip())
        except (OSError, ValueError):
            pass

    def send(self, command: str) -> str:
        """The result of `command`; OpponentFailed when the engine dies, times out or answers `?`."""
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(command) from None
        answer: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=self.timeout)
            except queue.Empty:
                self.close()
                raise OpponentFailed(f"opponent {self.name!r} did not answer {command!r} within "
                                     f"{self.timeout:g} s") from None
            if line is None:
                raise self._died(command)
            if line.strip() == "" and answer:
                break
            if line.strip() or answer:
                answer.append(line.rstrip("\n"))
        text = "\n".join(answer)
        if text.startswith("?"):
            raise OpponentFailed(f"opponent {self.name!r} refused {command!r}: {text[1:].strip()}")
        return text[1:].strip()

    def _died(self, command: str) -> OpponentFailed:
        try:  # its output closed: it is exiting, give it a moment to say how
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
            self.close()
        detail = f"; it said: {self.errors[-1]}" if self.errors else ""
        return OpponentFailed(f"opponent {self.name!r} stopped (exit code {code}) at {command!r}{detail}")

    # -- the player interface ----------------------------------------------------------------------
    def new_game(self, size: int, komi: float) -> None:
        self.size = size
        self.send(f"boardsize {size}")
        self.send("clear_board")
        self.send(f"komi {komi:g}")

    def play(self, colour: int, action: int) -> None:
        self.send(f"play {'b' if colour == 1 else 'w'} {action_to_vertex(action, self.size)}")

    def genmove(self, colour: int) -> int:
        move = self.send(f"genmove {'b' if colour == 1 else 'w'}")
        if move.lower() == "resign":
            return RESIGN
        try:
            return vertex_to_action(move, self.size)
        except ValueError:
            raise OpponentFailed(f"opponent {self.name!r} answered genmove with {move!r}, not a vertex") from None

    def final_score(self) -> str | None:
        return self.send("final_score") if "final_score" in self.known else None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass
