"""PUCT tree search guided by a policy-value network (AlphaZero), run on many games at once.

Each simulation walks from the root by

    a* = argmax_a  Q(s, a) + c_puct · P(s, a) · √(Σ_b N(s, b) + 1) / (1 + N(s, a))

to a position not yet expanded, asks the network for (P, v) there, and backs v up the path,
negated at every level (the side to move alternates; a pass is a move). Terminal positions are
scored by the rules instead (1 win, -1 loss, 0 draw, for the side to move). Q of an action not
yet tried is 0. The paper's √ΣN is 0 at a node's first simulation, where every Q is 0 too, so the
first child would be the lowest action index; with √(ΣN + 1) the prior decides it. The root can
be given Dirichlet noise, P ← (1 - ε) P + ε Dir(α), for self-play.

Score utility (off at λ = 0): a simplified form of KataGo's dynamic score utility (Wu 2019,
"Accelerating Self-Play Learning in Go"). With an ownership head the network also gives s, the
expected final margin in points for the side to move (the sum of its predicted owners, minus
komi for Black, plus it for White; the rules' Tromp-Taylor margin at a finished game, a
repetition draw's included). A leaf's value is then

    u = v + λ · (2/π) · atan((s - c) / (0.75 · N))

with c the root's own s (seen from the leaf's side to move), and Q and the backed-up values are
these utilities. Where every line wins or every line loses, v is ±1 for all of them and tells
the moves apart no more; u still prefers the line that keeps more points. KataGo's form differs:
s from a score head (its mean and spread, u the expectation over a normal), c from the search's
recent average shrunk towards 0, a static term centred on 0 beside the dynamic one, and other
weights in self-play than in play.

Batched: one simulation of every game's tree is a batch, so one network call evaluates a leaf
from each game. On a CPU the network call dominates unless it is batched (benchmarks/go_search.py
measures positions per second both ways); `batched=False` evaluates each leaf alone. Games need
not move together (`search_games`): a round's batch holds a new root for a game whose last
search is done and a leaf for each other game, so searches of different sizes share the calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fewlabels.rl.go.rules import Position

# evaluate(positions) -> (priors (B, A) over legal actions, summing to 1; values (B,) for the side to
# move[; with score utility, expected final margins (B,) in points for the side to move])
Evaluator = Callable[[Sequence[Position]], tuple[np.ndarray, ...]]


class Job(NamedTuple):
    """One search of `Search.search_games`: a root position, its simulations, root noise or not."""
    position: Position
    simulations: int
    noise: bool = False


class Node:
    __slots__ = ("position", "colour", "prior", "visits", "value_sum", "children", "legal", "terminal", "margin")

    def __init__(self, position: Position, colour: int):
        self.position, self.colour = position, colour
        self.children: dict[int, Node] = {}
        self.prior = self.visits = self.value_sum = self.legal = None
        # the result for the side to move when the game is over here (1, -1 or 0); None otherwise
        self.terminal = position.winner() * colour if position.over else None
        self.margin: float | None = None  # a finished game's Tromp-Taylor margin for the side to move, once asked

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
                 batched: bool = True, score_utility: float = 0.0):
        self.evaluate, self.simulations, self.c_puct = evaluate, simulations, c_puct
        self.alpha, self.epsilon, self.keep, self.batched = dirichlet_alpha, noise_fraction, history, batched
        self.score_utility = score_utility  # λ; > 0 needs an evaluator that gives margins
        self.evaluated = 0  # positions through the network, for speed figures

    def _evaluate(self, positions: list[Position]) -> tuple[np.ndarray, ...]:
        self.evaluated += len(positions)
        if self.batched or len(positions) <= 1:
            out = self.evaluate(positions)
        else:
            outs = [self.evaluate([p]) for p in positions]
            out = tuple(np.concatenate(part) for part in zip(*outs))
        if self.score_utility and len(out) < 3:
            raise ValueError("score utility needs an evaluator that gives margins (network_evaluator(scores=True))")
        return out

    def _utility(self, value: float, margin: float, node: Node, root: Node, centre: float) -> float:
        """v + λ (2/π) atan((s - c) / (0.75 N)) for the side to move at `node`; c is the root's
        expected margin, negated when the other side is to move at `node`."""
        if not self.score_utility:
            return value
        c = centre if node.colour == root.colour else -centre
        scale = 0.75 * node.position.rules.size
        return value + self.score_utility * (2 / math.pi) * math.atan((margin - c) / scale)

    def run(self, positions: Sequence[Position]) -> list[Node]:
        """Search every position (a finished one is refused) with the search's budget and no root noise;
        returns the roots, whose `visits` are the search's policy (π ∝ N(s, a)) and
        `value_sum / visits` its action values (utilities, with score utility)."""
        roots: list[Node] = [None] * len(positions)

        def settle(g: int, root: Node) -> None:
            roots[g] = root

        self.search_games([Job(p, self.simulations) for p in positions], settle)
        return roots

    def search_games(self, jobs: Sequence[Job | None], settle: Callable[[int, Node], Job | None],
                     rng: np.random.Generator | None = None) -> None:
        """Search many games' moves at once, each game at its own pace. Every round is one
        network call holding, for each game, either its next root or one leaf of its tree. When
        game g's root has had its `simulations`, `settle(g, root)` plays its move and returns
        the game's next search (a Job), or None when the game is done. With one budget for all,
        this is the lockstep of `run`; with a fast search beside a full one (playout-cap
        randomisation), the fast game moves on while the other still searches. A finished game
        has no move to search: a Job for one is refused (ValueError)."""
        jobs = [_unfinished(job) for job in jobs]
        roots: list[Node | None] = [None] * len(jobs)
        done = [0] * len(jobs)  # simulations of each game's current root
        centres = np.zeros(len(jobs))  # each root's expected margin (score utility)
        while any(job is not None for job in jobs):
            batch, items = [], []  # positions to evaluate; (game, path, leaf), path None for a new root
            for g, job in enumerate(jobs):
                if job is None:
                    continue
                root = roots[g]
                if root is None:
                    batch.append(job.position)
                    items.append((g, None, None))
                    continue
                path, node = [], root
                while node.expanded and node.terminal is None:
                    action = node.select(self.c_puct)
                    path.append((node, action))
                    node = node.child(action, self.keep)
                if node.terminal is not None:
                    if self.score_utility and node.margin is None:
                        node.margin = node.position.score() * node.colour
                    self._backup(path, self._utility(float(node.terminal), node.margin or 0.0, node, root, centres[g]))
                    done[g] += 1
                else:
                    batch.append(node.position)
                    items.append((g, path, node))
            if batch:
                out = self._evaluate(batch)
                margins = out[2] if self.score_utility else np.zeros(len(batch))
                for (g, path, leaf), prior, value, margin in zip(items, out[0], out[1], margins, strict=True):
                    if path is None:  # a new root
                        roots[g] = root = Node(jobs[g].position, jobs[g].position.to_play)
                        centres[g] = margin
                        root.expand(self._noised(root, prior, rng) if jobs[g].noise else prior)
                    else:
                        leaf.expand(prior)
                        self._backup(path, self._utility(float(value), float(margin), leaf, roots[g], centres[g]))
                        done[g] += 1
            for g, root in enumerate(roots):
                if root is not None and done[g] >= jobs[g].simulations:
                    jobs[g], roots[g], done[g] = _unfinished(settle(g, root)), None, 0

    def _noised(self, root: Node, prior: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """(1 - ε) P + ε Dir(α) over the legal actions."""
        legal = root.position.legal_mask()
        eta = np.zeros_like(prior)
        eta[legal] = (rng or np.random.default_rng()).dirichlet([self.alpha] * int(legal.sum()))
        return (1 - self.epsilon) * prior + self.epsilon * eta

    @staticmethod
    def _backup(path: list[tuple[Node, int]], value: float) -> None:
        """`value` is for the side to move at the leaf; each parent sees its negation."""
        for node, action in reversed(path):
            value = -value
            node.visits[action] += 1.0
            node.value_sum[action] += value


def _unfinished(job: Job | None) -> Job | None:
    if job is not None and job.position.over:
        raise ValueError(f"a search of a finished game (after {len(job.position.history)} moves): it has no move "
                         "to search; give None for a game that is over")
    return job


def network_evaluator(net, history: int, device="cpu", scores: bool = False, komi: bool = False) -> Evaluator:
    """evaluate() of a PolicyValueNet: planes in (`komi`: with the komi plane), masked softmax
    priors and values out (eval mode);
    with `scores` (a network with an ownership head) also each position's expected final margin
    for the side to move: Σ ô - komi for Black, Σ ô + komi for White (ô from the side to move)."""
    import torch

    from fewlabels.rl.go.env import planes

    def evaluate(positions: Sequence[Position]) -> tuple[np.ndarray, ...]:
        x = torch.from_numpy(np.stack([planes(p, history, komi) for p in positions])).to(device)
        mask = torch.from_numpy(np.stack([p.legal_mask() for p in positions])).to(device)
        was_training = net.training
        if was_training:  # (switching modes walks every module: only when needed)
            net.eval()
        if scores and getattr(net, "ownership", None) is None:
            raise ValueError("margins come from the ownership head, which this network does not have")
        with torch.inference_mode():
            logits, value, owner = net.heads(x, ownership=scores)
            prior = torch.softmax(logits.float().masked_fill(~mask, float("-inf")), -1)
        if was_training:
            net.train()
        out = prior.nan_to_num(0.0).cpu().numpy().astype(np.float64), value.float().cpu().numpy()
        if not scores:
            return out
        given = np.array([p.rules.komi * p.to_play for p in positions])  # to_play: 1 Black, -1 White
        return (*out, owner.float().sum(1).cpu().numpy().astype(np.float64) - given)
    return evaluate


def network_search(net, history: int, simulations: int, c_puct: float = 1.5, score_utility: float = 0.0,
                   device="cpu", komi: bool = False, **options) -> Search:
    """A Search guided by `net` (network_evaluator; `komi`: a network with the komi plane), which
    asks the ownership head for margins only where the score utility needs them; `options`:
    Search's noise and batching arguments."""
    return Search(network_evaluator(net, history, device, scores=score_utility > 0, komi=komi), simulations, c_puct,
                  history=history, score_utility=score_utility, **options)
