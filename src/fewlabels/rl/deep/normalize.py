"""Running statistics for observation and reward normalisation. Their state is part of the
agent's checkpoint, so evaluation sees observations exactly as training did (SB3 keeps
VecNormalize statistics apart from the model, its issue #468; we do not)."""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update), in float64."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        b_mean, b_var, n = batch.mean(0), batch.var(0), batch.shape[0]
        delta, total = b_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + b_var * n + delta ** 2 * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(state["count"])


class ObservationNormalizer:
    """obs -> clip((obs - μ) / √(σ² + 1e-8), ±clip); statistics updated only while training."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0):
        self.rms, self.clip = RunningMeanStd(shape), clip

    def __call__(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if update:
            self.rms.update(obs)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """r -> clip(r / σ_R, ±clip) where σ_R is the running std of the discounted return
    R_t = γ R_{t-1} + r_t (reset at episode ends), as in SB3's VecNormalize and the PPO
    implementation-details study: it rescales rewards without shifting them."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0):
        self.rms, self.gamma, self.clip = RunningMeanStd(()), gamma, clip
        self.ret = np.zeros(num_envs, np.float64)

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        self.ret[done] = 0.0
        return np.clip(reward / np.sqrt(self.rms.var + 1e-8), -self.clip, self.clip).astype(np.float32)
