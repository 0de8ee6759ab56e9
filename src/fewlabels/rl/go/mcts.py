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

Gumbel AlphaZero (off unless `gumbel_actions` m > 0; Danihelka et al. 2022, "Policy improvement
by planning with Gumbel"): with few simulations a visit count says little, and AlphaZero's π ∝ N
need not improve on the prior. At the root, m actions are drawn without replacement by the
Gumbel-top-k trick (g(a) ~ Gumbel(0, 1) for a search with noise, g = 0 without; no Dirichlet
noise), and Sequential Halving spends the simulations on them: in ⌈log2 m⌉ phases of about
n / (⌈log2 m⌉ · k) visits for each of the k actions left, keeping the better half by
g(a) + logit(a) + σ(q̂(a)) after each. Its winner (the best of the most visited) is the move,
and the policy target is

    π' = softmax(logit + σ(q̂)),   σ(q̂) = (c_visit + max_b N(b)) · c_scale · q̂,

with q̂ the completed Q-values: Q(a) where N(a) > 0, else the mixed value
v_mix = (v̂ + ΣN · Σ_{N(b)>0} P(b) Q(b) / Σ_{N(b)>0} P(b)) / (1 + ΣN), v̂ the network's value of
the node; min-max rescaled to [0, 1] over the legal moves and v_mix. Below the root each
simulation takes argmax_a π'(a) - N(a) / (1 + ΣN), the improved policy's most under-visited
action. c_visit 50, c_scale 0.1 (DeepMind's mctx library's defaults). With score utility every Q
and v̂ is a utility.

Batched: one simulation of every game's tree is a batch, so one network call evaluates a leaf
from each game. On a CPU the network call dominates unless it is batched (benchmarks/go_search.py
measures positions per second both ways); `batched=False` evaluates each leaf alone. Games need
not move together (`search_games`): a round's batch holds a new root for a game whose last
search is done and a leaf for each other game, so searches of different sizes share the calls.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fewlabels.rl.go.rules import Position

# evaluate(positions) -> (priors (B, A) over legal actions, summing to 1; values (B,) for the side to
# move[; with score utility, expected final margins (B,) in points for the side to move])
Evaluator = Callable[[Sequence[Position]], tuple[np.ndarray, ...]]
C_VISIT, C_SCALE = 50.0, 0.1  # Gumbel AlphaZero's σ(q̂) = (c_visit + max N) · c_scale · q̂
TINY = np.finfo(np.float64).tiny


class Job(NamedTuple):
    """One search of `Search.search_games`: a root position, its simulations, root noise or not."""
    position: Position
    simulations: int
    noise: bool = False


class Node:
    __slots__ = ("position", "colour", "prior", "visits", "value_sum", "children", "legal", "terminal", "margin",
                 "value", "logits", "gumbel", "legal_stats", "gumbel_order")

    def __init__(self, position: Position, colour: int):
        self.position, self.colour = position, colour
        self.children: dict[int, Node] = {}
        self.prior = self.visits = self.value_sum = self.legal = None
        # the result for the side to move when the game is over here (1, -1 or 0); None otherwise
        self.terminal = position.winner() * colour if position.over else None
        self.margin: float | None = None  # a finished game's Tromp-Taylor margin for the side to move, once asked
        self.value: float | None = None  # the network's value (utility) here, for the side to move, once expanded
        self.logits: np.ndarray | None = None  # log prior, -inf where illegal (Gumbel AlphaZero; on first use)
        self.gumbel: np.ndarray | None = None  # a Gumbel search's root: its g(a)
        self.legal_stats: tuple[list[int], float] | None = None  # (legal moves by prior, Σ max(P, tiny)), once used
        self.gumbel_order: list[int] | None = None  # a Gumbel root's legal moves by g + logit, once used

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
                 batched: bool = True, score_utility: float = 0.0, gumbel_actions: int = 0):
        self.evaluate, self.simulations, self.c_puct = evaluate, simulations, c_puct
        self.alpha, self.epsilon, self.keep, self.batched = dirichlet_alpha, noise_fraction, history, batched
        self.score_utility = score_utility  # λ; > 0 needs an evaluator that gives margins
        self.gumbel_actions = gumbel_actions  # m > 0: Gumbel AlphaZero's root with m considered actions; 0: PUCT
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
        returns the roots, whose `visits` are PUCT's policy (π ∝ N(s, a); `policy(root)` is the
        search's, Gumbel's too) and `value_sum / visits` its action values (utilities, with score utility)."""
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
                    if not self.gumbel_actions:
                        action = node.select(self.c_puct)
                    elif node is root:
                        action = self._root_action(root, job.simulations)
                    else:
                        action = self._interior_action(node)
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
                        centres[g], root.value = margin, float(value)  # (its utility: the centre is its own margin)
                        if not self.gumbel_actions:
                            root.expand(self._noised(root, prior, rng) if jobs[g].noise else prior)
                        else:
                            root.expand(prior)
                            root.gumbel = ((rng or np.random.default_rng()).gumbel(size=len(prior)) if jobs[g].noise
                                           else np.zeros(len(prior)))
                    else:
                        leaf.expand(prior)
                        leaf.value = self._utility(float(value), float(margin), leaf, roots[g], centres[g])
                        self._backup(path, leaf.value)
                        done[g] += 1
            for g, root in enumerate(roots):
                if root is not None and done[g] >= jobs[g].simulations:
                    jobs[g], roots[g], done[g] = _unfinished(settle(g, root)), None, 0

    # ---- what a finished search says ----------------------------------------------------------------
    def policy(self, root: Node) -> np.ndarray:
        """The search's policy at a searched root, the training target: N / ΣN (PUCT), or Gumbel
        AlphaZero's improved policy softmax(logit + σ(q̂))."""
        if not self.gumbel_actions:
            return root.visits / root.visits.sum()
        return _softmax(_logits(root) + _sigma_completed_q(root))

    def best(self, root: Node) -> int:
        """The move of a searched root: the most visited (PUCT), or of the most visited the best by
        g + logit + σ(q̂) (Gumbel AlphaZero: Sequential Halving's winner)."""
        if not self.gumbel_actions:
            return int(np.argmax(root.visits))
        return _considered_best(root, root.visits.max())

    # ---- Gumbel AlphaZero's action selection ----------------------------------------------------------
    def _root_action(self, root: Node, simulations: int) -> int:
        """Sequential Halving: the next simulation goes to the best considered move, by g + logit +
        σ(q̂), among those with the visit count this simulation's phase has reached
        (`_considered_best` over the board; here over the candidates only, a test compares them)."""
        m = min(self.gumbel_actions, len((root.legal_stats or _legal_stats(root))[0]))
        return _considered_best_fast(root, considered_visits(m, simulations)[int(root.visits.sum())])

    @staticmethod
    def _interior_action(node: Node) -> int:
        """argmax_a π'(a) - N(a) / (1 + ΣN), π' the improved policy. Every unvisited move has the
        same completed Q (the mixed value), so there π' ∝ P and only the unvisited legal move of
        largest prior can win; the rest is a loop over the visited moves, few below the root. The
        same choice as softmax(logit + σ(q̂)) over the board (a test compares them) in plain
        Python floats: with whole-board arrays this took 4× PUCT's selection."""
        order, legal_prior = node.legal_stats or _legal_stats(node)
        if not node.visits.any():  # π' is the prior
            return order[0]
        seen, ns, ps, qs, n, mixed, unvisited, high, slope = _completed(node)
        weights = [p * math.exp(slope * (q - high)) for p, q in zip(ps, qs)]  # π' × its normaliser
        rest = math.exp(slope * (mixed - high)) if unvisited else 0.0  # an unvisited move's, per unit of P
        p_seen = sum(ps)
        total = sum(weights) + rest * (legal_prior - p_seen)
        action, score = -1, -math.inf
        for a, w, count in zip(seen, weights, ns):  # (seen is in index order: ties go to the lower index)
            if w / total - count / (1.0 + n) > score:
                action, score = a, w / total - count / (1.0 + n)
        if unvisited:
            visited = set(seen)
            other = next(a for a in order if a not in visited)
            other_score = rest * max(float(node.prior[other]), TINY) / total
            if other_score > score or (other_score == score and other < action):
                action = other
        return action

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


