"""Planning with a known model: dynamic programming on a `fewlabels.rl.planning.mdp.MDP`.

Every sweep is a whole-array Bellman backup (a sparse matrix-vector product, or the grid
world's stencil); no Python loop runs over states. Values are arrays of shape (S,); action
values are (S, A), as Q[s, a] is written on the slides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import MatrixRankWarning, spsolve, spsolve_triangular

from fewlabels.errors import UserError
from fewlabels.rl.planning.mdp import MDP

TIE_TOLERANCE = 1e-9


@dataclass
class Evaluation:
    """v_π from iterative policy evaluation, the sweeps it took and v_k for the requested k."""

    values: np.ndarray
    sweeps: int
    history: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class Solution:
    """An optimal value function, its action values, the tied greedy actions and the work done."""

    values: np.ndarray
    q: np.ndarray            # (S, A)
    greedy: np.ndarray       # (S, A) bool: every action that attains max_a q(s, a); none at terminals
    sweeps: int              # Bellman backups (value iteration) or policy evaluations (policy iteration)
    policy: np.ndarray       # (S,) one optimal action per state (the first tied one)
    history: dict[int, np.ndarray] = field(default_factory=dict)  # v_k for the recorded k


def random_policy(mdp: MDP) -> np.ndarray:
    """π(a | s) = 1 / |A|: the lecture's random policy, shape (S, A)."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def deterministic_policy(mdp: MDP, actions: np.ndarray) -> np.ndarray:
    """π(a | s) = 1 if a = actions[s], as an (S, A) array."""
    pi = np.zeros((mdp.n_states, mdp.n_actions))
    pi[np.arange(mdp.n_states), np.asarray(actions, dtype=np.int64)] = 1.0
    return pi


def q_values(mdp: MDP, v: np.ndarray) -> np.ndarray:
    """q(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) v(s'), shape (S, A)."""
    return mdp.q_backup(np.asarray(v, dtype=np.float64)).T


def greedy_actions(mdp: MDP, q: np.ndarray, tol: float = TIE_TOLERANCE) -> np.ndarray:
    """Every action attaining max_a q(s, a) (within `tol`, relative to its size), shape (S, A)
    bool. Terminal states (and walls) have none: nothing is done there."""
    q = np.asarray(q)
    best = q.max(axis=1, keepdims=True)
    tied = q >= best - tol * np.maximum(1.0, np.abs(best))
    tied[mdp.inert] = False
    return tied


def _check_policy(mdp: MDP, policy: np.ndarray) -> np.ndarray:
    pi = np.asarray(policy, dtype=np.float64)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise UserError(f"the policy has shape {pi.shape}; expected (S, A) = ({mdp.n_states}, {mdp.n_actions})")
    if (pi < 0).any() or np.abs(pi.sum(axis=1) - 1).max() > 1e-9:
        raise UserError("every row of the policy must hold probabilities π(a | s) >= 0 summing to 1")
    return pi


def policy_evaluation(mdp: MDP, policy: np.ndarray, tol: float = 1e-10, max_sweeps: int = 1_000_000,
                      in_place: bool = False, record: tuple[int, ...] = (), v0: np.ndarray | None = None
                      ) -> Evaluation:
    """Iterative policy evaluation (Sutton & Barto §4.1):

        v_{k+1}(s) = Σ_a π(a | s) [ r(s, a) + γ Σ_s' P(s' | s, a) v_k(s') ]

    from v_0 = 0, until max_s |v_{k+1}(s) - v_k(s)| < tol or `max_sweeps` sweeps (with tol = 0,
    exactly `max_sweeps`: v_k is then the expected return of the first k steps).

    Synchronous sweeps compute v_{k+1} from v_k alone. In-place sweeps visit states in index
    order and use each new value as soon as it exists (Gauss-Seidel); one such sweep is the
    triangular solve (I - L) v_{k+1} = r_π + U v_k, with γ P_π = L + U split into the part
    below the diagonal (states already visited) and the rest.

    `record` lists the k whose v_k are kept (k = 0 is the zero function)."""
    pi = _check_policy(mdp, policy)
    v = np.zeros(mdp.n_states) if v0 is None else np.array(v0, dtype=np.float64)
    history = {0: v.copy()} if 0 in record else {}
    sweep = _in_place_sweep(mdp, pi) if in_place else _synchronous_sweep(mdp, pi)
    for k in range(1, max_sweeps + 1):
        new = sweep(v)
        delta = float(np.abs(new - v).max())
        v = new
        if k in record:
            history[k] = v.copy()
        if delta < tol:
            return Evaluation(v, k, history)
    if tol > 0:
        raise UserError(f"policy evaluation did not converge to {tol:g} within {max_sweeps} sweeps "
                        f"(last change {delta:.3g}); the policy may never end an episode: set gamma < 1")
    return Evaluation(v, max_sweeps, history)


def _synchronous_sweep(mdp: MDP, pi: np.ndarray):
    pi_as = np.ascontiguousarray(pi.T)  # (A, S), matching q_backup's layout
    return lambda v: np.einsum("as,as->s", pi_as, mdp.q_backup(v))


def _in_place_sweep(mdp: MDP, pi: np.ndarray):
    P_pi, r_pi = policy_model(mdp, pi)
    G = (mdp.gamma * P_pi).tocsr()
    lower = sp.eye(mdp.n_states, format="csr") - sp.tril(G, k=-1, format="csr")
    upper = sp.triu(G, k=0, format="csr")
    return lambda v: spsolve_triangular(lower, r_pi + upper @ v, lower=True, unit_diagonal=True)


