"""PUCT tree search guided by a policy-value network (AlphaZero), run on many games at once.

Each simulation walks from the root by

    a* = argmax_a  Q(s, a) + c_puct · P(s, a) · √(Σ_b N(s, b) + 1) / (1 + N(s, a))

to a position not yet expanded, asks the network for (P, v) there, and backs v up the path,
negated at every level (the side to move alternates; a pass is a move). Terminal positions are
scored by the rules instead (1 win, -1 loss, 0 draw, for the side to move). Q of an action not
yet tried is 0. The paper's √ΣN is 0 at a node's first simulation, where every Q is 0 too, so the
first child would be the lowest action index; with √(ΣN + 1) the prior decides it. The root can
be given Dirichlet noise, P ← (1 - ε) P + ε Dir(α), for self-play.

Batched: one simulation of every game's tree is a batch, so one network call evaluates a leaf
from each game. On a CPU the network call dominates unless it is batched (benchmarks/go_search.py
measures positions per second both ways); `batched=False` evaluates each leaf alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from fewlabels.rl.go.rules import Position

# evaluate(positions) -> (priors (B, A) over legal actions, summing to 1; values (B,) for the side to move)
Evaluator = Callable[[Sequence[Position]], tuple[np.ndarray, np.ndarray]]


class Node:
    __slots__ = ("position", "colour", "prior", "visits", "value_sum", "children", "legal", "terminal")

    def __init__(self, position: Position, colour: int):
        self.position, self.colour = position, colour
        self.children: dict[int, Node] = {}
        self.prior = self.visits = self.value_sum = self.legal = None
        # the result for the side to move when the game is over here (1, -1 or 0); None otherwise
        self.terminal = position.winner() * colour if position.over else None

    @property
    def expanded(self) -> bool:
        return self.prior is not None

    def expand(self, prior: np.ndarray) -> None:
        self.legal = self.position.legal_mask()
        self.prior = np.where(self.legal, prior, 0.0)
        self.visits = np.zeros(len(prior), np.float64)
        self.value_sum = np.zeros(len(prior), np.float64)

    def select(self, c_puct: float) -> int:
        q = self.value_sum / np.maximum(self.visits, 1.0)
        u = q + c_puct * self.prior * math.sqrt(self.visits.sum() + 1.0) / (1.0 + self.visits)
        u[~self.legal] = -np.inf
        return int(np.argmax(u))

    def child(self, action: int, keep: int) -> Node:
        node = self.children.get(action)
        if node is None:
            node = self.children[action] = Node(self.position.after(action, keep), -self.colour)
        return node


class Search:
    def __init__(self, evaluate: Evaluator, simulations: int = 64, c_puct: float = 1.5,
                 dirichlet_alpha: float = 0.3, noise_fraction: float = 0.25, history: int = 3,
                 batched: bool = True):
        self.evaluate, self.simulations, self.c_puct = evaluate, simulations, c_puct
        self.alpha, self.epsilon, self.keep, self.batched = dirichlet_alpha, noise_fraction, history, batched
        self.evaluated = 0  # positions through the network, for speed figures

    def _evaluate(self, positions: list[Position]) -> tuple[np.ndarray, np.ndarray]:
        self.evaluated += len(positions)
        if self.batched or len(positions) <= 1:
            return self.evaluate(positions)
        outs = [self.evaluate([p]) for p in positions]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def run(self, positions: Sequence[Position], noise: bool = False,
            rng: np.random.Generator | None = None) -> list[Node]:
        """Search every (not finished) position; returns the roots, whose `visits` are the
        search's policy (π ∝ N(s, a)) and `value_sum / visits` its action values."""
        roots = [Node(p, p.to_play) for p in positions]
        priors, _ = self._evaluate([r.position for r in roots])
        for root, prior in zip(roots, priors):
            if noise:
                legal = root.position.legal_mask()
                eta = np.zeros_like(prior)
                eta[legal] = (rng or np.random.default_rng()).dirichlet([self.alpha] * int(legal.sum()))
                prior = (1 - self.epsilon) * prior + self.epsilon * eta
            root.expand(prior)
        for _ in range(self.simulations):
            paths, leaves = [], []
            for root in roots:
                path, node = [], root
                while node.expanded and node.terminal is None:
                    action = node.select(self.c_puct)
                    path.append((node, action))
                    node = node.child(action, self.keep)
                if node.terminal is not None:
                    self._backup(path, float(node.terminal))
                else:
                    paths.append(path)
                    leaves.append(node)
            if not leaves:
                continue
            priors, values = self._evaluate([n.position for n in leaves])
            for path, leaf, prior, value in zip(paths, leaves, priors, values):
                leaf.expand(prior)
                self._backup(path, float(value))
        return roots

    @staticmethod
    def _backup(path: list[tuple[Node, int]], value: float) -> None:
        """`value` is for the side to move at the leaf; each parent sees its negation."""
        for node, action in reversed(path):
            value = -value
            node.visits[action] += 1.0
            node.value_sum[action] += value


def network_evaluator(net, history: int, device="cpu") -> Evaluator:
    """evaluate() of a PolicyValueNet: planes in, masked softmax priors and values out (eval mode)."""
    import torch

    from fewlabels.rl.go.env import planes

    def evaluate(positions: Sequence[Position]) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.stack([planes(p, history) for p in positions])).to(device)
        mask = torch.from_numpy(np.stack([p.legal_mask() for p in positions])).to(device)
        was_training = net.training
        if was_training:  # (switching modes walks every module: only when needed)
            net.eval()
        with torch.inference_mode():
            logits, value = net(x)
            prior = torch.softmax(logits.float().masked_fill(~mask, float("-inf")), -1)
        if was_training:
            net.train()
        return prior.nan_to_num(0.0).cpu().numpy().astype(np.float64), value.float().cpu().numpy()
    return evaluate
