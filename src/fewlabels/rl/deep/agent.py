"""What DQN and the policy-gradient family share, written once: the vector environment and its
episode statistics, observation/reward normalisation, evaluation on a separate environment, the
report (learning curve and a GIF of one episode), and the state that goes into checkpoints.

A subclass adds its networks and optimiser, `train_step`, `act(obs, deterministic)` and
`_nets_state`/`_load_nets_state`. One `train_step` advances `steps_per_call` environment steps.

Resume: weights, optimiser, normalisers, replay buffer (DQN, unless `agent.save_replay` is
false), schedules and RNG streams come back from the checkpoint; the episodes that were in
progress do not (a simulator's state cannot be saved in general), so the environments start
fresh episodes from a seed derived from the step. The run continues; it is not bitwise the
uninterrupted run, unlike the GAN and diffusion runs.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import torch

from fewlabels.distributed import all_sum, per_rank, rank_seed, world_size
from fewlabels.errors import UserError
from fewlabels.rl.deep.normalize import ObservationNormalizer, RewardScaler
from fewlabels.rl.deep.vector import EpisodeTracker, make_single, make_vec, run_episodes

RECENT_EPISODES = 100  # `ep_return` is the mean of this many finished episodes (as SB3 logs it)
GIF_FRAMES = 150


class DeepAgent:
    steps_per_call = 1

    def __init__(self, cfg, device: torch.device):
        import gymnasium as gym

        self.cfg, self.device = cfg, device
        e = cfg.env
        # Under torchrun env.num_envs is the global count: each rank steps its share, seeded apart.
        self.num_envs = per_rank(e.num_envs, "env.num_envs")
        self.shared = world_size() > 1
        self.envs = make_vec(e, self.num_envs)
        self.obs_shape = tuple(self.envs.single_observation_space.shape)
        self.action_space = self.envs.single_action_space
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self.action_dim = int(self.action_space.n) if self.discrete else int(np.prod(self.action_space.shape))
        self.pixels = len(self.obs_shape) == 3
        self.obs_norm = (ObservationNormalizer(self.obs_shape, shared=self.shared)
                         if e.normalize_obs and not self.pixels else None)
        self.reward_scaler = (RewardScaler(self.num_envs, cfg.agent.gamma, shared=self.shared)
                              if e.normalize_reward else None)
        self.tracker = EpisodeTracker(self.num_envs)
        self.recent: deque = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0  # all ranks' (merged by sync_ranks)
        self._episodes_synced = 0
        self.env_steps = 0  # all ranks'
        self.obs = self.reset_envs(rank_seed(cfg.seed))
        self._eval_vec = None

    # ---- acting in the training environments -----------------------------------------
    def prepare(self, obs: np.ndarray, update: bool) -> np.ndarray:
        """Observations as the networks see them (normalised when asked; pixels stay uint8)."""
        return self.obs_norm(obs, update) if self.obs_norm is not None else obs

    def reset_envs(self, seed: int, update: bool = True) -> np.ndarray:
        obs, _ = self.envs.reset(seed=seed)
        self.tracker = EpisodeTracker(self.num_envs)
        return self.prepare(obs, update)

    def step_envs(self, actions: np.ndarray):
        """One vector step: (next obs as the nets see it, reward to learn from, terminated,
        truncated, valid). `valid` is False on NEXT_STEP reset steps (not transitions)."""
        obs, reward, terminated, truncated, _ = self.envs.step(actions)
        reward = np.asarray(reward, np.float64)
        valid = self.tracker.step(reward, terminated, truncated)
        finished = self.tracker.pop()
        if finished:
            self.recent.extend(finished)
            self.episodes += len(finished)
        self.env_steps += self.num_envs * world_size()
        learn = reward.astype(np.float32)
        if self.cfg.env.reward_clip is not None:
            learn = np.clip(learn, -self.cfg.env.reward_clip, self.cfg.env.reward_clip)
        if self.reward_scaler is not None:
            learn = self.reward_scaler(learn, (terminated | truncated) & valid)
        return self.prepare(obs, update=True), learn, terminated, truncated, valid

    def episode_logs(self) -> dict[str, float]:
        """The mean return and length of the last RECENT_EPISODES episodes (of every rank's under
        torchrun: every rank then logs the same keys, as `distributed.agree` needs)."""
        if self.shared:
            returns, lengths = zip(*self.recent) if self.recent else ((), ())
            ret, length, n = all_sum(torch.tensor([sum(returns), sum(lengths), len(returns)], dtype=torch.float64))
            if n == 0:
                return {}
            return {"ep_return": float(ret / n), "ep_length": float(length / n), "episodes": float(self.episodes)}
        if not self.recent:
            return {}
        returns, lengths = zip(*self.recent)
        return {"ep_return": float(np.mean(returns)), "ep_length": float(np.mean(lengths)),
                "episodes": float(self.episodes)}

    def sync_ranks(self) -> None:
        """Under torchrun, once per update on every rank: merge the normalisation statistics
        (Chan's parallel update) and count every rank's finished episodes, so that the state
        rank 0 checkpoints is that of all ranks."""
        if not self.shared:
            return
        for norm in (self.obs_norm, self.reward_scaler):
            if norm is not None:
                norm.rms.sync()
        new = all_sum(torch.tensor([self.episodes - self._episodes_synced], dtype=torch.float64))
        self.episodes = self._episodes_synced = self._episodes_synced + int(new.item())

    def as_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, device=self.device)

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    # ---- evaluation --------------------------------------------------------------------
    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        """Mean return of `episodes` (default eval.episodes) deterministic episodes on a separate,
        seeded environment: {mean_return, std_return, episodes}, the one RL evaluation schema
        (tabular runs give the same), logged by the loop and printed by `fewlabels eval`."""
        n = self.cfg.eval.episodes if episodes is None else int(episodes)
        if n < 1:
            raise UserError(f"--episodes is {n}; give a positive number of episodes")
        if self._eval_vec is None or self._eval_vec.num_envs != n:
            if self._eval_vec is not None:
                self._eval_vec.close()
            self._eval_vec = make_vec(self.cfg.env, n)
        returns = run_episodes(self._eval_vec, lambda obs: self.act(self.prepare(obs, update=False), True), n,
                               self.cfg.eval.seed)
        return {"mean_return": float(returns.mean()), "std_return": float(returns.std()), "episodes": n}

    def record_gif(self, path: Path) -> Path:
        """One deterministic evaluation episode (its first eval.gif_frames steps) rendered to
        an animated GIF."""
        import os

        from PIL import Image

        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen, without sound
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        env = make_single(self.cfg.env, render_mode="rgb_array")
        try:
            obs, _ = env.reset(seed=self.cfg.eval.seed)
            frames = [env.render()]
            for _ in range(self.cfg.eval.gif_frames - 1):
                action = self.act(self.prepare(np.asarray(obs)[None], update=False), True)[0]
                obs, _, terminated, truncated, _ = env.step(action)
                frames.append(env.render())
                if terminated or truncated:
                    break
        finally:
            env.close()
        # At most GIF_FRAMES frames of at most 240 px, so a 1,000-step MuJoCo episode stays a
        # few MB inside report.html; the frame time keeps the episode's real pace.
        every = max(1, -(-len(frames) // GIF_FRAMES))
        images = [Image.fromarray(np.asarray(f)) for f in frames[::every]]
        for im in images:
            im.thumbnail((240, 240))
        images[0].save(path, save_all=True, append_images=images[1:], duration=40 * every, loop=0)
        return path

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        raise UserError(f"{self.cfg.name or self.cfg.env.id} is an RL run; `fewlabels sample` is for generative "
                        "models; use `fewlabels evaluate RUN --episodes N`")

    def snapshot(self, step: int, folder: Path) -> None:
        pass  # the report draws metrics.jsonl and records its GIF at the end

    def report_sections(self, run) -> list:
        from fewlabels.rl.deep.report import sections

        return sections(self, run)

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"nets": self._nets_state(), "env_steps": self.env_steps, "episodes": self.episodes,
                 "recent": [list(r) for r in self.recent]}
        if self.obs_norm is not None:
            state["obs_norm"] = self.obs_norm.rms.state_dict()
        if self.reward_scaler is not None:
            state["reward_norm"] = self.reward_scaler.rms.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self._load_nets_state(state["nets"])
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self._episodes_synced = self.episodes
        self.recent = deque([(float(r), int(n)) for r, n in state["recent"]], maxlen=RECENT_EPISODES)
        if self.obs_norm is not None:
            self.obs_norm.rms.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.rms.load_state_dict(state["reward_norm"])
        # Fresh episodes from a seed derived from the step (see the module docstring); the
        # restored normalisation statistics are left exactly as saved.
        self.obs = self.reset_envs(rank_seed(self.cfg.seed + 1 + self.env_steps), update=False)
        if self.shared:  # the loop restored rank 0's streams on every rank: each draws apart again
            torch.manual_seed(rank_seed(self.cfg.seed + 1 + self.env_steps))

    def _nets_state(self) -> dict:
        raise NotImplementedError

    def _load_nets_state(self, state: dict) -> None:
        raise NotImplementedError
