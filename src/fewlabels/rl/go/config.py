"""The Go family's config (`family: go`): every default visible here; configs/go/*.yaml are small
diffs. `train.steps` counts self-play games."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from fewlabels.config import LoopConfig, loop_default
from fewlabels.errors import UserError


@dataclass
class GoGameConfig:
    size: int = field(default=5, metadata={"ge": 2, "le": 19})
    komi: float | None = None  # None: the fair komi of the size (rules.FAIR_KOMI: 5x5 24.5, 7x7 8.5, 9x9 7.5)
    max_moves: int | None = field(default=None, metadata={"ge": 1})  # None: OpenSpiel's 2·N²


@dataclass
class GoNetConfig:
    channels: int = field(default=32, metadata={"ge": 1})
    blocks: int = field(default=3, metadata={"ge": 0})
    history: int = field(default=3, metadata={"ge": 1})  # positions in the observation (ko needs 2)
    norm: Literal["batch", "none"] = "batch"  # AlphaZero's batch norm; PPO needs none (net.py says why)
    komi_plane: bool = False  # one more input plane: the komi of the side to move (env.planes)


@dataclass
class AlphaZeroConfig:
    simulations: int = field(default=32, metadata={"ge": 1})  # per move in self-play
    c_puct: float = field(default=1.5, metadata={"gt": 0})
    dirichlet_alpha: float | None = field(default=None, metadata={"gt": 0})  # None: 10 / N² (AlphaZero's scaling)
    noise_fraction: float = field(default=0.25, metadata={"ge": 0, "le": 1})
    temperature_moves: int | None = field(default=None, metadata={"ge": 0})  # moves sampled ∝ N; None: N²/2
    # Playout-cap randomisation (KataGo, Wu 2019): each move is a full search (`simulations`, root noise,
    # a training position) with this probability, else a fast one (`fast_simulations`, no noise, its
    # most visited move even among the temperature moves (KataGo's keep a lower temperature: docs/go.md),
    # not kept); 1: every move a full search
    full_search_fraction: float = field(default=1.0, metadata={"gt": 0, "le": 1})
    fast_simulations: int = field(default=8, metadata={"ge": 1})
    # > 0: each self-play game's komi is game.komi plus a whole number of points, round(N(0, spread²))
    # (KataGo randomises komi), so that both colours play games they can win; needs net.komi_plane
    komi_spread: float = field(default=0.0, metadata={"ge": 0})
    # > 0: Gumbel AlphaZero (Danihelka 2022, mcts.py) in self-play: Sequential Halving over this many root actions
    # drawn by Gumbel noise (not Dirichlet: dirichlet_alpha and noise_fraction unused) chooses the moves after the
    # temperature moves, and π is the improved policy softmax(logit + σ(q̂)). 0: PUCT, π = N / ΣN
    gumbel_actions: int = field(default=0, metadata={"ge": 0})
    parallel_games: int = field(default=32, metadata={"ge": 1})  # self-play games per iteration, searched as one batch
    buffer_positions: int = field(default=50_000, metadata={"ge": 1})
    batch_size: int = field(default=256, metadata={"ge": 1})
    # gradient steps per iteration = replay_ratio × new positions / batch_size (at least one; none
    # while a buffer is empty, which only playout-cap randomisation's fast moves can make)
    replay_ratio: float = field(default=4.0, metadata={"gt": 0})
    lr: float = field(default=2e-3, metadata={"gt": 0})
    weight_decay: float = field(default=1e-4, metadata={"ge": 0})
    symmetries: bool = True  # train on a random one of the board's 8 symmetries
    # > 0: an ownership head (net.py) learns every point's final owner, its loss weighed by this
    ownership_weight: float = field(default=0.0, metadata={"ge": 0})
    # > 0: the search adds λ · (2/π) atan((s - c) / 0.75 N) to every value, s the expected margin from
    # the ownership head (a simplified KataGo dynamic score utility, mcts.py), in self-play and in play
    score_utility: float = field(default=0.0, metadata={"ge": 0})


@dataclass
class SelfPlayPPOConfig:
    parallel_games: int = field(default=64, metadata={"ge": 1})  # games per iteration, against one opponent
    reward: Literal["pm1", "win"] = "pm1"  # +1 / -1 at the end, or the lecture's 1 / 0
    lr: float = field(default=3e-4, metadata={"gt": 0})
    epochs: int = field(default=4, metadata={"ge": 1})
    minibatch_size: int = field(default=256, metadata={"ge": 1})
    clip: float = field(default=0.2, metadata={"gt": 0})
    gae_lambda: float = field(default=0.95, metadata={"ge": 0, "le": 1})
    ent_coef: float = field(default=0.01, metadata={"ge": 0})
    vf_coef: float = field(default=0.5, metadata={"ge": 0})
    max_grad_norm: float = field(default=0.5, metadata={"gt": 0})
    pool_every: int = field(default=256, metadata={"ge": 1})  # games between snapshots into the pool
    pool_size: int = field(default=10, metadata={"ge": 1})
    latest_fraction: float = field(default=0.5, metadata={"ge": 0, "le": 1})  # P(opponent = the current policy)


@dataclass
class GoTrainConfig(LoopConfig):
    steps: int = loop_default("steps", 2000)  # self-play games
    log_every: int = loop_default("log_every", 32)
    eval_every: int = loop_default("eval_every", 512)
    snapshot_every: int = loop_default("snapshot_every", 0)
    checkpoint_every: int = loop_default("checkpoint_every", 256)


@dataclass
class GoEvalConfig:
    games: int = field(default=50, metadata={"ge": 2})  # per opponent, colours alternating
    # Opponents of the evaluations: "random", "gnugo:L" (GNU Go level L, skipped where it is not
    # installed), "mcts:S" (OpenSpiel's MCTSBot with S random-rollout simulations).
    opponents: list[str] = field(default_factory=lambda: ["random"])
    simulations: int = field(default=32, metadata={"ge": 0})  # the agent's search at evaluation; 0: the network alone
    network_alone: bool = True  # also play each opponent with the network alone (metrics `win_rate_<opponent>_net`)
    c_puct: float = field(default=1.5, metadata={"gt": 0})
    seed: int = 2024


@dataclass
class GoConfig:
    EXPERIMENT = "fewlabels.rl.go.agent:make_experiment"  # the class of `algo`
    DISTRIBUTED = True  # under torchrun: each rank plays its share of the games, gradients averaged
    family: Literal["go"] = "go"
    name: str = ""
    seed: int = 0
    algo: Literal["alphazero", "ppo"] = "alphazero"
    game: GoGameConfig = field(default_factory=GoGameConfig)
    net: GoNetConfig = field(default_factory=GoNetConfig)
    alphazero: AlphaZeroConfig = field(default_factory=AlphaZeroConfig)
    ppo: SelfPlayPPOConfig = field(default_factory=SelfPlayPPOConfig)
    train: GoTrainConfig = field(default_factory=GoTrainConfig)
    eval: GoEvalConfig = field(default_factory=GoEvalConfig)

    def validate(self) -> None:
        from fewlabels.rl.go.players import parse_opponent

        for spec in self.eval.opponents:
            parse_opponent(spec, where="eval.opponents")  # a typo is refused before a run directory exists
        if self.algo == "ppo" and self.net.norm == "batch":
            raise UserError("net.norm is 'batch' with algo ppo; PPO's ratio π/π_old needs the network to act and "
                            "learn alike, which batch norm breaks (running vs batch statistics): set net.norm: none")
        a = self.alphazero
        if not math.isfinite(a.score_utility):
            raise UserError(f"alphazero.score_utility is {a.score_utility}; give a finite weight (0: off; 0.3)")
        if a.score_utility > 0 and (self.algo != "alphazero" or a.ownership_weight == 0):
            raise UserError(f"alphazero.score_utility is {a.score_utility}, but the expected score it needs comes "
                            "from the ownership head, which this run does not have: set algo alphazero with "
                            "alphazero.ownership_weight > 0 (KataGo's 1.5), or score_utility 0")
        if a.full_search_fraction < 1 and a.fast_simulations >= a.simulations:
            raise UserError(f"alphazero.fast_simulations is {a.fast_simulations}, not fewer than alphazero.simulations "
                            f"({a.simulations}): a fast search must be smaller than a full one (KataGo: about a "
                            "sixth), or set full_search_fraction 1")
        if not math.isfinite(a.komi_spread):
            raise UserError(f"alphazero.komi_spread is {a.komi_spread}; give a finite number of points (0: off; 2)")
        if a.komi_spread > 0 and (self.algo != "alphazero" or not self.net.komi_plane):
            raise UserError(f"alphazero.komi_spread is {a.komi_spread}, but a network that cannot see the komi would "
                            "learn noise from games of other komi: set net.komi_plane true (with algo alphazero), "
                            "or komi_spread 0")
        if self.game.max_moves is not None and self.game.max_moves < self.game.size:
            raise UserError(f"game.max_moves is {self.game.max_moves}; a game needs at least {self.game.size} moves")
