"""Learning Q(s, a) from experience, one episode at a time (Sutton & Barto §6.4-6.5).

Both methods act ε-greedily and move Q(s, a) a step α towards a one-step target:

    Q-learning (off-policy):  target = r + γ max_a' Q(s', a')
    SARSA      (on-policy):   target = r + γ Q(s', a'),  a' the action it will actually take

Q is a NumPy array of shape (|S|, |A|), updated in place; any Gymnasium environment with
Discrete observations and actions works. Each function runs one episode and returns its
(undiscounted) return and length: the "online" return the textbook plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def epsilon_greedy(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability ε a uniformly random action; otherwise a greedy one, ties broken at
    random (with Q initialised to a constant, always taking the first tied action would
    explore nothing)."""
    if rng.random() < epsilon:
        return int(rng.random() * len(q_row))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0]) if len(best) == 1 else int(best[int(rng.random() * len(best))])


def q_learning_episode(env: Any, Q: np.ndarray, alpha: float, epsilon: float, gamma: float,
                       rng: np.random.Generator) -> tuple[float, int]:
    """Q(s, a) ← Q(s, a) + α [r + γ max_a' Q(s', a') − Q(s, a)]."""
    s, _ = env.reset()
    ret, length, done = 0.0, 0, False
    while not done:
        a = epsilon_greedy(Q[s], epsilon, rng)
        s2, r, terminated, truncated, _ = env.step(a)
        # Bootstrap on truncation: a time limit ends our patience, not the task; only a
        # terminal state has value 0.
        target = r if terminated else r + gamma * Q[s2].max()
        Q[s, a] += alpha * (target - Q[s, a])
        s, ret, length, done = s2, ret + r, length + 1, terminated or truncated
    return ret, length


def sarsa_episode(env: Any, Q: np.ndarray, alpha: float, epsilon: float, gamma: float,
                  rng: np.random.Generator) -> tuple[float, int]:
    """Q(s, a) ← Q(s, a) + α [r + γ Q(s', a') − Q(s, a)], with a' ~ ε-greedy(Q(s', ·))."""
    s, _ = env.reset()
    a = epsilon_greedy(Q[s], epsilon, rng)
    ret, length, done = 0.0, 0, False
    while not done:
        s2, r, terminated, truncated, _ = env.step(a)
        a2 = epsilon_greedy(Q[s2], epsilon, rng)
        target = r if terminated else r + gamma * Q[s2, a2]
        Q[s, a] += alpha * (target - Q[s, a])
        s, a, ret, length, done = s2, a2, ret + r, length + 1, terminated or truncated
    return ret, length


EPISODES = {"q_learning": q_learning_episode, "sarsa": sarsa_episode}


def greedy_actions_of(Q: np.ndarray) -> np.ndarray:
    """π(s) = argmax_a Q(s, a), the first of tied actions (deterministic, for evaluation)."""
    return np.argmax(Q, axis=1)


def run_policy(env: Any, actions: np.ndarray, episodes: int, seed: int, max_steps: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of `episodes` episodes of the deterministic policy s -> actions[s].
    The first reset is seeded, so the same call gives the same episodes; an episode is cut
    after `max_steps` steps (a greedy policy can walk in circles forever)."""
    actions = [int(a) for a in actions]
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    for i in range(episodes):
        s, _ = env.reset(seed=seed if i == 0 else None)
        ret, n, done = 0.0, 0, False
        while not done and n < max_steps:
            s, r, terminated, truncated, _ = env.step(actions[s])
            ret, n, done = ret + r, n + 1, terminated or truncated
        returns[i], lengths[i] = ret, n
    return returns, lengths


def policy_path(env: Any, actions: np.ndarray, seed: int, max_steps: int) -> list[int]:
    """The states one episode of s -> actions[s] visits (the path drawn on a grid)."""
    s, _ = env.reset(seed=seed)
    path, done = [int(s)], False
    while not done and len(path) <= max_steps:
        s, _, terminated, truncated, _ = env.step(int(actions[s]))
        path.append(int(s))
        done = terminated or truncated
    return path
