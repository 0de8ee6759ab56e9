"""The tabular RL config (family `tabular`): every default visible here; YAML files under
configs/rl/ are small diffs. One training step is one episode: `train.steps` counts episodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fewlabels.config import LoopConfig, loop_default
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
class TrainConfig(LoopConfig):
    steps: int = loop_default("steps", 500)  # episodes
    log_every: int = loop_default("log_every", 10)  # `return_mean` averages these episodes
    eval_every: int = loop_default("eval_every", 0)
    snapshot_every: int = loop_default("snapshot_every", 0)  # Q tables for the report
    checkpoint_every: int = loop_default("checkpoint_every", 1000)


@dataclass
class EvalConfig:
    episodes: int = field(default=100, metadata={"ge": 1})  # greedy-policy episodes per evaluation
    seed: int = 2024  # evaluation episodes use their own environment and seed, never training's
    max_steps: int = field(default=1000, metadata={"ge": 1})  # a greedy policy may loop forever


@dataclass
class TabularConfig:
    EXPERIMENT = "fewlabels.rl.tabular.trainer:TabularExperiment"
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
            from fewlabels.rl.planning.gridworld import GridMDP, grid_from_kwargs

            grid = grid_from_kwargs(self.env.kwargs, "env.kwargs")
            try:
                GridMDP(grid, self.agent.gamma)
            except UserError as e:
                raise UserError(f"env.kwargs: {e}") from None
        else:  # refuse an unknown id or a continuous space now, before a run directory exists
            from fewlabels.rl.envs import make_env

            make_env(self.env.id, self.env.kwargs, self.env.max_episode_steps).close()
