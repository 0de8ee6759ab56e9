"""The tabular RL config (family `tabular`): every default visible here; YAML files under
configs/rl/ are small diffs. One training step is one episode: `train.steps` counts episodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fewlabels.errors import UserError
from fewlabels.rl.envs import GRIDWORLD_ID


@dataclass
class EnvConfig:
    id: str = GRIDWORLD_ID  # any Gymnasium environment with Discrete observations and actions
    # Keyword arguments of gymnasium.make: e.g. {is_slippery: false} for FrozenLake-v1, or the
    # grid world's rows, cols, terminals ([[0, 0], [3, 3]]), walls, step_reward, slip, start.
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = field(default=None, metadata={"ge": 1})  # None: the env's own limit


@dataclass
class Schedule:
    """A value over episodes e = 0, 1, ...: constant; linear from start to end over `episodes`;
    or exponential (geometric) from start to end over `episodes`; then held at end."""

    start: float = field(default=0.1, metadata={"ge": 0, "le": 1})
    end: float | None = field(default=None, metadata={"ge": 0, "le": 1})
    decay: Literal["constant", "linear", "exponential"] = "constant"
    episodes: int = field(default=0, metadata={"ge": 0})  # 0: the whole run (train.steps)

    def value(self, episode: int, total: int) -> float:
        if self.decay == "constant" or self.end is None:
            return self.start
        frac = min(1.0, episode / max(1, self.episodes or total))
        if self.decay == "linear":
            return self.start + (self.end - self.start) * frac
        return self.start * (self.end / self.start) ** frac

    def check(self, where: str) -> None:
        if self.decay == "constant" and self.end is not None:
            raise UserError(f"{where}.end is set but {where}.decay is 'constant'; set decay: linear or "
                            "exponential, or remove end")
        if self.decay != "constant" and self.end is None:
            raise UserError(f"{where}.decay is {self.decay!r} but {where}.end is missing; give the final value")
        if self.decay == "exponential" and (self.start <= 0 or (self.end or 0) <= 0):
            raise UserError(f"{where} decays exponentially, so start and end must be > 0")


@dataclass
class EpsilonSchedule(Schedule):
    """ε of ε-greedy exploration: a random action with probability ε."""


@dataclass
class StepSizeSchedule(Schedule):
    """α, the step size of the update Q(s, a) += α (target - Q(s, a))."""

    start: float = field(default=0.5, metadata={"gt": 0, "le": 1})
    end: float | None = field(default=None, metadata={"gt": 0, "le": 1})


@dataclass
class AgentConfig:
    name: Literal["q_learning", "sarsa"] = "q_learning"
    gamma: float = field(default=1.0, metadata={"ge": 0, "le": 1})
    epsilon: EpsilonSchedule = field(default_factory=EpsilonSchedule)
    alpha: StepSizeSchedule = field(default_factory=StepSizeSchedule)
    q_init: float = 0.0  # initial Q(s, a); above the true values it is optimistic and explores


@dataclass
class TrainConfig:
    steps: int = field(default=500, metadata={"ge": 1})  # episodes
    log_every: int = field(default=10, metadata={"ge": 1})  # `return_mean` averages these episodes
    eval_every: int = field(default=0, metadata={"ge": 0})  # 0: only at the end
    snapshot_every: int = field(default=0, metadata={"ge": 0})  # Q tables for the report; 0: only at the end
    checkpoint_every: int = field(default=1000, metadata={"ge": 1})
    threads: int = field(default=1, metadata={"ge": 0})  # torch threads (tabular RL runs on NumPy)


@dataclass
class EvalConfig:
    episodes: int = field(default=100, metadata={"ge": 1})  # greedy-policy episodes per evaluation
    seed: int = 2024  # evaluation episodes use their own environment and seed, never training's
    max_steps: int = field(default=1000, metadata={"ge": 1})  # a greedy policy may loop forever


@dataclass
class TabularConfig:
    EXPERIMENT = "fewlabels.rl.trainer:TabularExperiment"
    family: Literal["tabular"] = "tabular"
    name: str = ""
    seed: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        if not isinstance(self.env.kwargs, dict):
            raise UserError(f"env.kwargs is {self.env.kwargs!r}; expected a mapping of keyword arguments")
        self.agent.epsilon.check("agent.epsilon")
        self.agent.alpha.check("agent.alpha")
        if self.env.id == GRIDWORLD_ID:
            from fewlabels.rl.envs.gridworld import GridMDP, grid_from_kwargs

            grid = grid_from_kwargs(self.env.kwargs, "env.kwargs")
            try:
                GridMDP(grid, self.agent.gamma)
            except UserError as e:
                raise UserError(f"env.kwargs: {e}") from None
        else:  # refuse an unknown id or a continuous space now, before a run directory exists
            from fewlabels.rl.envs import make_env

            make_env(self.env.id, self.env.kwargs, self.env.max_episode_steps).close()


# ---- deep RL (families `dqn` and `pg`): `train.steps` counts environment steps ------------------
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
class DeepTrainConfig:
    steps: int = field(default=100_000, metadata={"ge": 1})  # environment steps (all sub-environments)
    log_every: int = field(default=2000, metadata={"ge": 1})
    eval_every: int = field(default=2000, metadata={"ge": 0})  # 0: only at the end
    snapshot_every: int = field(default=0, metadata={"ge": 0})  # unused by RL; kept for the loop
    checkpoint_every: int = field(default=50_000, metadata={"ge": 1})
    threads: int = field(default=1, metadata={"ge": 0})  # small nets: one thread (DESIGN.md)


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
    gae_lambda: float = field(default=0.95, metadata={"ge": 0, "le": 1})  # REINFORCE always uses 1
    n_steps: int = field(default=128, metadata={"ge": 1})  # per sub-environment per rollout
    epochs: int = field(default=10, metadata={"ge": 1})  # PPO only; REINFORCE and A2C take one step
    minibatch_size: int = field(default=64, metadata={"ge": 1})  # PPO only
    clip: float = field(default=0.2, metadata={"gt": 0})
    anneal_clip: bool = False  # linear decay of the clip range to 0 (RL Zoo's lin_0.2)
    clip_value: float | None = field(default=None, metadata={"gt": 0})  # PPO value clipping
    normalize_advantage: bool = True
    baseline: bool = True  # REINFORCE: subtract V(s); A2C and PPO always have a critic
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
        from fewlabels.rl.envs.vector import make_single

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
    EXPERIMENT = "fewlabels.rl.dqn:DQNExperiment"
    family: Literal["dqn"] = "dqn"
    agent: DQNAgentConfig = field(default_factory=DQNAgentConfig)

    def check_spaces(self, action_space: Any) -> None:
        import gymnasium as gym

        if not isinstance(action_space, gym.spaces.Discrete):
            raise UserError(f"env.id {self.env.id!r} has continuous actions ({action_space}); DQN needs a "
                            "Discrete action space: use family pg (PPO) for it, or a discrete env such as "
                            "CartPole-v1 or ALE/Pong-v5")


@dataclass
class PGConfig(DeepRLConfig):
    EXPERIMENT = "fewlabels.rl.pg:PGExperiment"
    family: Literal["pg"] = "pg"
    agent: PGAgentConfig = field(default_factory=PGAgentConfig)

    def check_spaces(self, action_space: Any) -> None:
        import gymnasium as gym

        if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise UserError(f"env.id {self.env.id!r} has a {type(action_space).__name__} action space; "
                            "policy gradients here take Discrete or Box actions")
