"""Go as a Gymnasium environment, `fewlabels/Go-v0` (the lecture's last RL example: state = the
stones on the board, action = where to put the next one down, reward 1 for a win at the end).

    env = gymnasium.make("fewlabels/Go-v0", size=5, komi=24.5, opponent="random")
    obs, info = env.reset(seed=0)          # info["action_mask"]: the legal actions
    obs, reward, terminated, truncated, info = env.step(action)

Observations are `planes(position)`: (2H + 1, N, N) float32 seen from the side to move: its stones
and the opponent's in the last H positions (newest first), then a plane of ones when that side is
Black (komi makes the colours unequal). Actions: row * N + column, N² to pass.

Two ways to play:
- `opponent=None`: both colours move through `step`, in turn; the reward goes to the side that
  just moved.
- `opponent="random"` or a callable `(position) -> action`: the agent plays `agent_colour`
  (black, white, or alternate: Black on even-numbered episodes), the opponent answers inside `step`.

Rewards at the end only: `reward="win"` is the lecture's (1 for a win, 0 otherwise); `"pm1"` gives
+1 / -1 (and 0 for OpenSpiel's draw by whole-board repetition). An illegal action raises
ValueError; agents use `info["action_mask"]`.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from fewlabels.rl.go.rules import BLACK, Position, Rules, default_komi

GO_ID = "fewlabels/Go-v0"


def input_planes(history: int, komi: bool = False) -> int:
    """How many planes `planes(position, history, komi)` has."""
    return 2 * history + 1 + int(komi)


def planes(position: Position, history: int = 3, komi: bool = False) -> np.ndarray:
    """(2 * history + 1, N, N) float32: own stones, opponent stones, for each of the last `history`
    positions (older ones empty before the game's start), then ones when Black is to move; with
    `komi`, one more plane: the komi the side to move receives, over N² (+komi / N² for White,
    -komi / N² for Black; KataGo's input: a network that can play any komi)."""
    n = position.rules.size
    me = position.to_play or BLACK
    out = np.zeros((input_planes(history, komi), n, n), np.float32)
    for t, board in enumerate(position.boards[:history]):
        out[2 * t] = board == me
        out[2 * t + 1] = board == -me
    out[2 * history] = me == BLACK
    if komi:
        out[-1] = -me * position.rules.komi / (n * n)
    return out


def random_policy(rng: np.random.Generator) -> Callable[[Position], int]:
    """A uniformly random legal move, pass included (the yardstick "random player")."""
    def act(position: Position) -> int:
        return int(rng.choice(np.flatnonzero(position.legal_mask())))
    return act


class GoEnv(gym.Env):
    """Gymnasium environment; see the module docstring. Registered as `fewlabels/Go-v0`."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, size: int = 5, komi: float | None = None, history: int = 3, reward: str = "win",
                 opponent: str | Callable[[Position], int] | None = None, agent_colour: str = "alternate",
                 max_moves: int | None = None, render_mode: str | None = None):
        if reward not in ("win", "pm1"):
            raise ValueError(f"reward {reward!r} is unknown; valid: 'win' (1 for a win, else 0), 'pm1' (+1 / -1)")
        if agent_colour not in ("black", "white", "alternate"):
            raise ValueError(f"agent_colour {agent_colour!r} is unknown; valid: black, white, alternate")
        if isinstance(opponent, str) and opponent != "random":
            raise ValueError(f"opponent {opponent!r} is unknown; valid: None (both sides step), 'random', "
                             "or a callable (position) -> action")
        self.rules = Rules(size, default_komi(size) if komi is None else float(komi), max_moves)
        self.history, self.reward_kind, self.render_mode = history, reward, render_mode
        self.opponent_spec, self.agent_colour = opponent, agent_colour
        n = size
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2 * history + 1, n, n), np.float32)
        self.action_space = gym.spaces.Discrete(n * n + 1)
        self.position: Position | None = None
        self.episode = -1
        self.me = BLACK

    # ---- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.position = self.rules.new()
        self._opponent = (random_policy(self.np_random) if self.opponent_spec == "random" else self.opponent_spec)
        if self._opponent is not None:
            self.me = {"black": BLACK, "white": -BLACK}.get(self.agent_colour,
                                                            BLACK if self.episode % 2 == 0 else -BLACK)
            if self.me != BLACK:
                self.position.play(self._opponent(self.position), self.history)
        return self._observe(), self._info()

    def step(self, action):
        if self.position is None or self.position.over:
            raise RuntimeError("step() after the game ended; call reset()")
        mover = self.position.to_play
        self.position.play(int(action), self.history)  # ValueError for an illegal move
        if self._opponent is not None and not self.position.over:
            self.position.play(self._opponent(self.position), self.history)
            mover = self.me
        done = self.position.over
        reward = self._reward(mover) if done else 0.0
        return self._observe(), reward, done, False, self._info()

    def render(self):
        if self.render_mode == "ansi":
            return str(self.position.state)
        return None

    def close(self):
        pass

    # ---- helpers ---------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        return planes(self.position, self.history)

    def _info(self) -> dict:
        info = {"action_mask": self.position.legal_mask(), "to_play": self.position.to_play}
        if self.position.over:
            info.update(winner=self.position.winner(), score=self.position.score(),
                        repetition=self.position.repetition_ended())
        return info

    def _reward(self, player: int) -> float:
        winner = self.position.winner()
        if self.reward_kind == "win":
            return float(winner == player)
        return float(np.sign(winner * player))


def register() -> None:
    if GO_ID not in gym.registry:
        gym.register(id=GO_ID, entry_point="fewlabels.rl.go.env:GoEnv", disable_env_checker=True)
