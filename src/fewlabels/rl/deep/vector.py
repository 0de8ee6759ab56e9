"""Vector environments for deep RL, on Gymnasium 1.x.

Autoreset: Gymnasium 1.x vector environments reset a finished sub-environment on the *next*
call to `step` (AutoresetMode.NEXT_STEP), the mode every vector env supports, the fast
vectorised CartPole included. Two consequences, handled here once for every algorithm:
  * the step that ends an episode returns the true last observation, so a *truncated*
    episode (a time limit, not a failure) is bootstrapped from V(s_last) or max_a Q(s_last, a);
    a *terminated* one is not;
  * the step after it is a reset step: its action is ignored and it yields the first
    observation of the next episode with reward 0. It is not a transition and is masked out
    (`EpisodeTracker.step` returns the mask). It still counts as an environment step.

Atari: ale-py's ROMs ship in its wheel; frames go through AtariPreprocessing (no-op starts,
frame skip 4 with max-pooling, 84x84 grey) and FrameStackObservation(4): uint8 (4, 84, 84).
MuJoCo (Hopper-v5, HalfCheetah-v5) needs the `mujoco` extra.
"""

from __future__ import annotations

import importlib
import os
from functools import partial
from typing import Any

import numpy as np

from fewlabels.errors import UserError
from fewlabels.rl.envs import make_env

EXTRAS = {"ale_py": "atari", "mujoco": "mujoco"}  # module -> pyproject extra that installs it


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def required_module(env_id: str) -> str | None:
    """The optional module an environment id needs, if any."""
    if is_atari(env_id):
        return "ale_py"
    import gymnasium as gym

    spec = gym.registry.get(env_id)
    if spec is not None and "mujoco" in str(spec.entry_point):
        return "mujoco"
    return None


def import_extra(env_id: str, where: str = "env.id") -> None:
    """Import (and for Atari, register) what `env_id` needs, or say which extra installs it."""
    module = required_module(env_id)
    if module is None:
        return
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering for the report's GIF
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        extra = EXTRAS[module]
        raise UserError(f"{where} {env_id!r} needs the {extra!r} extra, which is not installed; "
                        f"run: pip install -e '.[{extra}]' (make test installs it)") from None
    if module == "ale_py":
        import gymnasium as gym

        gym.register_envs(mod)


def make_single(env: Any, render_mode: str | None = None) -> Any:
    """One environment as the config describes it (`env` is an rl.deep.config.VecEnvConfig)."""
    import_extra(env.id)
    if not is_atari(env.id):
        return make_env(env.id, env.kwargs, env.max_episode_steps, render_mode=render_mode, discrete=False)
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    # frameskip=1 in the ALE: AtariPreprocessing skips 4 frames itself and max-pools the last two.
    base = make_env(env.id, {"frameskip": 1, **env.kwargs}, env.max_episode_steps, render_mode=render_mode,
                    discrete=False)
    a = env.atari
    try:
        wrapped = AtariPreprocessing(base, noop_max=a.noop_max, frame_skip=a.frame_skip, screen_size=84,
                                     terminal_on_life_loss=a.terminal_on_life_loss, grayscale_obs=True)
    except gym.error.DependencyNotInstalled:  # OpenCV resizes the frames
        base.close()
        raise UserError(f"env.id {env.id!r} needs the 'atari' extra (ale-py and OpenCV for the frame "
                        "preprocessing), which is not fully installed; run: pip install -e '.[atari]'") from None
    return FrameStackObservation(wrapped, a.frame_stack)


def make_vec(env: Any, num_envs: int) -> Any:
    """A vector environment with NEXT_STEP autoreset (see the module docstring)."""
    import gymnasium as gym
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    import_extra(env.id)
    mode = env.vectorization
    if mode == "auto":  # the env's own vectorised implementation when it has one (CartPole: ~2x faster)
        spec = gym.registry.get(env.id)
        mode = "native" if spec is not None and spec.vector_entry_point is not None and not is_atari(env.id) \
            else "sync"
    if mode == "native":
        extra = dict(env.kwargs)
        if env.max_episode_steps is not None:
            extra["max_episode_steps"] = env.max_episode_steps
        return gym.make_vec(env.id, num_envs=num_envs, vectorization_mode="vector_entry_point", **extra)
    fns = [partial(make_single, env) for _ in range(num_envs)]
    cls = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return cls(fns, autoreset_mode=AutoresetMode.NEXT_STEP)


class EpisodeTracker:
    """Returns and lengths of finished episodes, per sub-environment, from raw rewards (Atari
    scores before any clipping), and the mask of real transitions (NEXT_STEP reset steps out)."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, np.int64)
        self.after_done = np.zeros(num_envs, bool)
        self.finished: list[tuple[float, int]] = []

    def step(self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        valid = ~self.after_done
        self.returns += np.where(valid, reward, 0.0)
        self.lengths += valid
        done = (terminated | truncated) & valid
        for i in np.flatnonzero(done):
            self.finished.append((float(self.returns[i]), int(self.lengths[i])))
        self.returns[done] = 0.0
        self.lengths[done] = 0
        self.after_done = done
        return valid

    def pop(self) -> list[tuple[float, int]]:
        out, self.finished = self.finished, []
        return out


def run_episodes(vec: Any, act, episodes: int, seed: int) -> np.ndarray:
    """Returns of the first episode of each of `episodes` sub-environments of `vec` (which has
    exactly that many), acting with act(obs) -> actions. Seeded, so every call sees the same starts."""
    obs, _ = vec.reset(seed=seed)
    tracker = EpisodeTracker(episodes)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        obs, reward, terminated, truncated, _ = vec.step(act(obs))
        before = tracker.returns.copy()
        valid = tracker.step(np.asarray(reward, np.float64), terminated, truncated)
        done = (terminated | truncated) & valid & np.isnan(returns)
        returns[done] = before[done] + np.asarray(reward, np.float64)[done]
    return returns
