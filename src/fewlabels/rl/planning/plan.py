"""`fewlabels plan`: exact planning on the grid world (or a Gymnasium toy-text environment),
printed as JSON: {"values": [[...]], "policy": [[...]], "sweeps": k}.

--policy random evaluates the equiprobable random policy. Its values are solved exactly, as the
linear system v = (I - γ P_π)^{-1} r_π (a sparse solve; with γ = 1 it has a unique solution
because every cell reaches a terminal cell), so Figure 4.1's -14 prints as -14, not as the
-13.999999999 where iterating to a tolerance stops. "sweeps" is still what the lecture counts:
the synchronous (or, with --in-place, Gauss-Seidel) sweeps of iterative policy evaluation from
v = 0 until no value changes by more than --tol (426 on the 4x4 grid at 1e-10).
--policy optimal runs value iteration; "sweeps" counts its Bellman backups, the last (which
changed nothing by more than --tol) included.
Either way "policy" lists, for each cell, every action that is greedy with respect to the values
(all tied ones, in the order up, right, down, left); terminal cells list none.
"""

from __future__ import annotations

import numpy as np

from fewlabels.errors import UserError
from fewlabels.rl.planning import dp as planning
from fewlabels.rl.planning.mdp import MDP


def plan(env: str = "gridworld", rows: int | None = None, cols: int | None = None, terminals: str | None = None,
         walls: str | None = None, slip: float | None = None, policy: str = "optimal", gamma: float = 1.0,
         tol: float | None = None, in_place: bool = False) -> tuple[dict, list[list[str]]]:
    """(result, marks): the result is {"values", "policy", "sweeps"} (the JSON contract); marks
    is the grid of cells as text shows them: "T" terminal, "#" wall, "" otherwise."""
    if tol is not None and not tol > 0:
        raise UserError(f"--tol is {tol}; give a positive tolerance such as 1e-10")
    grid_flags = {"--rows": rows, "--cols": cols, "--terminals": terminals, "--walls": walls, "--slip": slip}
    if env.lower() == "gridworld":
        from fewlabels.rl.planning.gridworld import Grid, GridMDP

        rows, cols = 4 if rows is None else rows, 4 if cols is None else cols
        corners = f"0,0;{rows - 1},{cols - 1}"  # the lecture's grey cells: two opposite corners, whatever the size
        grid = Grid.make(rows, cols, corners if terminals is None else terminals, walls or (), -1.0,
                         0.0 if slip is None else slip)
        mdp, shape = GridMDP(grid, gamma), (grid.rows, grid.cols)
        wall_cells = set(grid.walls)
    else:
        given = [flag for flag, value in grid_flags.items() if value is not None]
        if given:
            raise UserError(f"{given[0]} is for --env gridworld; {env} has its own layout")
        from fewlabels.rl.envs import make_env

        mdp = MDP.from_gym(make_env(env, where="--env"), gamma)
        shape = _shape_of(env, mdp)
        wall_cells = set()
    if policy == "random":
        pi = planning.random_policy(mdp)
        values = planning.solve_policy_values(mdp, pi)  # exact; refuses a policy that never ends an episode
        sweeps = planning.policy_evaluation(mdp, pi, tol=1e-10 if tol is None else tol, in_place=in_place).sweeps
        tied = planning.greedy_actions(mdp, planning.q_values(mdp, values))
    elif policy == "optimal":
        if in_place:
            raise UserError("--in-place is for --policy random (in-place policy evaluation)")
        result = planning.value_iteration(mdp, tol=1e-10 if tol is None else tol)
        values, sweeps, tied = result.values, result.sweeps, result.greedy
    else:
        raise UserError(f"--policy {policy!r} is unknown; valid: random, optimal")
    names = mdp.action_names
    cells = [[names[a] for a in np.flatnonzero(row)] for row in tied]
    clean = np.round(values, 10) + 0.0  # + 0.0 turns -0.0 into 0.0
    result = {"values": clean.reshape(shape).tolist(),
              "policy": [cells[i:i + shape[1]] for i in range(0, len(cells), shape[1])],
              "sweeps": int(sweeps)}
    terminal = np.asarray(mdp.terminal).reshape(shape)
    marks = [["#" if (r, c) in wall_cells else "T" if terminal[r, c] else "" for c in range(shape[1])]
             for r in range(shape[0])]
    return result, marks


ARROWS = {"up": "↑", "right": "→", "down": "↓", "left": "←"}


def plan_text(result: dict, marks: list[list[str]], policy: str) -> str:
    """The values and the greedy policy as two grids: T terminal, # wall, arrows for the actions
    (ties side by side; other environments' action names by their first letters)."""
    width = max(8, *(len(f"{v:.2f}") + 1 for row in result["values"] for v in row))

    def cells(rows) -> str:
        return "\n".join("".join(f"{cell:>{width}}" for cell in row) for row in rows)

    values = [[m or f"{v:.2f}" for v, m in zip(vrow, mrow)] for vrow, mrow in zip(result["values"], marks)]
    actions = [[m or "".join(ARROWS.get(a, a[:1].upper()) for a in acts) or "·" for acts, m in zip(prow, mrow)]
               for prow, mrow in zip(result["policy"], marks)]
    what = "the random policy's values" if policy == "random" else "optimal values"
    return (f"{what} (T terminal, # wall):\n{cells(values)}\n\n"
            f"greedy policy w.r.t. these values (ties side by side):\n{cells(actions)}\n\nsweeps: {result['sweeps']}")


def _shape_of(env_id: str, mdp: MDP) -> tuple[int, int]:
    """The grid of a toy-text environment (FrozenLake, CliffWalking), else one row of states."""
    from fewlabels.rl.envs import make_env
    from fewlabels.rl.planning.layouts import grid_layout

    layout = grid_layout(make_env(env_id))
    if layout is not None and layout.rows * layout.cols == mdp.n_states:
        return layout.rows, layout.cols
    return 1, mdp.n_states
