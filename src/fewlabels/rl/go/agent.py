"""What the Go agents share, written once: the rules of the configured game, the policy-value
network, playing (network alone, or network plus search: both agents' networks have a value head,
so PUCT search works on either), evaluation against the configured opponents, the report.

An agent (alphazero.py, ppo.py) adds `train_step` and the state it resumes from.
"""

from __future__ import annotations

import numpy as np
import torch

from fewlabels.distributed import rank, rank_seed, world_size
from fewlabels.rl.go.env import input_planes
from fewlabels.rl.go.mcts import Search, network_search
from fewlabels.rl.go.net import PolicyValueNet
from fewlabels.rl.go.players import PolicyPlayer
from fewlabels.rl.go.rules import Position, Rules, default_komi

ALGOS = {"alphazero": "fewlabels.rl.go.alphazero:AlphaZeroExperiment",
         "ppo": "fewlabels.rl.go.ppo:SelfPlayPPO"}


def make_experiment(cfg, device: torch.device):
    """The experiment of `cfg.algo` (the loop's EXPERIMENT for the Go family)."""
    import importlib

    module, name = ALGOS[cfg.algo].split(":")
    return getattr(importlib.import_module(module), name)(cfg, device)


class GoAgent:
    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        g, n = cfg.game, cfg.net
        self.rules = Rules(g.size, default_komi(g.size) if g.komi is None else g.komi, g.max_moves)
        self.history, self.komi_plane = n.history, n.komi_plane
        self.ownership = cfg.algo == "alphazero" and cfg.alphazero.ownership_weight > 0
        self.score_utility = cfg.alphazero.score_utility if self.ownership else 0.0  # the search's λ (mcts.py)
        self.net = PolicyValueNet(input_planes(n.history, n.komi_plane), g.size, n.channels, n.blocks, norm=n.norm,
                                  ownership=self.ownership).to(device)
        # Under torchrun each rank plays its own games: its own stream (rank 0's is one process's).
        self.rng = np.random.default_rng(rank_seed(cfg.seed))
        self.games = 0  # every rank's

    def draw_apart(self) -> None:
        """After a resume under torchrun: the loop restored rank 0's streams on every rank, so each
        rank derives its own again, from the number of games played (one process keeps the
        restored streams: its resume is bitwise)."""
        if world_size() > 1:  # (seed, rank, games) through a SeedSequence: no two ranks or resumes meet
            self.rng = np.random.default_rng([self.cfg.seed, rank(), self.games])

    def signature(self) -> str:
        n = self.cfg.net
        norm = "" if n.norm == "batch" else f" norm={n.norm}"
        heads = " ownership" if self.ownership else ""
        komi = " komi-plane" if n.komi_plane else ""
        return (f"go-{self.cfg.algo} size={self.rules.size} history={n.history}{komi} channels={n.channels} "
                f"blocks={n.blocks}{norm}{heads}")

    # ---- playing -----------------------------------------------------------------------------------
    def searcher(self, simulations: int, score_utility: float | None = None, gumbel_actions: int = 0) -> Search:
        """A noise-free search for play with the network: evaluation's c_puct, and the run's score
        utility unless another λ is given (which needs the ownership head; none is used with 0
        simulations, the network alone); PUCT, or with `gumbel_actions` m > 0 Gumbel AlphaZero's
        search, whose root then takes the network's top m moves (no Gumbel noise in play). PUCT
        by default, also for a run trained with Gumbel's search: on 5x5 it played the stronger
        (docs/go.md item 8)."""
        from fewlabels.errors import UserError

        w = self.score_utility if score_utility is None else score_utility
        if w > 0 and not self.ownership:
            raise UserError(f"score utility {w} needs the expected score of an ownership head, which this run "
                            "does not have (trained with alphazero.ownership_weight 0): give 0")
        return network_search(self.net, self.history, simulations, self.cfg.eval.c_puct,
                              w if simulations else 0.0, self.device, komi=self.komi_plane,
                              gumbel_actions=gumbel_actions if simulations else 0)

    def batch_policy(self, search: Search, sample_moves: int = 0, seed: int = 0):
        """(positions, games) -> actions, one per position: the move of `search` (a `searcher`: the
        most visited, or a Gumbel search's Sequential Halving winner), all the positions searched at
        once (each its own tree, the network called on every tree's leaf in one batch, as in
        self-play), or with 0 simulations the network alone (its most probable legal action). While
        fewer than `sample_moves` moves (both players', passes included) have been played in a
        game, its action is drawn instead, in proportion to the visit counts (the network's
        probabilities), never a pass, from a stream of its own seeded by (`seed`, game, move
        number): deterministic players then play different games, and a game's draws do not depend
        on which games were played before it or beside it (the network's outputs may differ in
        their last bits with the batch they are computed in)."""
        def choose(positions: list[Position], games: list[int]) -> list[int]:
            if search.simulations == 0:
                priors = search.evaluate(positions)[0]
                masks = [p.legal_mask() for p in positions]
                weights = [np.where(legal, prior, 0.0) for legal, prior in zip(masks, priors)]
                best = [int(np.argmax(np.where(legal, prior, -1.0))) for legal, prior in zip(masks, priors)]
            else:
                roots = search.run(positions)
                weights = [np.where(root.legal, root.visits, 0.0) for root in roots]
                best = [search.best(root) for root in roots]
            actions = []
            for position, game, w, move_played in zip(positions, games, weights, best):
                if sample_moves and (move := position.state.move_number()) < sample_moves:
                    draw = w.astype(np.float64)
                    if draw[:-1].sum() > 0:
                        draw[-1] = 0.0  # no pass in the opening
                    if draw.sum() > 0:
                        rng = np.random.default_rng([seed, 1, game, move])  # apart from the opponents' streams
                        actions.append(int(rng.choice(draw.size, p=draw / draw.sum())))
                        continue
                actions.append(move_played)
            return actions
        return choose

    def player(self, simulations: int, name: str = "fewlabels", sample_moves: int = 0, seed: int = 0,
               score_utility: float | None = None, gumbel_actions: int = 0) -> PolicyPlayer:
        self.net.eval()
        search = self.searcher(simulations, score_utility, gumbel_actions)
        choose = self.batch_policy(search, sample_moves, seed)
        player = PolicyPlayer(lambda position: choose([position], [0])[0], name, history=self.history,
                              sizes=(self.rules.size,))
        player.batch_policy = choose
        player.trained_komi = self.rules.komi
        player.score_utility = search.score_utility
        player.gumbel_actions = search.gumbel_actions
        return player

    def evaluate(self) -> dict[str, float]:
        from fewlabels.rl.go.evaluation import evaluate_agent

        return evaluate_agent(self, self.cfg.eval)

    # ---- loop contract -------------------------------------------------------------------------------
    def snapshot(self, step: int, folder) -> None:
        pass

    def report_sections(self, run) -> list:
        from fewlabels.rl.go.report import sections

        return sections(self, run)
