"""The lecture's Grid World: actions up, right, down, left; reward -1 for each transition; reach
one of the grey terminal cells in the fewest actions.

`Grid` describes one (size, terminal cells, walls, step reward, slip probability); `GridMDP` is
its exact model, with a Bellman backup written as shifts of the value array (a stencil) instead
of a sparse product; `GridWorldEnv` is the Gymnasium environment `fewlabels/GridWorld-v0`,
which samples its steps from that same model, so planning and learning see one MDP.

Moving into the outer wall or a wall cell leaves the agent where it is. With slip probability
p the agent moves in the intended direction with probability 1 - p and in each of the two
perpendicular directions with probability p / 2 (the stochastic grid world of Russell & Norvig
uses p = 0.2; FrozenLake uses p = 2/3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from scipy import ndimage

from fewlabels.errors import UserError
from fewlabels.rl.planning.mdp import MDP, Transitions

ACTIONS = ("up", "right", "down", "left")  # Gymnasium's CliffWalking order
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
PERPENDICULAR = ((3, 1), (0, 2), (1, 3), (0, 2))
Cell = tuple[int, int]


def _cell(value: Any, what: str) -> Cell:
    if isinstance(value, str):
        parts = value.replace("(", "").replace(")", "").split(",")
    else:
        parts = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    try:
        if len(parts) != 2:
            raise ValueError
        r, c = (int(str(x).strip()) for x in parts)
    except ValueError:
        raise UserError(f"{what} {value!r} is not a (row, column) pair such as [0, 3] in a config, "
                        "or 0,3 on the command line") from None
    return r, c


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"grid {what} is {value!r}; give a number")
    return float(value)


@dataclass(frozen=True)
class Grid:
    """A grid world: `rows` x `cols` cells, (row, column) from the top left."""

    rows: int = 4
    cols: int = 4
    terminals: tuple[Cell, ...] = ((0, 0), (3, 3))
    walls: tuple[Cell, ...] = ()
    step_reward: float = -1.0
    slip: float = 0.0
    start: Cell | None = None  # None: uniform over the non-terminal, non-wall cells

    @classmethod
    def make(cls, rows: int = 4, cols: int = 4, terminals: Any = ((0, 0), (3, 3)), walls: Any = (),
             step_reward: float = -1.0, slip: float = 0.0, start: Any = None) -> Grid:
        """A checked Grid from loose input (lists from YAML or JSON, "r,c" strings)."""
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UserError(f"grid {name} is {value!r}; give a whole number >= 1")
        if rows * cols > 50_000_000:
            raise UserError(f"a {rows}x{cols} grid has {rows * cols} cells; at most 50,000,000 fit in memory here")
        if isinstance(terminals, str):
            terminals = [t for t in terminals.split(";") if t.strip()]
        if isinstance(walls, str):
            walls = [w for w in walls.split(";") if w.strip()]
        grid = cls(int(rows), int(cols), tuple(dict.fromkeys(_cell(t, "terminal") for t in terminals)),
                   tuple(dict.fromkeys(_cell(w, "wall") for w in walls)), _number(step_reward, "step_reward"),
                   _number(slip, "slip"), None if start is None else _cell(start, "start"))
        grid.check()
        return grid

    def check(self) -> None:
        where = f"the {self.rows}x{self.cols} grid (rows 0..{self.rows - 1}, columns 0..{self.cols - 1})"
        for what, cells in (("terminal", self.terminals), ("wall", self.walls),
                            ("start", [self.start] if self.start is not None else [])):
            for r, c in cells:
                if not (0 <= r < self.rows and 0 <= c < self.cols):
                    raise UserError(f"{what} ({r}, {c}) is outside {where}")
        both = set(self.terminals) & set(self.walls)
        if both:
            raise UserError(f"cell {sorted(both)[0]} is both a terminal and a wall; a cell can be one of them")
        if self.start is not None and (self.start in self.terminals or self.start in self.walls):
            raise UserError(f"start {self.start} is a terminal or wall cell; start on a free cell")
        if not np.isfinite(self.step_reward):
            raise UserError(f"grid step_reward is {self.step_reward}; give a finite number")
        if not 0.0 <= self.slip <= 1.0:
            raise UserError(f"grid slip is {self.slip}; valid values are 0 <= slip <= 1")
        if len(self.terminals) + len(self.walls) >= self.rows * self.cols:
            raise UserError(f"every cell of {where} is a terminal or a wall; leave at least one free cell")

    def mask(self, cells) -> np.ndarray:
        m = np.zeros((self.rows, self.cols), dtype=bool)
        for r, c in cells:
            m[r, c] = True
        return m


GRID_KEYS = ("rows", "cols", "terminals", "walls", "step_reward", "slip", "start")


def grid_from_kwargs(kwargs: dict, where: str = "grid") -> Grid:
    """The Grid that `fewlabels/GridWorld-v0` would build from these keyword arguments."""
    for key in kwargs:
        if key not in GRID_KEYS + ("render_mode",):
            raise UserError(f"{where}.{key} is not a grid world option; valid: {', '.join(GRID_KEYS)}")
    try:
        return Grid.make(**{k: v for k, v in kwargs.items() if k in GRID_KEYS})
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


class GridMDP(MDP):
    """The exact model of a `Grid`. States are cells, s = row * cols + col; wall cells are
    states no move enters (their values stay 0). The Bellman backups shift the value array;
    the transitions (for sampling and the generic sparse path) are built only when asked for."""

    def __init__(self, grid: Grid, gamma: float = 1.0):
        self.grid = grid
        self.shape = (grid.rows, grid.cols)
        self.walls = grid.mask(grid.walls).ravel()
        terminal = grid.mask(grid.terminals).ravel()
        if grid.start is not None:
            start = np.zeros(grid.rows * grid.cols)
            start[grid.start[0] * grid.cols + grid.start[1]] = 1.0
        else:
            free = ~terminal & ~self.walls
            start = free / free.sum()
        super().__init__(grid.rows * grid.cols, 4, None, gamma, terminal, start, list(ACTIONS),
                         f"the {grid.rows}x{grid.cols} grid world", check=False)
        self._inert = self.terminal | self.walls
        self._inert_index = np.flatnonzero(self._inert)
        self._wall_index = np.flatnonzero(self.walls)
        self._beside_wall = self._cells_beside_walls()
        # _into_wall[a, i]: moving in direction a from the i-th cell beside a wall enters it
        self._into_wall = self.walls[self._moves()[:, self._beside_wall]] if self._beside_wall.size \
            else np.zeros((4, 0), dtype=bool)
        self._check_cells_reach_terminal()

    def with_gamma(self, gamma: float) -> GridMDP:
        return self if gamma == self.gamma else GridMDP(self.grid, gamma)

    def state_name(self, s: int) -> str:
        r, c = divmod(int(s), self.grid.cols)
        return f"cell ({r}, {c})"

    @property
    def inert(self) -> np.ndarray:
        return self._inert

    def _check_cells_reach_terminal(self) -> None:
        """With γ = 1 every cell an episode can visit must have a path to a terminal cell."""
        if self.gamma < 1.0:
            return
        term = self.terminal.reshape(self.shape)
        if not term.any():
            raise UserError(f"{self.name} has no terminal cell, so with gamma = 1 returns are infinite sums; "
                            "add a terminal cell or set gamma < 1")
        open_cells = ~term & ~self.walls.reshape(self.shape)
        labels, _ = ndimage.label(open_cells)  # 4-connected regions between walls and terminals
        touching = np.unique(labels[ndimage.binary_dilation(term) & open_cells])
        stuck = open_cells & ~np.isin(labels, touching)
        if self.grid.start is not None:
            stuck &= labels == labels[self.grid.start]
        if stuck.any():
            r, c = np.argwhere(stuck)[0]
            raise UserError(f"in {self.name} cell ({r}, {c}) cannot reach a terminal cell (walls close it in), "
                            "so with gamma = 1 its return is an infinite sum; open a path or set gamma < 1")

    def _cells_beside_walls(self) -> np.ndarray:
        """Cells with a wall cell next to them (moving into it leaves them in place)."""
        w = self.walls.reshape(self.shape)
        beside = np.zeros_like(w)
        beside[1:] |= w[:-1]
        beside[:-1] |= w[1:]
        beside[:, 1:] |= w[:, :-1]
        beside[:, :-1] |= w[:, 1:]
        return np.flatnonzero(beside & ~w)

    # ---- the model, as shifts ----------------------------------------------------------
    def _moves(self) -> np.ndarray:
        """m[a, s]: the cell a move in direction a heads for from s (s itself at the outer edge)."""
        R, C = self.shape
        r, c = np.divmod(np.arange(R * C), C)
        return np.stack([(r + dr).clip(0, R - 1) * C + (c + dc).clip(0, C - 1) for dr, dc in MOVES])

    def destinations(self) -> np.ndarray:
        """dest[a, s]: the cell a move in direction a leads to from s (s itself if blocked)."""
        m = self._moves()
        return np.where(self.walls[m], np.arange(self.n_states), m)

    def _neighbour_values(self, v: np.ndarray) -> np.ndarray:
        """nb[a, s] = v(dest[a, s]), as four shifted copies of the value array."""
        R, C = self.shape
        v2 = v.reshape(R, C)
        nb = np.empty((4, R, C))
        up, right, down, left = nb
        up[1:], up[0] = v2[:-1], v2[0]
        down[:-1], down[-1] = v2[1:], v2[-1]
        left[:, 1:], left[:, 0] = v2[:, :-1], v2[:, 0]
        right[:, :-1], right[:, -1] = v2[:, 1:], v2[:, -1]
        nb = nb.reshape(4, R * C)
        for a in range(4):  # a move into a wall cell stays put
            s = self._beside_wall[self._into_wall[a]]
            nb[a, s] = v[s]
        return nb

    def q_backup(self, v: np.ndarray) -> np.ndarray:
        """q(s, a) = step_reward + γ [(1 - p) v(s_a) + p/2 (v(s_a⊥1) + v(s_a⊥2))], shape (4, S)."""
        p = self.grid.slip
        nb = self._neighbour_values(v)
        if p > 0:
            q = np.empty_like(nb)
            for a, (b, c) in enumerate(PERPENDICULAR):
                np.add(nb[b], nb[c], out=q[a])
                q[a] *= p / 2
                q[a] += (1 - p) * nb[a]
        else:
            q = nb
        if self.gamma != 1.0:
            q *= self.gamma
        q += self.grid.step_reward
        q[:, self._inert_index] = 0.0
        q[:, self._wall_index] = self.gamma * v[self._wall_index]  # a wall cell only loops on itself
        return q

    def optimality_backup(self, v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """max_a q(s, a). Without slip, max_a v(s_a) is the maximum of the four shifted arrays,
        taken in place (no (4, S) temporary): the hot loop of value iteration on big grids."""
        if self.grid.slip > 0:
            return np.max(self.q_backup(v), axis=0, out=out)
        R, C = self.shape
        src = v
        if self._wall_index.size:  # never move into a wall: it cannot be the best neighbour ...
            src = v.copy()
            src[self._wall_index] = -np.inf
        v2 = src.reshape(R, C)
        out = (np.empty(R * C) if out is None else out).reshape(R, C)
        out[1:], out[0] = v2[:-1], v2[0]
        np.maximum(out[:-1], v2[1:], out=out[:-1])
        np.maximum(out[-1], v2[-1], out=out[-1])
        np.maximum(out[:, 1:], v2[:, :-1], out=out[:, 1:])
        np.maximum(out[:, 0], v2[:, 0], out=out[:, 0])
        np.maximum(out[:, :-1], v2[:, 1:], out=out[:, :-1])
        np.maximum(out[:, -1], v2[:, -1], out=out[:, -1])
        out = out.reshape(-1)
        if self._beside_wall.size:  # ... but bumping into one leaves you in place
            s = self._beside_wall
            out[s] = np.maximum(out[s], v[s])
        if self.gamma != 1.0:
            out *= self.gamma
        out += self.grid.step_reward
        out[self._inert_index] = 0.0
        out[self._wall_index] = self.gamma * v[self._wall_index]
        return out

    def _make_transitions(self) -> Transitions:
        S, p = self.n_states, self.grid.slip
        dest = self.destinations()
        live = np.flatnonzero(~self._inert)
        parts = []  # (state, action, next state, probability, reward)
        for a in range(4):
            outcomes = [(dest[a], 1.0 - p)] + [(dest[b], p / 2) for b in PERPENDICULAR[a]]
            for d, prob in outcomes:
                if prob > 0:
                    parts.append((live, np.full(live.size, a), d[live], np.full(live.size, prob),
                                  np.full(live.size, self.grid.step_reward)))
        walls = self._wall_index
        for a in range(4):
            parts.append((walls, np.full(walls.size, a), walls, np.ones(walls.size), np.zeros(walls.size)))
        cols = [np.concatenate(c) for c in zip(*parts)]
        return Transitions.sorted(S, 4, *cols)


class GridWorldEnv(gym.Env):
    """`fewlabels/GridWorld-v0`: the grid world as a Gymnasium environment.

    Observations are cell indices row * cols + col; actions 0..3 are up, right, down, left;
    each step costs `step_reward`; an episode ends on entering a terminal cell. It starts in
    `start`, or in a uniformly random free cell. `env.unwrapped.mdp` is the model it samples
    from. render_mode "ansi" draws text (T terminal, # wall, A agent), "rgb_array" an image."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    CELL_PIXELS = 32

    def __init__(self, rows: int = 4, cols: int = 4, terminals: Any = ((0, 0), (3, 3)), walls: Any = (),
                 step_reward: float = -1.0, slip: float = 0.0, start: Any = None, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(f"render_mode {render_mode!r} is not supported; valid: ansi, rgb_array")
        self.grid = Grid.make(rows, cols, terminals, walls, step_reward, slip, start)
        self.mdp = GridMDP(self.grid)
        self.observation_space = gym.spaces.Discrete(self.mdp.n_states)
        self.action_space = gym.spaces.Discrete(4)
        self.render_mode = render_mode
        self._start_cdf = np.cumsum(self.mdp.start)
        self.s = int(np.argmax(self.mdp.start))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        u = self.np_random.random()
        self.s = int(min(np.searchsorted(self._start_cdf, u, side="right"), self.mdp.n_states - 1))
        return self.s, {"prob": float(self.mdp.start[self.s])}

    def step(self, action):
        if self.mdp.terminal[self.s]:
            raise UserError("the episode has ended (the agent is on a terminal cell); call reset() first")
        next_states, probs, rewards = self.mdp.outcomes(self.s, int(action))
        i = 0 if len(probs) == 1 else min(int(np.searchsorted(np.cumsum(probs), self.np_random.random(),
                                                              side="right")), len(probs) - 1)
        self.s = int(next_states[i])
        return self.s, float(rewards[i]), bool(self.mdp.terminal[self.s]), False, {"prob": float(probs[i])}

    def render(self):
        if self.render_mode == "ansi":
            return self._render_text()
        if self.render_mode == "rgb_array":
            return self._render_image()
        return None

    def _render_text(self) -> str:
        chars = np.full(self.mdp.shape, ".")
        chars[self.terminal_mask] = "T"
        chars[self.mdp.walls.reshape(self.mdp.shape)] = "#"
        chars[divmod(self.s, self.grid.cols)] = "A"
        return "\n".join("".join(row) for row in chars) + "\n"

    @property
    def terminal_mask(self) -> np.ndarray:
        return self.mdp.terminal.reshape(self.mdp.shape)

    def _render_image(self) -> np.ndarray:
        k = self.CELL_PIXELS
        colours = np.full(self.mdp.shape + (3,), 255, dtype=np.uint8)
        colours[self.terminal_mask] = (170, 170, 170)  # the lecture's grey terminal states
        colours[self.mdp.walls.reshape(self.mdp.shape)] = (40, 40, 40)
        img = colours.repeat(k, axis=0).repeat(k, axis=1)
        img[::k, :] = img[:, ::k] = (200, 200, 200)  # grid lines
        r, c = divmod(self.s, self.grid.cols)
        pad = k // 4
        img[r * k + pad:(r + 1) * k - pad, c * k + pad:(c + 1) * k - pad] = (31, 119, 180)
        return img
