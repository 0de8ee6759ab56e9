"""How to draw a tabular environment on a grid: its size, what each cell is, and which way
each action moves (Gymnasium's toy-text grids number their actions differently)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fewlabels.rl.planning.gridworld import ACTIONS, MOVES, Grid, GridWorldEnv


@dataclass
class GridLayout:
    rows: int
    cols: int
    kinds: np.ndarray  # (rows, cols) of "free", "start", "terminal", "goal", "hole", "cliff", "wall"
    moves: tuple[tuple[int, int], ...]  # (d_row, d_col) of each action
    action_names: tuple[str, ...]

    def cell(self, s: int) -> tuple[int, int]:
        return divmod(int(s), self.cols)

    @classmethod
    def of_grid(cls, grid: Grid) -> GridLayout:
        kinds = np.full((grid.rows, grid.cols), "free", dtype=object)
        for r, c in grid.terminals:
            kinds[r, c] = "terminal"
        for r, c in grid.walls:
            kinds[r, c] = "wall"
        if grid.start is not None:
            kinds[grid.start] = "start"
        return cls(grid.rows, grid.cols, kinds, MOVES, ACTIONS)


FROZEN_LAKE_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up
FROZEN_LAKE_KINDS = {"S": "start", "F": "free", "H": "hole", "G": "goal"}


def grid_layout(env: Any) -> GridLayout | None:
    """The layout of our grid world, FrozenLake or CliffWalking; None for other environments."""
    u = env.unwrapped
    if isinstance(u, GridWorldEnv):
        return GridLayout.of_grid(u.grid)
    desc = getattr(u, "desc", None)
    if desc is not None and type(u).__name__ == "FrozenLakeEnv":
        letters = np.asarray(desc).astype(str)
        kinds = np.vectorize(FROZEN_LAKE_KINDS.get, otypes=[object])(letters)
        return GridLayout(*letters.shape, kinds, FROZEN_LAKE_MOVES, ("left", "down", "right", "up"))
    if type(u).__name__ == "CliffWalkingEnv":
        rows, cols = u.shape
        kinds = np.full((rows, cols), "free", dtype=object)
        kinds[np.asarray(u._cliff, dtype=bool)] = "cliff"
        kinds[np.unravel_index(u.start_state_index, u.shape)] = "start"
        kinds[rows - 1, cols - 1] = "goal"
        return GridLayout(rows, cols, kinds, MOVES, ACTIONS)
    return None
