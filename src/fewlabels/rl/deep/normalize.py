"""Running statistics for observation and reward normalisation. Their state is part of the
agent's checkpoint, so evaluation sees observations exactly as training did (SB3 keeps
VecNormalize statistics apart from the model, its issue #468; we do not)."""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update), in float64.

    Under torchrun (`shared`), each rank's new batches collect apart (`pending`) and `sync()`
    merges every rank's into the common statistics by the same parallel update, in rank order, so
    all ranks hold the same numbers after it (and a checkpoint, saved after it, holds them all).
    Between syncs a rank normalises with the common statistics and its own pending ones."""

    def __init__(self, shape: tuple[int, ...] = (), shared: bool = False):
        self.shape = shape
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4
        self.pending: RunningMeanStd | None = None
        if shared:
            self.pending = RunningMeanStd(shape)
            self.pending.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        if self.pending is not None:
            self.pending.update(batch)
        else:
            self.combine(batch.shape[0], batch.mean(0), batch.var(0))

    def combine(self, n: float, b_mean: np.ndarray, b_var: np.ndarray) -> None:
        """Merge in the statistics of n more samples (mean b_mean, variance b_var)."""
        delta, total = b_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + b_var * n + delta ** 2 * self.count * n / total) / total
        self.count = total

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of everything seen: the common statistics and this rank's pending ones."""
        if self.pending is None or self.pending.count == 0:
            return self.mean, self.var
        both = RunningMeanStd(self.shape)
        both.load_state_dict(self.state_dict())
        both.combine(self.pending.count, self.pending.mean, self.pending.var)
        return both.mean, both.var

    def sync(self) -> None:
        """Merge every rank's pending statistics into the common ones (every rank calls it)."""
        if self.pending is None:
            return
        import torch

        from fewlabels.distributed import all_gather

        p, d = self.pending, self.mean.size
        row = torch.from_numpy(np.concatenate([[p.count], p.mean.ravel(), p.var.ravel()]))
        for r in all_gather(row):
            r = r.numpy()
            if r[0] > 0:
                self.combine(float(r[0]), r[1:1 + d].reshape(self.shape), r[1 + d:].reshape(self.shape))
        p.mean, p.var, p.count = np.zeros(self.shape), np.ones(self.shape), 0.0

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(state["count"])


class ObservationNormalizer:
    """obs -> clip((obs - μ) / √(σ² + 1e-8), ±clip); statistics updated only while training."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, shared: bool = False):
        self.rms, self.clip = RunningMeanStd(shape, shared), clip

    def __call__(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if update:
            self.rms.update(obs)
        mean, var = self.rms.current()
        out = (obs - mean) / np.sqrt(var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """r -> clip(r / σ_R, ±clip) where σ_R is the running std of the discounted return
    R_t = γ R_{t-1} + r_t (reset at episode ends), as in SB3's VecNormalize and the PPO
    implementation-details study: it rescales rewards without shifting them."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, shared: bool = False):
        self.rms, self.gamma, self.clip = RunningMeanStd((), shared), gamma, clip
        self.ret = np.zeros(num_envs, np.float64)

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        self.ret[done] = 0.0
        return np.clip(reward / np.sqrt(self.rms.current()[1] + 1e-8), -self.clip, self.clip).astype(np.float32)
