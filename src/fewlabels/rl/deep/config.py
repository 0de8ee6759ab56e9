"""The deep RL configs (families `dqn` and `pg`): every default visible here; YAML files under
configs/rl/ are small diffs. `train.steps` counts environment steps (all sub-environments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fewlabels.config import LoopConfig, loop_default
from fewlabels.errors import UserError


@dataclass
class AtariConfig:
    """AtariPreprocessing and FrameStackObservation settings (used for ALE/... ids only)."""

    frame_skip: int = field(default=4, metadata={"ge": 1})
    frame_stack: int = field(default=4, metadata={"ge": 1})
    noop_max: int = field(default=30, metadata={"ge": 0})
    terminal_on_life_loss: bool = False


@dataclass
class VecEnvConfig:
    id: str = "CartPole-v1"  # any Gymnasium id; ALE/... needs the atari extra, Hopper-v5 etc. mujoco
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword arguments of gymnasium.make
    max_episode_steps: int | None = field(default=None, metadata={"ge": 1})  # None: the env's own limit
    num_envs: int = field(default=1, metadata={"ge": 1})
    # auto: the env's own vectorised implementation when it has one (CartPole), else sync.
    vectorization: Literal["auto", "native", "sync", "async"] = "auto"
    normalize_obs: bool = False  # running mean/std, saved with the checkpoint, frozen at evaluation
    normalize_reward: bool = False  # divide by the running std of the discounted return
    reward_clip: float | None = field(default=None, metadata={"gt": 0})  # Atari: 1.0 (scores stay raw in logs)
    atari: AtariConfig = field(default_factory=AtariConfig)


@dataclass
class DeepTrainConfig(LoopConfig):
    steps: int = loop_default("steps", 100_000)  # environment steps (all sub-environments)
    log_every: int = loop_default("log_every", 2000)
    snapshot_every: int = loop_default("snapshot_every", 0)  # unused by RL
    checkpoint_every: int = loop_default("checkpoint_every", 50_000)


@dataclass
class DeepEvalConfig:
    episodes: int = field(default=10, metadata={"ge": 1})  # deterministic episodes per evaluation
    seed: int = 2024  # a separate environment and seed, never training's
    gif: bool = True  # record one evaluation episode to a GIF for the report
    gif_frames: int = field(default=500, metadata={"ge": 1})


@dataclass
class DQNAgentConfig:
    lr: float = field(default=1e-4, metadata={"gt": 0})
    gamma: float = field(default=0.99, metadata={"ge": 0, "le": 1})
    buffer_size: int = field(default=100_000, metadata={"ge": 1})
    learning_starts: int = field(default=1000, metadata={"ge": 0})  # environment steps before updates
    batch_size: int = field(default=64, metadata={"ge": 1})
    train_freq: int = field(default=4, metadata={"ge": 1})  # vector steps between update phases
    gradient_steps: int = field(default=1, metadata={"ge": 1})  # updates per phase
    target_update: int = field(default=1000, metadata={"ge": 1})  # environment steps between target syncs
    tau: float = field(default=1.0, metadata={"gt": 0, "le": 1})  # 1: hard copy; < 1: Polyak averaging
    double: bool = True  # Double DQN: the online net picks a', the target net scores it
    loss: Literal["huber", "mse"] = "huber"
    max_grad_norm: float | None = field(default=10.0, metadata={"gt": 0})
    eps_start: float = field(default=1.0, metadata={"ge": 0, "le": 1})
    eps_end: float = field(default=0.05, metadata={"ge": 0, "le": 1})
    eps_fraction: float = field(default=0.1, metadata={"gt": 0, "le": 1})  # of train.steps
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    save_replay: bool = True  # keep the replay buffer in checkpoints (Atari: false, gigabytes)


@dataclass
class PGAgentConfig:
    algo: Literal["reinforce", "a2c", "ppo"] = "ppo"
    lr: float = field(default=3e-4, metadata={"gt": 0})
    anneal_lr: bool = False  # linear decay to 0 over train.steps
    optimizer: Literal["adam", "rmsprop"] = "adam"
    gamma: float = field(default=0.99, metadata={"ge": 0, "le": 1})
    gae_lambda: float = field(default=0.95, metadata={"ge": 0, "le": 1})  # A2C, PPO; REINFORCE: Monte Carlo G_t
    # Per sub-environment per rollout. REINFORCE: at least this many, then running episodes are played out.
    n_steps: int = field(default=128, metadata={"ge": 1})
    epochs: int = field(default=10, metadata={"ge": 1})  # PPO only; REINFORCE and A2C take one step
    minibatch_size: int = field(default=64, metadata={"ge": 1})  # PPO only
    clip: float = field(default=0.2, metadata={"gt": 0})
    anneal_clip: bool = False  # linear decay of the clip range to 0 (RL Zoo's lin_0.2)
    clip_value: float | None = field(default=None, metadata={"gt": 0})  # PPO value clipping
    normalize_advantage: bool = True
    baseline: bool = True  # REINFORCE: advantage G_t - V(s_t) instead of G_t; A2C and PPO always have a critic
    ent_coef: float = field(default=0.0, metadata={"ge": 0})
    vf_coef: float = field(default=0.5, metadata={"ge": 0})
    max_grad_norm: float | None = field(default=0.5, metadata={"gt": 0})
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float = 0.0  # Gaussian policies
    ortho_init: bool = True  # orthogonal weights (gain √2, 0.01 for π's head, 1 for V's); false: PyTorch's default


@dataclass
class DeepRLConfig:
    """What the DQN and policy-gradient configs share; each sets `family`, `agent` and which
    action spaces it takes (fields keep this order in config.yaml)."""

    family: str = ""
    name: str = ""
    seed: int = 0
    env: VecEnvConfig = field(default_factory=VecEnvConfig)
    agent: Any = None
    train: DeepTrainConfig = field(default_factory=DeepTrainConfig)
    eval: DeepEvalConfig = field(default_factory=DeepEvalConfig)

    def validate(self) -> None:
        from fewlabels.rl.deep.vector import make_single

        if not isinstance(self.env.kwargs, dict):
            raise UserError(f"env.kwargs is {self.env.kwargs!r}; expected a mapping of keyword arguments")
        env = make_single(self.env)  # an unknown id or a missing extra is refused before a run directory exists
        try:
            self.check_spaces(env.action_space)
        finally:
            env.close()

    def check_spaces(self, action_space: Any) -> None:
        raise NotImplementedError


@dataclass
class DQNConfig(DeepRLConfig):
    EXPERIMENT = "fewlabels.rl.deep.dqn:DQNExperiment"
    family: Literal["dqn"] = "dqn"
    agent: DQNAgentConfig = field(default_factory=DQNAgentConfig)

    def torchrun_refusal(self) -> str | None:
        # Scale-out for DQN means either per-rank replay with averaged gradients (N small learners
        # in lockstep: more environment steps per update, not the same algorithm) or one learner
        # fed by many actors (Ape-X): neither is built. A replay ratio of one update per few
        # environment steps keeps one process busy on its own.
        return ("DQN does not train under torchrun: its learner updates every few environment steps from one "
                "replay buffer, and splitting that across processes would change the algorithm")

    def check_spaces(self, action_space: Any) -> None:
        import gymnasium as gym

        if not isinstance(action_space, gym.spaces.Discrete):
            raise UserError(f"env.id {self.env.id!r} has continuous actions ({action_space}); DQN needs a "
                            "Discrete action space: use family pg (PPO) for it, or a discrete env such as "
                            "CartPole-v1 or ALE/Pong-v5")


@dataclass
class PGConfig(DeepRLConfig):
    EXPERIMENT = "fewlabels.rl.deep.pg:PGExperiment"
    family: Literal["pg"] = "pg"
    agent: PGAgentConfig = field(default_factory=PGAgentConfig)

    def torchrun_refusal(self) -> str | None:
        """A2C and PPO train under torchrun (each rank its share of env.num_envs, gradients
        averaged); REINFORCE does not: it updates when a batch of whole episodes is complete,
        which happens at different steps on each rank."""
        if self.agent.algo == "reinforce":
            return ("agent.algo reinforce does not train under torchrun: it updates when its whole episodes end, "
                    "at different steps on each process; use agent.algo ppo or a2c")
        return None

    def check_spaces(self, action_space: Any) -> None:
        import gymnasium as gym

        if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise UserError(f"env.id {self.env.id!r} has a {type(action_space).__name__} action space; "
                            "policy gradients here take Discrete or Box actions")
