"""AlphaZero-style self-play on small boards (Silver et al. 2018), as one experiment of the loop.

One `train_step` is one iteration:
1. play `parallel_games` games against itself, every move chosen by PUCT search (mcts.py; or
   Gumbel AlphaZero's, below) with Dirichlet noise at the root; the first `temperature_moves`
   moves are sampled ∝ the visit counts N(s, ·), later ones take the most visited action (with
   `score_utility` λ > 0 the search
   adds KataGo's score term to its values: mcts.py). With playout-cap randomisation
   (`full_search_fraction` p < 1, KataGo's) a move is a full search only with probability p, else
   a fast one of `fast_simulations` without noise that plays its most visited move; games move at
   their own pace (`Search.search_games`), so fast moves give more moves, and games, for the same
   network calls while the policy targets keep the full search. With `komi_spread` > 0 (KataGo's
   komi randomisation; the network sees the komi in an input plane, `net.komi_plane`) each game
   has its own komi around the run's. With `gumbel_actions` m > 0 the search is Gumbel AlphaZero's
   (mcts.py): Gumbel noise at the root instead of Dirichlet, Sequential Halving's winner as the
   move after the temperature moves (which are still sampled ∝ N, as DeepMind trained Go), and
   its improved policy π' as the target instead of N / ΣN;
2. store every (full-search) position s with its search policy π = N(s, ·) / Σ N (or π') and the game's result z for
   the side to move there (+1 win, -1 loss, 0 for OpenSpiel's repetition draw);
3. take gradient steps on minibatches from the replay buffer (each position in one of the
   board's 8 symmetries), minimising

       l = (z - v)² - π · log p      (the paper's + c‖θ‖² is AdamW's decoupled weight decay here,
                                       on every weight, batch norm's included)

   and, with `ownership_weight` w > 0 (KataGo's auxiliary target), + w · mean_points (o - ô)²,
   o the final owner of every point (Tromp-Taylor, for the side to move), ô the ownership head's.

`train.steps` counts self-play games. Resume is bitwise: an iteration is whole (games start and
end inside it) and the replay buffer and every random stream are in the checkpoint.

Under torchrun each rank plays its share of `parallel_games` (its own random stream), keeps its
own replay buffer (its share of `buffer_positions`), samples its share of `batch_size`, and the
gradients are averaged (batch norm over the global batch); every rank takes the same number of
gradient steps, counted from all ranks' new positions. The checkpoint is rank 0's, with rank 0's
buffer: resumed under N processes its positions are dealt out among the ranks.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
from torch.nn import functional as F

from fewlabels.distributed import all_gather, average_gradients, per_rank, rank, world_size
from fewlabels.rl.go.agent import GoAgent
from fewlabels.rl.go.env import input_planes, planes
from fewlabels.rl.go.mcts import Job, network_search
from fewlabels.rl.go.rules import Rules, ownership


class ReplayBuffer:
    """The last `capacity` positions: planes (0/1, stored as uint8), π, z, the final owner of every
    point for the side to move (int8, N²; kept only with an ownership head) and, with `komi` (the
    planes' last is the komi plane, constant over the board), that plane's value (float32)."""

    def __init__(self, capacity: int, shape: tuple[int, ...], actions: int, ownership: bool = False,
                 komi: bool = False):
        self.obs = np.zeros((capacity, shape[0] - komi, *shape[1:]), np.uint8)
        self.pi = np.zeros((capacity, actions), np.float32)
        self.z = np.zeros(capacity, np.float32)
        self.own = np.zeros((capacity, actions - 1) if ownership else (0,), np.int8)
        self.komi = np.zeros(capacity if komi else 0, np.float32)
        self.keys = ("obs", "pi", "z") + ("own",) * ownership + ("komi",) * komi
        self.size = self.next = 0

    def add(self, obs: np.ndarray, pi: np.ndarray, z: np.ndarray, own: np.ndarray) -> None:
        """Positions as `self_play` returns them (its ownership is dropped unless kept)."""
        cap, n = len(self.z), len(z)
        if n > cap:  # only the newest `cap` fit
            obs, pi, z, own = obs[-cap:], pi[-cap:], z[-cap:], own[-cap:]
            self.next, n = (self.next + n - cap) % cap, cap
        at = (self.next + np.arange(n)) % cap
        self.obs[at], self.pi[at], self.z[at] = obs[:, :self.obs.shape[1]], pi, z
        if "own" in self.keys:
            self.own[at] = own
        if "komi" in self.keys:
            self.komi[at] = obs[:, -1, 0, 0]
        self.next, self.size = (self.next + n) % cap, min(self.size + n, cap)

    def planes(self, idx: np.ndarray) -> np.ndarray:
        """The stored positions' planes (float32), the komi plane rebuilt where there is one."""
        x = self.obs[idx].astype(np.float32)
        if "komi" not in self.keys:
            return x
        plane = np.broadcast_to(self.komi[idx][:, None, None, None], (len(idx), 1, *x.shape[2:]))
        return np.concatenate([x, plane], 1)

    def state_dict(self) -> dict:
        return {**{k: getattr(self, k)[: self.size] for k in self.keys}, "next": self.next}

    def load_state_dict(self, state: dict) -> None:
        n = len(state["z"])
        for k in self.keys:
            getattr(self, k)[:n] = np.asarray(state[k])
        self.size, self.next = n, int(state["next"])


def symmetry(x: torch.Tensor, pi: torch.Tensor, k: int, size: int, own: torch.Tensor | None = None):
    """The k-th of the board's 8 symmetries (k // 2 quarter turns, then a mirror when k is odd),
    applied to planes (B, C, N, N), to the board part of π (B, N² + 1; pass stays) and to
    ownership (B, N²) when given: (x, π) or (x, π, ownership)."""
    def turn(t: torch.Tensor) -> torch.Tensor:
        t = torch.rot90(t, k // 2, (-2, -1))
        return t.flip(-1) if k % 2 else t

    x, board = turn(x), turn(pi[:, :-1].reshape(-1, size, size))
    pi = torch.cat([board.reshape(len(pi), -1), pi[:, -1:]], 1)
    if own is None:
        return x, pi
    return x, pi, turn(own.reshape(-1, size, size)).reshape(len(own), -1)


class AlphaZeroExperiment(GoAgent):
    def __init__(self, cfg, device: torch.device):
        super().__init__(cfg, device)
        g, n, a = cfg.game, cfg.net, cfg.alphazero
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=a.lr, weight_decay=a.weight_decay)
        # This rank's shares (all of it for one process)
        self.games_per_call = per_rank(a.parallel_games, "alphazero.parallel_games")
        self.batch_size = per_rank(a.batch_size, "alphazero.batch_size")
        capacity = -(-a.buffer_positions // world_size())
        self.obs_shape = (input_planes(n.history, n.komi_plane), g.size, g.size)
        self.buffer = ReplayBuffer(capacity, self.obs_shape, self.rules.actions, self.ownership, n.komi_plane)
        self.steps_per_call = a.parallel_games  # every rank's games
        self.temperature_moves = a.temperature_moves if a.temperature_moves is not None else g.size * g.size // 2
        alpha = a.dirichlet_alpha or 10.0 / (g.size * g.size)
        self.search = network_search(self.net, n.history, a.simulations, a.c_puct, self.score_utility, device,
                                     komi=n.komi_plane, dirichlet_alpha=alpha, noise_fraction=a.noise_fraction,
                                     gumbel_actions=a.gumbel_actions)

    # ---- self-play -------------------------------------------------------------------------------
    def game_rules(self) -> Rules:
        """A self-play game's rules: the run's, with komi_spread > 0 its komi moved by a whole
        number of points drawn from N(0, spread²), rounded (so a komi of x.5 still has no draws),
        and kept within ±N² (beyond, one side cannot win whatever is played)."""
        spread, komi, area = self.cfg.alphazero.komi_spread, self.rules.komi, self.rules.size ** 2
        if spread == 0:
            return self.rules
        points = min(max(round(float(self.rng.normal(0.0, spread))), math.ceil(-area - komi)), math.floor(area - komi))
        return dataclasses.replace(self.rules, komi=komi + points)

    def self_play(self, games: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """`games` games searched as one batch: (planes, π, z, final ownership) of every position
        (ownership (0, N²) without the head), and statistics."""
        a = self.cfg.alphazero
        self.net.eval()  # batch norm on its running statistics while searching
        positions = [self.game_rules().new() for _ in range(games)]
        records: list[list] = [[] for _ in range(games)]
        t0, evaluated = time.perf_counter(), self.search.evaluated
        full = [True] * games  # whether each game's current search is a full one

        def next_search(g: int) -> Job | None:
            if positions[g].over:
                return None
            full[g] = a.full_search_fraction >= 1 or bool(self.rng.random() < a.full_search_fraction)
            return Job(positions[g], a.simulations if full[g] else a.fast_simulations, noise=full[g])

        def settle(g: int, root) -> Job | None:
            pos = positions[g]
            pi = self.search.policy(root)  # the policy target: N / ΣN, or Gumbel AlphaZero's π'
            if full[g] and len(pos.history) < self.temperature_moves:  # a fast search explores nothing
                visits = root.visits / root.visits.sum()
                action = int(self.rng.choice(len(visits), p=visits))
            else:
                action = self.search.best(root)
            if full[g]:
                records[g].append((planes(pos, self.history, self.komi_plane), pi.astype(np.float32), pos.to_play))
            pos.play(action, self.history)
            return next_search(g)

        self.search.search_games([next_search(g) for g in range(games)], settle, self.rng)
        obs, pis, zs, owns, lengths, black_wins = [], [], [], [], [], 0
        for pos, rec in zip(positions, records):
            winner = pos.winner()
            black_wins += winner == 1
            lengths.append(len(pos.history))
            owner = ownership(pos.board()).ravel() if self.ownership else None
            for o, pi, colour in rec:
                obs.append(o)
                pis.append(pi)
                zs.append(float(winner * colour))
                if owner is not None:
                    owns.append(owner * np.int8(colour))
        seconds = time.perf_counter() - t0
        stats = {"game_length": float(np.mean(lengths)), "black_wins": black_wins / games,
                 "search_positions_per_s": (self.search.evaluated - evaluated) / max(seconds, 1e-9),
                 "self_play_seconds": seconds}
        n = len(zs)  # (0 where every move was a fast search: playout-cap randomisation, rarely)
        return (np.array(obs, np.float32 if self.komi_plane else np.uint8).reshape(n, *self.obs_shape),
                np.array(pis, np.float32).reshape(n, self.rules.actions), np.array(zs, np.float32),
                np.array(owns, np.int8).reshape(n, self.rules.actions - 1 if self.ownership else 0), stats)

    # ---- learning --------------------------------------------------------------------------------
    def update(self, weight: float = 1.0) -> dict[str, float]:
        """One gradient step on a minibatch from the replay buffer (this rank's share of it)."""
        a = self.cfg.alphazero
        idx = self.rng.integers(0, self.buffer.size, size=min(self.batch_size, self.buffer.size))
        x = torch.from_numpy(self.buffer.planes(idx)).to(self.device)
        pi = torch.from_numpy(self.buffer.pi[idx]).to(self.device)
        z = torch.from_numpy(self.buffer.z[idx]).to(self.device)
        own = torch.from_numpy(self.buffer.own[idx].astype(np.float32)).to(self.device) if self.ownership else None
        if a.symmetries:
            ks = self.rng.integers(0, 8, size=len(idx))
            for k in range(1, 8):
                sel = torch.from_numpy(np.flatnonzero(ks == k)).to(self.device)
                if len(sel):
                    if own is None:
                        x[sel], pi[sel] = symmetry(x[sel], pi[sel], k, self.rules.size)
                    else:
                        x[sel], pi[sel], own[sel] = symmetry(x[sel], pi[sel], k, self.rules.size, own[sel])
        return self.learn(x, pi, z, weight, own)

    def learn(self, x: torch.Tensor, pi: torch.Tensor, z: torch.Tensor, weight: float = 1.0,
              own: torch.Tensor | None = None) -> dict[str, float]:
        """A gradient step on (planes, π, z): l = (z - v)² - π · log p [+ w · mean (o - ô)² with
        the ownership head], averaged over the batch (over all ranks' rows under torchrun:
        `weight` = this rank's rows × N / all rows, 1 when every rank has as many). Returns the
        value, policy [and ownership] losses of this rank's rows."""
        self.net.train()
        logits, v, owner = self.net.heads(x, ownership=own is not None)
        parts = {"value_loss": F.mse_loss(v, z),
                 "policy_loss": -(pi * torch.log_softmax(logits, -1)).sum(1).mean()}
        loss = parts["value_loss"] + parts["policy_loss"]
        if owner is not None:
            parts["ownership_loss"] = F.mse_loss(owner, own)
            loss = loss + self.cfg.alphazero.ownership_weight * parts["ownership_loss"]
        self.opt.zero_grad(set_to_none=True)
        (loss * weight).backward()  # × 1.0 is exact: one process unchanged
        average_gradients(list(self.net.parameters()))
        self.opt.step()
        return {k: t.item() for k, t in parts.items()}

    def train_step(self, step: int) -> dict[str, float]:
        a = self.cfg.alphazero
        obs, pi, z, own, stats = self.self_play(self.games_per_call)
        self.buffer.add(obs, pi, z, own)
        self.games += a.parallel_games
        # Every rank's new positions (all take the same number of steps) and minibatch rows (a
        # buffer smaller than its share of the batch gives fewer: its mean loss weighs less).
        counts = all_gather(torch.tensor([len(z), min(self.batch_size, self.buffer.size)]))
        updates = max(1, round(a.replay_ratio * sum(int(c[0]) for c in counts) / a.batch_size))
        if min(int(c[1]) for c in counts) == 0:  # a rank has kept no position yet (only fast searches)
            return {"updates": 0.0, **stats}
        weight = len(counts) * int(counts[rank()][1]) / sum(int(c[1]) for c in counts)
        losses = [self.update(weight) for _ in range(updates)]
        means = {k: float(np.mean([one[k] for one in losses])) for k in losses[0]}
        return {**means, "updates": float(updates), **stats}

    def _deal(self, saved: dict) -> dict:
        """The saved buffer (rank 0's) as this rank's: as saved where it fits as it was (one process,
        resuming its own or a not yet full one: bitwise); otherwise put oldest first, the newest
        capacity × N positions kept, dealt out among the ranks in turn, each rank's newest last."""
        n, cap, world = len(saved["z"]), len(self.buffer.z), world_size()
        if world == 1 and n <= cap and (n == cap or int(saved["next"]) == n % cap):
            return saved
        oldest_first = {k: np.roll(np.asarray(saved[k]), -int(saved["next"]), 0)[-cap * world:]
                        for k in self.buffer.keys}
        mine = {k: v[rank()::world][-cap:] for k, v in oldest_first.items()}
        return {**mine, "next": len(mine["z"]) % cap}

    # ---- loop contract ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "buffer": self.buffer.state_dict(),
                "rng": self.rng.bit_generator.state, "games": self.games}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.buffer.load_state_dict(self._deal(state["buffer"]))
        self.rng.bit_generator.state = state["rng"]
        self.games = int(state["games"])
        self.draw_apart()

