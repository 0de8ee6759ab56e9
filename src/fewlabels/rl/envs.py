"""Environments: ours (registered with Gymnasium under `fewlabels/...`) and a checked `make_env`
for any Gymnasium environment with discrete observations and actions."""

from __future__ import annotations

import warnings
from typing import Any

from fewlabels.errors import UserError

GRIDWORLD_ID = "fewlabels/GridWorld-v0"


def register_envs() -> None:
    """Register `fewlabels/GridWorld-v0` with Gymnasium (once)."""
    import gymnasium as gym

    if GRIDWORLD_ID not in gym.registry:
        gym.register(id=GRIDWORLD_ID, entry_point="fewlabels.rl.planning.gridworld:GridWorldEnv")


def make_env(env_id: str, kwargs: dict | None = None, max_episode_steps: int | None = None,
             render_mode: str | None = None, discrete: bool = True, where: str = "env.id") -> Any:
    """gymnasium.make, with a one-sentence error for an unknown id, a wrong keyword or a space
    that tabular methods cannot index (observations and actions must be Discrete)."""
    import gymnasium as gym

    register_envs()
    extra = dict(kwargs or {})
    if render_mode is not None:
        extra["render_mode"] = render_mode
    try:
        # Warnings are held back until the env exists: a refused id gets one line, not a warning too.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env = gym.make(env_id, max_episode_steps=max_episode_steps, **extra)
    except gym.error.Error as e:
        reason = " ".join(str(e).split())
        raise UserError(f"{where} {env_id!r} cannot be made ({reason}); give a registered Gymnasium id such as "
                        f"{GRIDWORLD_ID}, FrozenLake-v1, CliffWalking-v1 or Taxi-v4") from None
    except TypeError as e:
        raise UserError(f"env.kwargs {extra} do not fit {env_id} ({e})") from None
    except ModuleNotFoundError as e:  # e.g. an id that needs box2d or mujoco
        raise UserError(f"{where} {env_id!r} needs the package {e.name!r}, which is not installed") from None
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    if discrete and not (isinstance(env.observation_space, gym.spaces.Discrete)
                         and isinstance(env.action_space, gym.spaces.Discrete)):
        space = env.observation_space if not isinstance(env.observation_space, gym.spaces.Discrete) \
            else env.action_space
        env.close()
        shown = f"{type(space).__name__}{tuple(space.shape) if space.shape else ''}"
        raise UserError(f"{where} {env_id!r} has a {shown} space; tabular methods need Discrete observations "
                        "and actions (FrozenLake-v1, CliffWalking-v1, Taxi-v4, fewlabels/GridWorld-v0)")
    return env
