"""Networks for deep RL: an MLP for vector observations, the Nature CNN for stacked frames, a
Q-network, and an actor-critic with a categorical or Gaussian policy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class _Tanh(torch.autograd.Function):
    """tanh(x) = 2 σ(2x) - 1, one autograd node. Measured with torch 2.13's CPU build here:
    torch.tanh on a 256x64 batch took ~50 µs against ~4 µs for torch.sigmoid, and tanh is half
    of the ops of a PPO update on CartPole."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y²)


def tanh(x: Tensor) -> Tensor:
    if x.device.type != "cpu" or x.numel() < 2048:  # small batches (acting): the kernel's cost is noise
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


ACTIVATIONS = {"tanh": tanh, "relu": torch.relu}


class MLP(nn.Module):
    """Linear layers with `activation` between them (none after the last), called as functions:
    on networks this small, nn.Module call overhead per layer is a visible share of a step.
    With `out_gain` set, orthogonal initialisation as in PPO implementations (gain √2 inside,
    out_gain at the end); otherwise PyTorch's default."""

    def __init__(self, sizes: list[int], activation: str = "tanh", out_gain: float | None = None):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation
        if out_gain is not None:
            for i, m in enumerate(self.layers):
                nn.init.orthogonal_(m.weight, out_gain if i == len(self.layers) - 1 else math.sqrt(2))
                nn.init.zeros_(m.bias)
        # The parameters themselves (module.to() and load_state_dict update them in place), so a
        # forward pass does not go through nn.Module attribute lookups.
        self.weights = [(m.weight, m.bias) for m in self.layers]

    def forward(self, x: Tensor) -> Tensor:
        act, last = ACTIVATIONS[self.activation], len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            x = F.linear(x, w, b)
            if i < last:
                x = act(x)
        return x


def mlp(sizes: list[int], activation: str = "tanh", out_gain: float | None = None) -> MLP:
    return MLP(sizes, activation, out_gain)


class NatureCNN(nn.Module):
    """Mnih et al. (2015): 4x84x84 uint8 frames -> 512 features. Frames are scaled to [0, 1]
    here, so the replay buffer and rollouts keep uint8 (4x less memory than float32)."""

    def __init__(self, channels: int = 4, features: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, features), nn.ReLU())
        self.features = features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float() / 255.0)


def is_pixels(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


class QNetwork(nn.Module):
    """Q(s, ·) for every discrete action at once."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, hidden: list[int], activation: str = "relu"):
        super().__init__()
        if is_pixels(obs_shape):
            cnn = NatureCNN(obs_shape[0])
            self.net = nn.Sequential(cnn, nn.Linear(cnn.features, n_actions))
        else:
            self.net = mlp([obs_shape[0], *hidden, n_actions], activation)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


class ActorCritic(nn.Module):
    """π(a | s) and V(s). Vector observations get two separate MLPs (as SB3 and CleanRL do);
    pixels share one Nature CNN trunk. Discrete actions: a categorical over logits; Box actions:
    a diagonal Gaussian with a state-independent log σ."""

    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, discrete: bool, hidden: list[int],
                 activation: str = "tanh", log_std_init: float = 0.0, ortho_init: bool = True):
        super().__init__()
        self.discrete = discrete
        if is_pixels(obs_shape):
            self.trunk = NatureCNN(obs_shape[0])
            self.actor = mlp([self.trunk.features, action_dim], out_gain=0.01)
            self.critic = mlp([self.trunk.features, 1], out_gain=1.0)
        else:
            self.trunk = nn.Identity()
            self.actor = mlp([obs_shape[0], *hidden, action_dim], activation, out_gain=0.01 if ortho_init else None)
            self.critic = mlp([obs_shape[0], *hidden, 1], activation, out_gain=1.0 if ortho_init else None)
        self.log_std = None if discrete else nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    # The distributions are written out (not torch.distributions objects): on a 64-unit MLP the
    # objects' bookkeeping cost as much as the network.
    def _head(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(obs)
        return self.actor(h), self.critic(h).squeeze(-1)

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log π(a|s), entropy of π(·|s), V(s)) for a batch."""
        out, value = self._head(obs)
        if self.discrete:
            logp_all = out.log_softmax(-1)
            logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp, entropy, value
        log_std = self.log_std.expand_as(out)
        logp = (-0.5 * ((actions - out) / log_std.exp()) ** 2 - log_std - HALF_LOG_2PI).sum(-1)
        entropy = (0.5 + HALF_LOG_2PI + log_std).sum(-1)
        return logp, entropy, value

    @torch.no_grad()
    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(a ~ π(·|s), log π(a|s), V(s)) for acting in rollouts."""
        out, value = self._head(obs)
        if self.discrete:
            logp_all = out.log_softmax(-1)
            # Inverse CDF: the first action whose cumulative probability exceeds u ~ U(0, 1)
            # (same law as torch.multinomial, a third of its cost for a few rows).
            u = torch.rand(out.shape[0], 1, device=out.device)
            action = (logp_all.exp().cumsum(-1) < u).sum(-1).clamp_(max=out.shape[-1] - 1)
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), value
        std = self.log_std.exp()
        action = out + std * torch.randn_like(out)
        logp = (-0.5 * ((action - out) / std) ** 2 - self.log_std - HALF_LOG_2PI).sum(-1)
        return action, logp, value

    def value(self, obs: Tensor) -> Tensor:
        return self.critic(self.trunk(obs)).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        if not deterministic:
            return self.sample(obs)[0]
        out = self.actor(self.trunk(obs))
        return out.argmax(-1) if self.discrete else out