def policy_model(mdp: MDP, policy: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """P_π(s, s') = Σ_a π(a | s) P(s' | s, a) and r_π(s) = Σ_a π(a | s) r(s, a)."""
    pi = _check_policy(mdp, policy)
    S, A = mdp.n_states, mdp.n_actions
    # Π picks row a·S + s of P with weight π(a | s): Π[s, a·S + s] = π(a | s).
    cols = (np.arange(A)[:, None] * S + np.arange(S)[None, :]).ravel()
    rows = np.tile(np.arange(S), A)
    Pi = sp.csr_matrix((pi.T.ravel(), (rows, cols)), shape=(S, A * S))
    return (Pi @ mdp.P).tocsr(), (pi.T * mdp.r).sum(axis=0)


def value_iteration(mdp: MDP, tol: float = 1e-6, max_sweeps: int = 1_000_000, record: tuple[int, ...] = ()
                    ) -> Solution:
    """Value iteration (Sutton & Barto §4.4): the Bellman optimality backup

        v_{k+1}(s) = max_a [ r(s, a) + γ Σ_s' P(s' | s, a) v_k(s') ]

    from v_0 = 0 until max_s |v_{k+1}(s) - v_k(s)| < tol. `sweeps` counts backups, the last
    one included."""
    v, new, diff = np.zeros(mdp.n_states), np.empty(mdp.n_states), np.empty(mdp.n_states)
    history = {0: v.copy()} if 0 in record else {}
    for k in range(1, max_sweeps + 1):
        # Two buffers swapped each sweep: fresh arrays of a million values cost page faults.
        mdp.optimality_backup(v, out=new)
        np.subtract(new, v, out=diff)
        delta = float(np.abs(diff, out=diff).max())
        v, new = new, v
        if k in record:
            history[k] = v.copy()
        if delta < tol:
            q = q_values(mdp, v)
            tied = greedy_actions(mdp, q)
            return Solution(v, q, tied, k, np.argmax(tied, axis=1), history)
    raise UserError(f"value iteration did not converge to {tol:g} within {max_sweeps} sweeps (last change "
                    f"{delta:.3g}); with gamma = 1 and positive rewards returns can grow without bound: set gamma < 1")


def policy_iteration(mdp: MDP, max_iterations: int = 10_000) -> Solution:
    """Policy iteration (Sutton & Barto §4.3): evaluate π exactly, v_π = (I - γ P_π)^{-1} r_π,
    then improve it greedily, π'(s) ∈ argmax_a q_π(s, a), until π is stable. It starts from
    the random policy; an improvement keeps the current action when it is among the tied best,
    so the loop cannot cycle between equally good policies. `sweeps` counts evaluations."""
    pi = random_policy(mdp)
    actions = None
    for k in range(1, max_iterations + 1):
        v = solve_policy_values(mdp, pi)
        q = q_values(mdp, v)
        tied = greedy_actions(mdp, q)
        new = np.argmax(tied, axis=1)
        if actions is not None:
            keep = tied[np.arange(mdp.n_states), actions]
            new = np.where(keep, actions, new)
            if np.array_equal(new, actions):
                return Solution(v, q, tied, k, actions)
        actions = new
        pi = deterministic_policy(mdp, actions)
    raise UserError(f"policy iteration did not settle within {max_iterations} improvements")


def solve_policy_values(mdp: MDP, policy: np.ndarray) -> np.ndarray:
    """v_π exactly: the sparse linear system (I - γ P_π) v = r_π, solved on the states an episode
    can be in (v = 0 at inert states: terminal cells, and walls, which no move enters)."""
    P_pi, r_pi = policy_model(mdp, policy)
    live = np.flatnonzero(~mdp.inert)
    v = np.zeros(mdp.n_states)
    v[live] = _solve(P_pi[live][:, live], r_pi[live], mdp.gamma)
    return v


def expected_return(mdp: MDP, policy: np.ndarray) -> float:
    """E[Σ_t γ^t r_t] from s_0 ~ p(s_0) under π, solved exactly on the states π can reach from
    the start (elsewhere a greedy policy of a half-learned Q may loop, which does not matter)."""
    P_pi, r_pi = policy_model(mdp, policy)
    seen = mdp.start > 0
    frontier = seen
    while frontier.any():  # breadth-first over P_π: at most the length of the longest path
        nxt = (P_pi.T @ frontier.astype(np.float64)) > 0
        frontier = nxt & ~seen
        seen |= nxt
    idx = np.flatnonzero(seen)
    v = _solve(P_pi[idx][:, idx], r_pi[idx], mdp.gamma)
    return float(mdp.start[idx] @ v)


def _solve(P_pi: sp.csr_matrix, r_pi: np.ndarray, gamma: float) -> np.ndarray:
    system = (sp.eye(P_pi.shape[0], format="csc") - gamma * P_pi).tocsc()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", MatrixRankWarning)
        try:
            v = np.atleast_1d(spsolve(system, r_pi))
        except RuntimeError:  # SuperLU: "Factor is exactly singular"
            v = np.full(P_pi.shape[0], np.nan)
    if not np.all(np.isfinite(v)):
        raise UserError("the policy never ends some episodes, so with gamma = 1 its values are infinite; "
                        "set gamma < 1 or start from a policy that reaches a terminal state")
    return v
