"""A finite Markov decision process (S, A, R, P, γ), as the lecture defines it.

At t = 0 the environment samples s_0 ~ p(s_0); the agent picks a_t; the environment samples
r_t ~ R(· | s_t, a_t) and s_{t+1} ~ P(· | s_t, a_t). Episodes end on entering a terminal state,
whose value is 0. The model is held as a list of transitions (s, a, s', P(s' | s, a), r), sorted
by (s, a); planning uses the matrix form

    q(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) v(s'),      r(s, a) = Σ_s' P(s' | s, a) r(s, a, s')

with one sparse matrix of shape (A·S, S), rows ordered action-major (row a·S + s), so that the
maximum over actions is a maximum over A contiguous rows. Rows of terminal states are empty:
nothing happens after the episode ends.

Build one from arrays (`MDP.from_arrays`), from transition lists (`MDP(...)`), from a
Gymnasium toy-text environment's `P` table (`MDP.from_gym`), or from a grid
(`fewlabels.rl.planning.gridworld.GridMDP`). Planning algorithms live in `fewlabels.rl.planning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from fewlabels.errors import UserError

PROBABILITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Transitions:
    """(s, a, s', P(s' | s, a), r(s, a, s')) as parallel arrays, sorted by (s, a).
    `indptr[s * A + a] : indptr[s * A + a + 1]` are the outcomes of taking a in s."""

    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    prob: np.ndarray
    reward: np.ndarray
    indptr: np.ndarray

    @classmethod
    def sorted(cls, n_states: int, n_actions: int, state, action, next_state, prob, reward) -> Transitions:
        state, action, next_state = (np.asarray(x, dtype=np.int64).ravel() for x in (state, action, next_state))
        prob = np.asarray(prob, dtype=np.float64).ravel()
        reward = np.broadcast_to(np.asarray(reward, dtype=np.float64), prob.shape).ravel()
        lengths = {len(state), len(action), len(next_state), len(prob), len(reward)}
        if len(lengths) != 1:
            raise UserError(f"transition arrays have different lengths {sorted(lengths)}; "
                            "give one state, action, next state, probability and reward per transition")
        key = state * n_actions + action
        order = np.argsort(key, kind="stable")
        indptr = np.searchsorted(key[order], np.arange(n_states * n_actions + 1))
        return cls(state[order], action[order], next_state[order], prob[order], reward[order], indptr)


class MDP:
    """A finite MDP with terminal states; see the module docstring for the conventions.

    Arguments:
        n_states, n_actions: |S| and |A|.
        transitions: the model, or None in subclasses that build it on demand (`_make_transitions`).
        gamma: the discount γ in [0, 1].
        terminal: boolean mask of terminal states (default: none).
        start: the distribution of s_0 (default: uniform over non-terminal states).
        action_names: names for messages, JSON and pictures (default "0", "1", ...).
        name: what the errors call this MDP (e.g. "FrozenLake-v1").
    """

    def __init__(self, n_states: int, n_actions: int, transitions: Transitions | None, gamma: float = 1.0,
                 terminal: Any = None, start: Any = None, action_names: list[str] | None = None,
                 name: str = "MDP", check: bool = True):
        self.name = name
        if int(n_states) < 1 or int(n_actions) < 1:
            raise UserError(f"{name} has {n_states} states and {n_actions} actions; it needs at least one of each")
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        if not 0.0 <= float(gamma) <= 1.0:
            raise UserError(f"{name}: gamma is {gamma}; valid values are 0 <= gamma <= 1")
        self.gamma = float(gamma)
        self.terminal = self._mask(terminal)
        self.action_names = list(action_names) if action_names is not None else [str(a) for a in range(n_actions)]
        if len(self.action_names) != self.n_actions:
            raise UserError(f"{name}: {len(self.action_names)} action names for {n_actions} actions")
        if transitions is not None:
            self.__dict__["transitions"] = transitions  # fills the cached_property
        self.start = self._start_distribution(start)
        if check:
            self._check_transitions()
            self._check_episodes_end()

    # ---- constructors ------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, P: Any, R: Any, gamma: float = 1.0, terminal: Any = None, start: Any = None,
                    action_names: list[str] | None = None, name: str = "MDP") -> MDP:
        """From dense arrays: P[s, a, s'] = P(s' | s, a); R of shape (S, A) (expected reward)
        or (S, A, S) (reward of each transition)."""
        P = np.asarray(P, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise UserError(f"{name}: P has shape {P.shape}; expected (S, A, S) with P[s, a, s'] = P(s' | s, a)")
        S, A, _ = P.shape
        R = np.asarray(R, dtype=np.float64)
        if R.shape not in ((S, A), (S, A, S)):
            raise UserError(f"{name}: R has shape {R.shape}; expected ({S}, {A}) or ({S}, {A}, {S})")
        s, a, s2 = np.nonzero(P != 0)
        r = R[s, a] if R.ndim == 2 else R[s, a, s2]
        t = Transitions.sorted(S, A, s, a, s2, P[s, a, s2], r)
        return cls(S, A, t, gamma, terminal, start, action_names, name)

    @classmethod
    def from_gym(cls, env: Any, gamma: float = 1.0) -> MDP:
        """From a Gymnasium environment (or id) with a toy-text `P` table:
        P[s][a] = [(probability, next_state, reward, terminated), ...] (FrozenLake, CliffWalking, Taxi).

        A state is terminal when a transition into it ends the episode. (In Taxi a few states that
        no episode can reach also move into such states without ending; their values are then those
        of an episode that ends there, which no reachable state depends on.)"""
        import gymnasium as gym

        if isinstance(env, str):
            from fewlabels.rl.envs import make_env

            env = make_env(env, where="env")
        u = env.unwrapped
        name = env.spec.id if env.spec is not None else type(u).__name__
        own = getattr(u, "mdp", None)
        if isinstance(own, MDP):  # our own environments carry their model
            return own.with_gamma(gamma)
        if not (isinstance(env.observation_space, gym.spaces.Discrete) and isinstance(env.action_space,
                                                                                       gym.spaces.Discrete)):
            raise UserError(f"{name} has observation space {env.observation_space} and action space "
                            f"{env.action_space}; an MDP needs Discrete observations and actions")
        table = getattr(u, "P", None)
        if not isinstance(table, dict):
            raise UserError(f"{name} has no transition table P (a dict P[s][a] = [(p, s', r, terminated)]); "
                            "planning needs a toy-text environment such as FrozenLake-v1, CliffWalking-v1 or Taxi-v4")
        S, A = int(env.observation_space.n), int(env.action_space.n)
        rows = _read_transition_table(table, S, A, name)
        s, a, s2, p, r, done = (np.array(col) for col in zip(*rows))
        terminal = np.zeros(S, dtype=bool)
        terminal[s2[done]] = True
        start = getattr(u, "initial_state_distrib", None)
        names = _ACTION_NAMES.get(name.split("-v")[0], None)
        return cls(S, A, Transitions.sorted(S, A, s, a, s2, p, r), gamma, terminal, start,
                   names if names and len(names) == A else None, name)

    def with_gamma(self, gamma: float) -> MDP:
        """The same model with another discount."""
        if gamma == self.gamma:
            return self
        return MDP(self.n_states, self.n_actions, self.transitions, gamma, self.terminal, self.start,
                   self.action_names, self.name)

    # ---- the model ---------------------------------------------------------------------
    @cached_property
    def transitions(self) -> Transitions:
        return self._make_transitions()

    def _make_transitions(self) -> Transitions:
        raise NotImplementedError

    @cached_property
    def P(self) -> sp.csr_matrix:
        """P(s' | s, a) at row a·S + s, column s'; rows of terminal states empty."""
        t, S = self.transitions, self.n_states
        live = ~self.terminal[t.state]
        rows = t.action[live] * S + t.state[live]
        return sp.csr_matrix((t.prob[live], (rows, t.next_state[live])), shape=(self.n_actions * S, S))

    @cached_property
    def r(self) -> np.ndarray:
        """Expected reward r(s, a) = Σ_s' P(s' | s, a) r(s, a, s'), shape (A, S); 0 at terminal states."""
        t, S = self.transitions, self.n_states
        live = ~self.terminal[t.state]
        idx = t.action[live] * S + t.state[live]
        w = t.prob[live] * t.reward[live]
        return np.bincount(idx, weights=w, minlength=self.n_actions * S).reshape(self.n_actions, S)

    def q_backup(self, v: np.ndarray) -> np.ndarray:
        """q(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) v(s'), shape (A, S)."""
        q = (self.P @ v).reshape(self.n_actions, self.n_states)
        if self.gamma != 1.0:
            q *= self.gamma
        q += self.r
        return q

    def optimality_backup(self, v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(T* v)(s) = max_a q(s, a): one sweep of value iteration (into `out` if given)."""
        return np.max(self.q_backup(v), axis=0, out=out)

    def outcomes(self, state: int, action: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(next states, probabilities, rewards) of taking `action` in `state`."""
        t = self.transitions
        k = state * self.n_actions + action
        lo, hi = t.indptr[k], t.indptr[k + 1]
        return t.next_state[lo:hi], t.prob[lo:hi], t.reward[lo:hi]

    def state_name(self, s: int) -> str:
        return f"state {s}"

    @property
    def inert(self) -> np.ndarray:
        """States where nothing is decided: terminal states (and, in a grid, walls)."""
        return self.terminal

    # ---- validation --------------------------------------------------------------------
    def _mask(self, terminal: Any) -> np.ndarray:
        if terminal is None:
            return np.zeros(self.n_states, dtype=bool)
        m = np.asarray(terminal)
        if m.dtype != bool:  # a list of terminal state indices
            idx = m.astype(np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= self.n_states):
                bad = idx[(idx < 0) | (idx >= self.n_states)][0]
                raise UserError(f"{self.name}: terminal state {bad} is outside 0..{self.n_states - 1}")
            m = np.zeros(self.n_states, dtype=bool)
            m[idx] = True
        if m.shape != (self.n_states,):
            raise UserError(f"{self.name}: the terminal mask has shape {m.shape}; expected ({self.n_states},)")
        return m

    def _start_distribution(self, start: Any) -> np.ndarray:
        if start is None:
            free = ~self.terminal
            if not free.any():
                return np.full(self.n_states, 1.0 / self.n_states)
            return free / free.sum()
        p = np.asarray(start, dtype=np.float64).ravel()
        if p.shape != (self.n_states,) or not np.all(np.isfinite(p)) or (p < 0).any() \
                or abs(p.sum() - 1) > 1e-6:
            raise UserError(f"{self.name}: the start distribution must be {self.n_states} non-negative "
                            f"probabilities summing to 1")
        return p

    def _check_transitions(self) -> None:
        t, S, A = self.transitions, self.n_states, self.n_actions
        for arr, hi, what in ((t.state, S, "state"), (t.action, A, "action"), (t.next_state, S, "next state")):
            bad = np.flatnonzero((arr < 0) | (arr >= hi))
            if bad.size:
                raise UserError(f"{self.name}: transition {bad[0]} has {what} {arr[bad[0]]}, "
                                f"outside 0..{hi - 1}")
        bad = np.flatnonzero(~np.isfinite(t.prob) | (t.prob < 0) | ~np.isfinite(t.reward))
        if bad.size:
            i = bad[0]
            what = "reward" if np.isfinite(t.prob[i]) and t.prob[i] >= 0 else "probability"
            value = t.reward[i] if what == "reward" else t.prob[i]
            raise UserError(f"{self.name}: the {what} of {self.state_name(t.state[i])}, action "
                            f"{self.action_names[t.action[i]]!r} -> {self.state_name(t.next_state[i])} is {value}; "
                            f"{'rewards must be finite' if what == 'reward' else 'probabilities must be >= 0'}")
        total = np.bincount(t.state * A + t.action, weights=t.prob, minlength=S * A).reshape(S, A)
        wrong = (np.abs(total - 1) > PROBABILITY_TOLERANCE) & ~self.terminal[:, None]
        if wrong.any():
            s, a = np.argwhere(wrong)[0]
            raise UserError(f"{self.name}: the probabilities of {self.state_name(s)}, action "
                            f"{self.action_names[a]!r} sum to {total[s, a]:.6g}; they must sum to 1")

    def _check_episodes_end(self) -> None:
        """With γ = 1 a return is a plain sum, finite only if the episode ends: every state an
        episode can visit must be able to reach a terminal state."""
        if self.gamma < 1.0:
            return
        visited = self._reachable(self.start > 0, self.P, forward=True)
        if not (visited & self.terminal).any():
            raise UserError(f"{self.name}: gamma is 1 but no terminal state is reachable from the start states, "
                            "so returns are infinite sums; add a terminal state or set gamma < 1")
        ends = self._reachable(self.terminal, self.P, forward=False)
        stuck = np.flatnonzero(visited & ~ends)
        if stuck.size:
            raise UserError(f"{self.name}: gamma is 1 but {self.state_name(stuck[0])} can be reached and cannot "
                            "reach any terminal state, so its return is an infinite sum; add a terminal state "
                            "it can reach or set gamma < 1")

    def _reachable(self, sources: np.ndarray, P: sp.csr_matrix, forward: bool) -> np.ndarray:
        """States reachable from `sources` (or, backwards, that can reach them) under some actions."""
        S = self.n_states
        adj = P.tocoo()
        src, dst = adj.row % S, adj.col
        if not forward:
            src, dst = dst, src
        # One extra node S points to every source; a breadth-first search from it finds them all.
        seeds = np.flatnonzero(sources)
        rows = np.concatenate([src, np.full(seeds.size, S)])
        cols = np.concatenate([dst, seeds])
        graph = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(S + 1, S + 1))
        order = breadth_first_order(graph, S, directed=True, return_predecessors=False)
        seen = np.zeros(S + 1, dtype=bool)
        seen[order] = True
        return seen[:S]


_ACTION_NAMES = {
    "FrozenLake": ["left", "down", "right", "up"],
    "FrozenLake8x8": ["left", "down", "right", "up"],
    "CliffWalking": ["up", "right", "down", "left"],
    "CliffWalkingSlippery": ["up", "right", "down", "left"],
    "Taxi": ["south", "north", "east", "west", "pickup", "dropoff"],
}


def _read_transition_table(table: dict, S: int, A: int, name: str) -> list[tuple]:
    """The rows of a toy-text P table, checked for shape; values are checked by MDP."""
    rows = []
    for s in range(S):
        by_action = table.get(s)
        if not isinstance(by_action, dict):
            raise UserError(f"{name}: P[{s}] is missing or not a dict; P needs an entry P[s][a] for every state "
                            f"0..{S - 1} and action 0..{A - 1}")
        for a in range(A):
            outcomes = by_action.get(a)
            if not isinstance(outcomes, (list, tuple)) or not outcomes:
                raise UserError(f"{name}: P[{s}][{a}] is missing or empty; it must list "
                                "(probability, next_state, reward, terminated) tuples")
            for item in outcomes:
                if not isinstance(item, (list, tuple)) or len(item) != 4:
                    raise UserError(f"{name}: P[{s}][{a}] holds {item!r}; each outcome must be "
                                    "(probability, next_state, reward, terminated)")
                p, s2, r, done = item
                try:
                    rows.append((s, a, int(s2), float(p), float(r), bool(done)))
                except (TypeError, ValueError):
                    raise UserError(f"{name}: P[{s}][{a}] holds {item!r}; probability and reward must be "
                                    "numbers and next_state an integer") from None
                if not 0 <= int(s2) < S:
                    raise UserError(f"{name}: P[{s}][{a}] leads to next state {int(s2)}, outside 0..{S - 1}")
    return rows
