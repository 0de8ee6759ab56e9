"""Deep Q-learning (Mnih et al. 2015), with Double DQN (van Hasselt et al. 2016) as an option.

One `train_step` = `train_freq` vector steps of ε-greedy acting into the replay buffer, then
`gradient_steps` updates of
    L(θ) = E[ ℓ( Q_θ(s, a) - y ) ],   y = r + γ (1 - terminated) Q_θ⁻(s', a*),
    a* = argmax_a' Q_θ⁻(s', a')  (DQN)   or   argmax_a' Q_θ(s', a')  (Double DQN),
ℓ the Huber loss (or squared error), θ⁻ the target network: θ⁻ ← τ θ + (1 - τ) θ⁻ every
`target_update` environment steps (τ = 1: a hard copy). Truncated episodes bootstrap (only
`terminated` zeroes the target), as rl/deep/vector.py explains.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fewlabels.checkpoint import model_signature
from fewlabels.rl.deep.agent import DeepAgent
from fewlabels.rl.deep.config import DQNConfig
from fewlabels.rl.deep.nets import QNetwork
from fewlabels.rl.deep.replay import ReplayBuffer


def td_loss(q: Tensor, target: Tensor, kind: str) -> Tensor:
    """Huber: ℓ(δ) = δ²/2 if |δ| ≤ 1 else |δ| - 1/2 (gradients bounded by 1); mse: δ²."""
    return F.smooth_l1_loss(q, target) if kind == "huber" else F.mse_loss(q, target)


class DQNExperiment(DeepAgent):
    def __init__(self, cfg: DQNConfig, device: torch.device):
        super().__init__(cfg, device)
        a = cfg.agent
        self.steps_per_call = a.train_freq * self.num_envs
        self.q = QNetwork(self.obs_shape, self.action_dim, a.hidden).to(device)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=a.lr, fused=device.type == "cpu")
        self._params, self._target_params = list(self.q.parameters()), list(self.target.parameters())
        self.buffer = ReplayBuffer(a.buffer_size, self.obs_shape, torch.uint8 if self.pixels else torch.float32,
                                   device)
        self.rng = np.random.default_rng(cfg.seed)  # ε-greedy draws

    def epsilon(self) -> float:
        """Linear from eps_start to eps_end over the first eps_fraction of the horizon (train.steps), then held."""
        a = self.cfg.agent
        frac = min(1.0, self.env_steps / (a.eps_fraction * self.cfg.train.horizon))
        return a.eps_start + (a.eps_end - a.eps_start) * frac

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        greedy = self.q(self.as_tensor(obs)).argmax(-1).cpu().numpy()
        if deterministic:
            return greedy
        explore = self.rng.random(len(greedy)) < self.epsilon()
        return np.where(explore, self.rng.integers(self.action_dim, size=len(greedy)), greedy)

    def explore_action(self, obs: np.ndarray) -> np.ndarray:
        """ε-greedy; the network is only run when some sub-environment acts greedily."""
        explore = self.rng.random(self.num_envs) < self.epsilon()
        actions = self.rng.integers(self.action_dim, size=self.num_envs)
        if not explore.all():
            with torch.inference_mode():
                greedy = self.q(self.as_tensor(obs)).argmax(-1).cpu().numpy()
            actions = np.where(explore, actions, greedy)
        return actions

    # ---- learning ------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor | float]:
        a = self.cfg.agent
        eps = self.epsilon()
        for _ in range(a.train_freq):
            before = self.env_steps
            actions = self.explore_action(self.obs)
            next_obs, reward, terminated, _, valid = self.step_envs(actions)
            keep = slice(None) if valid.all() else torch.from_numpy(valid)  # NEXT_STEP reset steps out
            self.buffer.add(self.as_tensor(self.obs)[keep], torch.from_numpy(actions)[keep],
                            torch.from_numpy(reward)[keep], self.as_tensor(next_obs)[keep],
                            torch.from_numpy(terminated.astype(np.float32))[keep])
            self.obs = next_obs
            if self.env_steps // a.target_update > before // a.target_update:
                self.update_target()
        logs: dict = {"epsilon": eps, **self.episode_logs()}
        if self.env_steps <= a.learning_starts or self.buffer.size < a.batch_size:
            return logs
        # The target net and the buffer do not change during the phase (the target is synced
        # while acting), so all minibatches and their target-net values come in one go.
        obs, actions, rewards, next_obs, terminated = self.buffer.sample(a.batch_size * a.gradient_steps)
        with torch.no_grad():
            next_q = self.target(next_obs)
            # Plain DQN's targets depend only on the target net: all of them at once. Double DQN
            # picks a* with the online net, which changes every step.
            targets = None if a.double else self.td_target(rewards, terminated, next_q, next_obs)
        total = torch.zeros(2)
        for i in range(a.gradient_steps):
            mb = slice(i * a.batch_size, (i + 1) * a.batch_size)
            y = targets[mb] if targets is not None else self.td_target(rewards[mb], terminated[mb], next_q[mb],
                                                                        next_obs[mb])
            total += self.update(obs[mb], actions[mb], y)
        loss, q_mean = (total / a.gradient_steps).tolist()
        return {**logs, "q_loss": loss, "q_mean": q_mean}

    @torch.no_grad()
    def td_target(self, rewards: Tensor, terminated: Tensor, next_q: Tensor, next_obs: Tensor) -> Tensor:
        """y = r + γ (1 - terminated) Q_θ⁻(s', a*); next_q = Q_θ⁻(s', ·)."""
        a = self.cfg.agent
        if a.double:
            best = self.q(next_obs).argmax(-1, keepdim=True)
            next_value = next_q.gather(-1, best).squeeze(-1)
        else:
            next_value = next_q.max(-1).values
        return rewards + a.gamma * (1.0 - terminated) * next_value

    def update(self, obs: Tensor, actions: Tensor, y: Tensor) -> Tensor:
        """One gradient step of ℓ(Q_θ(s, a) - y) on a minibatch."""
        a = self.cfg.agent
        q = self.q(obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        loss = td_loss(q, y, a.loss)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._params, a.max_grad_norm, foreach=True)
        self.opt.step()
        return torch.stack([loss.detach(), q.detach().mean()])

    @torch.no_grad()
    def update_target(self) -> None:
        tau = self.cfg.agent.tau
        if tau == 1.0:
            torch._foreach_copy_(self._target_params, self._params)
        else:
            torch._foreach_lerp_(self._target_params, self._params, tau)

    # ---- state ---------------------------------------------------------------------------
    def signature(self) -> str:
        return f"{self.cfg.env.id}:dqn:{model_signature(self.q)}"

    def _nets_state(self) -> dict:
        state = {"q": self.q.state_dict(), "target": self.target.state_dict(), "opt": self.opt.state_dict(),
                 "rng": self.rng.bit_generator.state}
        if self.cfg.agent.save_replay:
            state["replay"] = self.buffer.state_dict()
        return state

    def _load_nets_state(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["rng"]
        if "replay" in state:
            self.buffer.load_state_dict(state["replay"])