@functools.lru_cache(maxsize=64)
def considered_visits(m: int, simulations: int) -> tuple[int, ...]:
    """Sequential Halving's schedule for m considered actions: for each simulation, the visit count
    an action must have to be given it. Phases of max(1, ⌊n / (⌈log2 m⌉ · k)⌋) rounds, a round
    one visit to each of the k actions left, then k halves (to no fewer than 2); the schedule is
    cut at n simulations. With m = 1 the one action gets them all."""
    if m <= 1:
        return tuple(range(simulations))
    phases, k, reached, schedule = math.ceil(math.log2(m)), m, 0, []
    while len(schedule) < simulations:
        for _ in range(max(1, simulations // (phases * k))):
            schedule += [reached] * k
            reached += 1
        k = max(2, k // 2)
    return tuple(schedule[:simulations])


def _legal_stats(node: Node) -> tuple[list[int], float]:
    """Cached on the node: its legal moves by prior, largest first (ties: lower index first), and
    Σ max(P, tiny) over them."""
    legal = np.flatnonzero(node.legal)
    order = legal[np.argsort(-node.prior[legal], kind="stable")].tolist()
    node.legal_stats = order, float(np.maximum(node.prior[legal], TINY).sum())
    return node.legal_stats


def _completed(node: Node) -> tuple:
    """The completed Q of a node with visits, in floats over its visited moves: those moves (index
    order), their N, max(P, tiny) and Q; ΣN; the mixed value; whether a legal move is unvisited;
    the highest completed Q, and σ's slope: σ(q̂(a)) = slope · (Q(a) - high) + a constant."""
    seen = np.flatnonzero(node.visits).tolist()
    ns = node.visits[seen].tolist()
    ps = [max(p, TINY) for p in node.prior[seen].tolist()]
    qs = [total / count for total, count in zip(node.value_sum[seen].tolist(), ns)]
    n = sum(ns)
    mixed = (node.value + n * sum(p * q for p, q in zip(ps, qs)) / sum(ps)) / (1.0 + n)
    unvisited = len(seen) < len((node.legal_stats or _legal_stats(node))[0])
    high = max(*qs, mixed)  # (the mixed value in the range even where every move was visited: mctx's)
    slope = (C_VISIT + max(ns)) * C_SCALE / max(high - min(*qs, mixed), 1e-8)
    return seen, ns, ps, qs, n, mixed, unvisited, high, slope


def _logits(node: Node) -> np.ndarray:
    if node.logits is None:
        node.logits = np.where(node.legal, np.log(np.maximum(node.prior, TINY)), -np.inf)
    return node.logits


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _sigma_completed_q(node: Node) -> np.ndarray:
    """σ(q̂) = (c_visit + max N) · c_scale · q̂: Q where visited, else the mixed value, min-max
    rescaled over the legal moves and the mixed value. The mixed value stays in the range even
    where every legal move was visited, as in mctx, whose illegal moves (there on any board with
    a stone) are completed by it; illegal moves' logits are -inf here."""
    visited, n = node.visits > 0, node.visits.sum()
    q = node.value_sum / np.maximum(node.visits, 1.0)
    if n > 0:
        weights = np.where(visited, np.maximum(node.prior, TINY), 0.0)
        mixed = (node.value + n * float(weights @ q) / weights.sum()) / (1.0 + n)
    else:
        mixed = node.value
    q = np.where(visited, q, mixed)
    low, high = min(q[node.legal].min(), mixed), max(q[node.legal].max(), mixed)
    return (C_VISIT + node.visits.max()) * C_SCALE * (q - low) / max(high - low, 1e-8)


def _considered_best(root: Node, visits: float) -> int:
    """Of the legal actions with `visits` visits, the best by g + logit + σ(q̂)."""
    score = root.gumbel + _logits(root) + _sigma_completed_q(root)
    score[(root.visits != visits) | ~root.legal] = -np.inf
    return int(np.argmax(score))


def _considered_best_fast(root: Node, visits: int) -> int:
    """`_considered_best` over the candidates only, in floats: with no visits every candidate has
    the mixed value, so the first untried move by g + logit; otherwise a loop over the visited."""
    if visits == 0:
        if root.gumbel_order is None:
            score = root.gumbel + _logits(root)
            legal = np.flatnonzero(root.legal)
            root.gumbel_order = legal[np.argsort(-score[legal], kind="stable")].tolist()
        return next(a for a in root.gumbel_order if root.visits[a] == 0)
    seen, ns, _, qs, _, _, _, high, slope = _completed(root)
    logits, action, best = _logits(root), -1, -math.inf
    for a, count, q in zip(seen, ns, qs):  # (index order: ties go to the lower index)
        if count == visits and root.gumbel[a] + logits[a] + slope * (q - high) > best:
            action, best = a, root.gumbel[a] + logits[a] + slope * (q - high)
    return action


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
