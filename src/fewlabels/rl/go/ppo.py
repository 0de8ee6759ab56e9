"""Policy gradients for Go by self-play (the lecture's method, with PPO's clipped update,
Schulman et al. 2017): the learner plays batches of games against a pool of its past selves.

One `train_step`:
1. pick the opponent: the current policy itself with probability `latest_fraction`, otherwise a
   past self from the pool (a frozen copy of the network saved every `pool_every` games);
2. play `parallel_games` games against it, the learner Black in every other game, every move
   sampled from π(a|s) with the illegal actions masked out (their logits set to -∞);
3. score each of the learner's moves by the game's result at the end (+1 / -1, or the lecture's
   1 / 0 with `reward: win`; no discount), advantages by GAE(λ) over the learner's moves;
4. `epochs` passes of PPO over minibatches:

       L = -E[min(ρ Â, clip(ρ, 1 ± ε) Â)] + c_V E[(V(s) - R)²] - c_H E[H(π(·|s))]

   with ρ = π(a|s) / π_old(a|s), both over the legal actions only.

The network is the same policy-value network as AlphaZero's, so at evaluation it can play alone
or guide the same PUCT search. `train.steps` counts self-play games.

Under torchrun each rank plays its share of `parallel_games` against an opponent of its own
choosing (its own random streams) and learns from its own moves: every rank takes the same number
of minibatches (counted from all ranks' moves), advantages are normalised over all ranks' part of
a minibatch, and the gradients are averaged before they are clipped.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from fewlabels.distributed import all_gather, average_gradients, per_rank, rank, rank_seed, standardise, world_size
from fewlabels.rl.deep.pg import gae, policy_loss, value_loss
from fewlabels.rl.go.agent import GoAgent
from fewlabels.rl.go.env import planes
from fewlabels.rl.go.net import masked_log_softmax
from fewlabels.rl.go.rules import BLACK


class SelfPlayPPO(GoAgent):
    def __init__(self, cfg, device: torch.device):
        super().__init__(cfg, device)
        p = cfg.ppo
        self.opt = torch.optim.Adam(self.net.parameters(), lr=p.lr, eps=1e-5)
        self.steps_per_call = p.parallel_games  # every rank's games
        self.games_per_call = per_rank(p.parallel_games, "ppo.parallel_games")
        self.pool: list[dict] = []  # past selves' weights, oldest first
        self.opponent = copy.deepcopy(self.net).eval()
        self.torch_rng = torch.Generator(device=device)  # the moves' sampling stream, in checkpoints
        self.torch_rng.manual_seed(rank_seed(int(cfg.seed)))

    # ---- playing the games -------------------------------------------------------------------------
    @torch.no_grad()
    def _sample(self, net, positions) -> tuple[np.ndarray, ...]:
        """Actions sampled from net's masked policy: (obs, masks, actions, log π, V)."""
        obs = np.stack([planes(p, self.history, self.komi_plane) for p in positions])
        masks = np.stack([p.legal_mask() for p in positions])
        logits, value = net(torch.from_numpy(obs).to(self.device))
        logp_all = masked_log_softmax(logits.float(), torch.from_numpy(masks).to(self.device))
        actions = torch.multinomial(logp_all.exp(), 1, generator=self.torch_rng).squeeze(1)
        logp = logp_all.gather(1, actions[:, None]).squeeze(1)
        return obs, masks, actions.cpu().numpy(), logp.cpu().numpy(), value.float().cpu().numpy()

    def play_games(self, games: int) -> tuple[dict, dict]:
        """The learner's moves of `games` games against the chosen opponent, with advantages."""
        p = self.cfg.ppo
        latest = not self.pool or self.rng.random() < p.latest_fraction
        self.opponent.load_state_dict(self.net.state_dict() if latest else self.pool[self.rng.integers(len(self.pool))])
        self.net.eval()
        positions = [self.rules.new() for _ in range(games)]
        first = self.games + rank() * games  # the learner's colours alternate over all ranks' games
        learner = [BLACK if (first + i) % 2 == 0 else -BLACK for i in range(games)]
        moves: list[list] = [[] for _ in range(games)]
        while True:
            live = [i for i, pos in enumerate(positions) if not pos.over]
            if not live:
                break
            for net, mine in ((self.net, True), (self.opponent, False)):
                turn = [i for i in live if (positions[i].to_play == learner[i]) == mine and not positions[i].over]
                if not turn:
                    continue
                obs, masks, actions, logp, value = self._sample(net, [positions[i] for i in turn])
                for k, i in enumerate(turn):
                    if mine:
                        moves[i].append((obs[k], masks[k], actions[k], logp[k], value[k]))
                    positions[i].play(int(actions[k]), self.history)
        rows, wins = [], 0
        for pos, colour, rec in zip(positions, learner, moves):
            won = pos.winner() * colour  # 1, -1, or 0 for a repetition draw
            wins += won > 0
            result = float(won > 0) if p.reward == "win" else float(won)
            rewards = np.zeros((len(rec), 1), np.float32)
            rewards[-1] = result
            values = np.array([[r[4]] for r in rec], np.float32)
            ends = np.zeros_like(rewards)
            ends[-1] = 1.0
            adv = gae(rewards, values, np.zeros(1, np.float32), ends, ends, 1.0, p.gae_lambda)
            rows += [(*r[:4], r[4], a[0]) for r, a in zip(rec, adv)]
        obs, masks, actions, logp, values, adv = (np.stack(c) for c in zip(*rows))
        batch = {"obs": obs, "masks": masks, "actions": actions.astype(np.int64), "logp": logp, "values": values,
                 "advantages": adv.astype(np.float32), "returns": (adv + values).astype(np.float32)}
        stats = {"win_rate_vs_pool": wins / games, "opponent_is_latest": float(latest),
                 "game_length": float(np.mean([len(pos.history) for pos in positions]))}
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in batch.items()}, stats

    # ---- learning ----------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        p = self.cfg.ppo
        n = len(batch["actions"])
        shared = world_size() > 1
        if shared:  # the same number of minibatches on every rank (each is one gradient all-reduce)
            counts = [int(c) for c in all_gather(torch.tensor([n]))]
            parts = max(1, min(-(-sum(counts) // p.minibatch_size), *counts))
            # the rows of minibatch i on every rank (tensor_split's sizes): each rank's mean loss is
            # weighed by its share, so the averaged gradient is that of the mean over all rows
            rows = [sum(c // parts + (i < c % parts) for c in counts) for i in range(parts)]
        self.net.train()
        sums, count = np.zeros(3), 0
        for _ in range(p.epochs):
            order = torch.from_numpy(self.rng.permutation(n)).to(self.device)
            for i, idx in enumerate(order.tensor_split(parts) if shared else order.split(p.minibatch_size)):
                mb = {k: v[idx] for k, v in batch.items()}
                adv = mb["advantages"]
                if len(idx) > 1 or shared:
                    adv = standardise(adv)
                logits, value = self.net(mb["obs"].float())
                logp_all = masked_log_softmax(logits, mb["masks"])
                logp = logp_all.gather(1, mb["actions"][:, None]).squeeze(1)
                # H = -Σ π log π over the legal actions (log π is -∞ elsewhere: zeroed before the
                # product, or its gradient is 0 · ∞)
                entropy = -(logp_all.exp() * logp_all.masked_fill(~mb["masks"], 0.0)).sum(1).mean()
                pg = policy_loss("ppo", logp, mb["logp"], adv, p.clip)
                vf = value_loss(value, mb["values"], mb["returns"], None)
                loss = pg + p.vf_coef * vf - p.ent_coef * entropy
                if shared:
                    loss = loss * (len(idx) * world_size() / rows[i])
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(list(self.net.parameters()))
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), p.max_grad_norm)
                self.opt.step()
                sums += [pg.item(), vf.item(), entropy.item()]
                count += 1
        pg, vf, ent = sums / count
        return {"policy_loss": pg, "value_loss": vf, "entropy": ent}

    def train_step(self, step: int) -> dict[str, float]:
        p = self.cfg.ppo
        batch, stats = self.play_games(self.games_per_call)
        before = self.games
        self.games += p.parallel_games
        logs = self.update(batch)
        if self.games // p.pool_every > before // p.pool_every:
            self.pool = [*self.pool, {k: v.detach().clone() for k, v in self.net.state_dict().items()}][-p.pool_size:]
        return {**logs, **stats, "pool": float(len(self.pool))}

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "pool": list(self.pool),
                "rng": self.rng.bit_generator.state, "torch_rng": self.torch_rng.get_state(), "games": self.games}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.pool = [dict(s) for s in state["pool"]]
        self.rng.bit_generator.state = state["rng"]
        self.torch_rng.set_state(state["torch_rng"])
        self.games = int(state["games"])
        self.draw_apart()
        if world_size() > 1:
            self.torch_rng.manual_seed(int(self.rng.integers(2**62)))
