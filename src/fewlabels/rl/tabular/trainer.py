"""Tabular Q-learning and SARSA as an experiment of the generic loop (fewlabels.loop).

One training step is one episode (`train.steps` counts episodes). A step logs the episode's
return and length, ε and α, and `return_mean`, the mean return of the episodes since the last
log line (the textbook's online-return curve, smoothed over `train.log_every` episodes).
Evaluation runs the greedy policy argmax_a Q(s, a) on its own environment and seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewlabels.errors import UserError
from fewlabels.rl.envs import make_env
from fewlabels.rl.tabular.config import TabularConfig
from fewlabels.rl.tabular.methods import EPISODES, greedy_actions_of, run_policy


class TabularExperiment:
    def __init__(self, cfg: TabularConfig, device: torch.device | None = None):
        self.cfg = cfg  # the device is ignored: tables live in NumPy on the CPU
        e = cfg.env
        self.env = make_env(e.id, e.kwargs, e.max_episode_steps)
        self.n_states, self.n_actions = int(self.env.observation_space.n), int(self.env.action_space.n)
        self.q = np.full((self.n_states, self.n_actions), float(cfg.agent.q_init))
        self.rng = np.random.default_rng(cfg.seed)  # ε-greedy draws
        self.env.reset(seed=cfg.seed)  # seeds the environment's own generator; episodes reset unseeded
        self.episode = EPISODES[cfg.agent.name]
        self.window = [0.0, 0]  # sum and count of returns since the last log line
        self._eval_env = None

    # ---- learning ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        a, t = self.cfg.agent, self.cfg.train
        alpha = a.alpha.value(step - 1, t.horizon)
        epsilon = a.epsilon.value(step - 1, t.horizon)
        ret, length = self.episode(self.env, self.q, alpha, epsilon, a.gamma, self.rng)
        self.window[0] += ret
        self.window[1] += 1
        out = {"return": ret, "return_mean": self.window[0] / self.window[1], "length": float(length),
               "epsilon": epsilon, "alpha": alpha}
        if step % t.log_every == 0 or step == t.steps:  # the loop logs this step: start a new window
            self.window = [0.0, 0]
        return out

    # ---- state -------------------------------------------------------------------------
    def signature(self) -> str:
        return f"{self.cfg.env.id}:Q[{self.n_states}x{self.n_actions}]"

    def state_dict(self) -> dict:
        return {"q": self.q.copy(), "rng": self.rng.bit_generator.state,
                "env_rng": self.env.unwrapped.np_random.bit_generator.state,
                "window": [float(self.window[0]), int(self.window[1])]}

    def load_state_dict(self, state: dict) -> None:
        q = state["q"]
        self.q = (q.numpy() if isinstance(q, torch.Tensor) else np.asarray(q)).astype(np.float64).copy()
        self.rng.bit_generator.state = state["rng"]
        self.env.unwrapped.np_random.bit_generator.state = state["env_rng"]
        self.window = [float(state["window"][0]), int(state["window"][1])]

    # ---- evaluation --------------------------------------------------------------------
    @property
    def eval_env(self) -> Any:
        if self._eval_env is None:
            e = self.cfg.env
            self._eval_env = make_env(e.id, e.kwargs, e.max_episode_steps)
        return self._eval_env

    def greedy_policy(self) -> np.ndarray:
        return greedy_actions_of(self.q)

    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        """The greedy policy's return over `episodes` episodes (default eval.episodes)."""
        n = self.cfg.eval.episodes if episodes is None else int(episodes)
        if n < 1:
            raise UserError(f"--episodes is {n}; give a positive number of episodes")
        returns, _ = run_policy(self.eval_env, self.greedy_policy(), n, self.cfg.eval.seed, self.cfg.eval.max_steps)
        return {"mean_return": float(returns.mean()), "std_return": float(returns.std()), "episodes": n}

    def snapshot(self, step: int, folder: Path) -> None:
        np.save(Path(folder) / f"q_{step:09d}.npy", self.q)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        raise UserError(f"{self.cfg.name or self.cfg.env.id} is an RL run; `fewlabels sample` is for generative "
                        "models; use `fewlabels evaluate RUN --episodes N`")

    def report_sections(self, run) -> list:
        from fewlabels.rl.tabular.report import sections

        return sections(self, run)
