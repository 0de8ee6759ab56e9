"""Experience replay: a ring buffer of transitions (s, a, r, s', terminated) in preallocated
tensors. Pixel observations are kept as uint8: one 4x84x84 stack is 28 KB, so a transition
(s and s') is 56 KB and 100,000 of them take 5.6 GB; vector observations are float32."""

from __future__ import annotations

import torch
from torch import Tensor


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, device: torch.device):
        self.capacity, self.device = capacity, device
        self.obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype, device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(capacity, dtype=torch.long, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.pos, self.size = 0, 0

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in (self.obs, self.next_obs, self.actions, self.rewards,
                                                           self.terminated))

    def add(self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor, terminated: Tensor) -> None:
        """Append a batch of transitions (one per sub-environment), overwriting the oldest."""
        n = obs.shape[0]
        idx = (torch.arange(n, device=self.device) + self.pos) % self.capacity if self.pos + n > self.capacity \
            else slice(self.pos, self.pos + n)
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.terminated[idx] = terminated
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """A uniform minibatch (with replacement), drawn from torch's global generator."""
        idx = torch.randint(self.size, (batch_size,), device=self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx]

    def state_dict(self) -> dict:
        n = self.size
        return {"obs": self.obs[:n].clone(), "next_obs": self.next_obs[:n].clone(), "actions": self.actions[:n].clone(),
                "rewards": self.rewards[:n].clone(), "terminated": self.terminated[:n].clone(),
                "pos": self.pos, "size": n}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, name)[:n] = state[name].to(self.device)
        self.pos, self.size = int(state["pos"]), n
