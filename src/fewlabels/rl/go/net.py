"""The policy-value network of AlphaZero (Silver et al. 2017/2018), small: a convolutional stem,
residual blocks, and two heads on the same trunk:

    p = softmax(policy(trunk(s)))   over the N² + 1 actions (illegal ones masked by the caller)
    v = tanh(value(trunk(s)))       the expected result for the side to move, in [-1, 1]

and, where asked (`ownership=True`), a third, auxiliary head after KataGo (Wu 2019): a 1x1
convolution of the trunk to one plane, o = tanh(·) of (N, N), the predicted final owner of every
point for the side to move (1 theirs, -1 the opponent's). As a training target it gives N²
signals a position where the game's result gives one; play reads it only for the search's score
utility (mcts.py), as the expected margin.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fewlabels import distributed


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Batch norm (AlphaZero's; over the global batch under torchrun, torch's otherwise), or none:
    PPO compares π(a|s) of the network that acted with the one that learns, and batch norm makes
    those two differ (running vs batch statistics)."""
    return distributed.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "batch"):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn1 = norm_layer(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn2 = norm_layer(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class PolicyValueNet(nn.Module):
    def __init__(self, in_planes: int, size: int, channels: int = 32, blocks: int = 3, value_hidden: int = 64,
                 norm: str = "batch", ownership: bool = False):
        super().__init__()
        self.size = size
        bias = norm == "none"
        self.stem = nn.Sequential(nn.Conv2d(in_planes, channels, 3, padding=1, bias=bias),
                                  norm_layer(norm, channels), nn.ReLU())
        self.trunk = nn.Sequential(*[ResidualBlock(channels, norm) for _ in range(blocks)])
        self.policy_conv = nn.Sequential(nn.Conv2d(channels, 2, 1, bias=bias), norm_layer(norm, 2), nn.ReLU())
        self.policy_fc = nn.Linear(2 * size * size, size * size + 1)
        self.value_conv = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=bias), norm_layer(norm, 1), nn.ReLU())
        self.value_fc = nn.Sequential(nn.Linear(size * size, value_hidden), nn.ReLU(), nn.Linear(value_hidden, 1))
        self.ownership = nn.Conv2d(channels, 1, 1) if ownership else None
        # Channels-last convolutions: 1.5x faster for 48x4 on 7x7 at batch 64 on one CPU core
        # (35 -> 24 ms); the search's network calls are most of self-play's time.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy logits (B, N² + 1), value (B,) in [-1, 1])."""
        return self.heads(x, ownership=False)[:2]

    def heads(self, x: torch.Tensor, ownership: bool = True):
        """(policy logits, value, ownership (B, N²) in [-1, 1] or None without that head)."""
        h = self.trunk(self.stem(x.contiguous(memory_format=torch.channels_last)))
        logits = self.policy_fc(self.policy_conv(h).flatten(1))
        value = torch.tanh(self.value_fc(self.value_conv(h).flatten(1))).squeeze(1)
        owner = torch.tanh(self.ownership(h).flatten(1)) if ownership and self.ownership is not None else None
        return logits, value, owner


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log π(a|s) over the legal actions only (mask True), -inf elsewhere."""
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
