"""Policy gradients, one family: REINFORCE, A2C and PPO share the acting, the advantage
estimate and the update; they differ in three lines (see `PGExperiment.update`).

A2C and PPO: one `train_step` = one rollout of `n_steps` vector steps, then the update(s).
Advantages are GAE(γ, λ) (Schulman et al. 2016): A_t = Σ_k (γλ)^k δ_{t+k},
δ_t = r_t + γ V(s_{t+1}) (1 - term_t) - V(s_t), cut at episode ends; on a truncation V(s_{t+1})
is the value of the true last observation (rl/deep/vector.py says why that is what NEXT_STEP
autoreset returns). An episode cut by the rollout's end is bootstrapped from V.

REINFORCE (Williams 1992) is Monte Carlo: G_t = Σ_{k≥t} γ^{k-t} r_k to the end of the episode,
never bootstrapped, so its batches hold whole episodes (`EpisodeBatch`): at least `n_steps` vector
steps, then every episode still running is played to its end, and the update follows. A
`train_step` is still `n_steps` vector steps (so `step` counts environment steps); a batch that
is not complete at its end is carried to the next call, under the same policy. A checkpoint
does not keep that unfinished batch: a resumed run restarts its environments (rl/deep/agent.py),
which would cut the batch's episodes short, so it starts a new batch instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fewlabels.checkpoint import model_signature
from fewlabels.distributed import average_gradients, per_rank, rank_seed, standardise, world_size
from fewlabels.rl.deep import mlp_grad
from fewlabels.rl.deep.agent import DeepAgent
from fewlabels.rl.deep.config import PGConfig
from fewlabels.rl.deep.nets import ActorCritic


def gae(rewards: np.ndarray, values: np.ndarray, last_value: np.ndarray, terminated: np.ndarray,
        dones: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates, (T, N) in and out (NumPy: T small steps of 8 numbers are
    cheaper there than as torch ops). values[t] = V(s_t); the value after the last step is
    last_value. terminated stops bootstrapping; dones (terminated or truncated) stop the sum
    running into the next episode."""
    adv = np.zeros_like(rewards)
    next_adv, next_value = np.zeros_like(last_value), last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_value * (1.0 - terminated[t]) - values[t]
        next_adv = delta + gamma * lam * (1.0 - dones[t]) * next_adv
        adv[t] = next_adv
        next_value = values[t]
    return adv


def reward_to_go(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + γ (1 - done_t) G_{t+1} = Σ_{k=t}^{end} γ^{k-t} r_k, (T, N) in and out. The
    sum stops at the end of the episode, terminated or truncated (a Monte Carlo return has
    nothing to bootstrap from); the rows after a sub-environment's last episode end are
    not used. It is GAE with λ = 1 and no critic (V = 0, nothing bootstrapped), so it is written as that."""
    zeros = np.zeros_like(rewards)
    return gae(rewards, zeros, zeros[0], dones, dones, gamma, 1.0)


class EpisodeBatch:
    """REINFORCE's batch of whole episodes, filled one vector step at a time.

    The first `n_steps` steps are all kept (minus NEXT_STEP reset steps). The episodes still
    running after them are played to their ends and kept. A sub-environment whose episode has
    ended meanwhile must still step (a vector env steps all of them); those steps start an
    episode that is left out here and picked up, from where it is, by the next batch: its G_t
    only look forward, so they are collected under the next policy. Which steps are kept never
    depends on how long an episode turns out to be, only on when it started, so short
    episodes are not favoured."""

    def __init__(self, n_steps: int):
        self.n_steps = n_steps
        self.steps: list[tuple] = []
        self.running: np.ndarray | None = None  # after n_steps: the sub-environments still in their episode

    def add(self, *step, done: np.ndarray, valid: np.ndarray) -> list[tuple] | None:
        """Record one vector step (`step`: per-sub-environment arrays or tensors, then done and
        valid); return the whole batch, as (..., done, kept) tuples, once it is complete."""
        kept = valid.copy()
        if self.running is not None:
            kept &= self.running
            self.running = self.running & ~done
        self.steps.append((*step, done, kept))
        if self.running is None and len(self.steps) >= self.n_steps:
            self.running = valid & ~done
        if self.running is None or self.running.any():
            return None
        batch, self.steps, self.running = self.steps, [], None
        return batch


def policy_loss(algo: str, logp: Tensor, old_logp: Tensor, adv: Tensor, clip: float) -> Tensor:
    """REINFORCE and A2C: L = -E[log π(a|s) Â] (one step per rollout, so π = π_old).
    PPO (Schulman et al. 2017): L = -E[min(ρ Â, clip(ρ, 1 - ε, 1 + ε) Â)], ρ = π(a|s) / π_old(a|s)."""
    if algo != "ppo":
        return -(logp * adv).mean()
    ratio = (logp - old_logp).exp()
    return -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()


def value_loss(value: Tensor, old_value: Tensor, returns: Tensor, clip: float | None) -> Tensor:
    """E[(V(s) - R)^2]; with `clip`, PPO's pessimistic max((V - R)^2, (V_old + clip(V - V_old, ±c) - R)^2)."""
    loss = (value - returns) ** 2
    if clip is not None:
        clipped = old_value + (value - old_value).clamp(-clip, clip)
        loss = torch.max(loss, (clipped - returns) ** 2)
    return loss.mean()


class PGExperiment(DeepAgent):
    def __init__(self, cfg: PGConfig, device: torch.device):
        super().__init__(cfg, device)
        a = cfg.agent
        self.steps_per_call = a.n_steps * self.num_envs * world_size()  # environment steps of all ranks
        self.net = ActorCritic(self.obs_shape, self.action_dim, self.discrete, a.hidden, a.activation,
                               a.log_std_init, a.ortho_init).to(device)
        if a.optimizer == "rmsprop":  # A2C's original optimiser (SB3's defaults)
            self.opt = torch.optim.RMSprop(self.net.parameters(), lr=a.lr, alpha=0.99, eps=1e-5)
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=a.lr, eps=1e-5, fused=device.type == "cpu")
        self._params = list(self.net.parameters())
        self.uses_critic = a.algo != "reinforce" or a.baseline
        self.whole_episodes = EpisodeBatch(a.n_steps) if a.algo == "reinforce" else None
        if not self.discrete:
            self.low = self.action_space.low
            self.high = self.action_space.high
        # Under torchrun: this rank's share of the minibatch, and its own action noise (the
        # weights above were drawn alike on every rank, from the same seed).
        self.minibatch_size = per_rank(a.minibatch_size, "agent.minibatch_size") if a.algo == "ppo" else None
        if self.shared:
            torch.manual_seed(rank_seed(cfg.seed))

    # ---- acting --------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        actions = self.net.act(self.as_tensor(obs), deterministic).cpu().numpy()
        return actions if self.discrete else np.clip(actions, self.low, self.high)

    @torch.no_grad()
    def act_and_step(self) -> tuple:
        """One vector step under the current policy: (the observation as a tensor, action,
        log π(a|s), V(s), reward, terminated, done, valid); self.obs moves on."""
        x = self.as_tensor(self.obs)
        action, logp, value = self.net.sample(x)
        env_action = action.cpu().numpy()
        if not self.discrete:
            env_action = np.clip(env_action, self.low, self.high)
        self.obs, reward, term, trunc, valid = self.step_envs(env_action)
        return x, action, logp, value, reward, term, term | trunc, valid

    @torch.no_grad()  # not inference_mode: the rollout's tensors are the update's inputs
    def rollout(self) -> dict[str, Tensor]:
        """A2C and PPO: `n_steps` vector steps, advantages by GAE(γ, λ)."""
        T, N, dev = self.cfg.agent.n_steps, self.num_envs, self.device
        obs_dtype = torch.uint8 if self.pixels else torch.float32
        obs_buf = torch.empty((T, N, *self.obs_shape), dtype=obs_dtype, device=dev)
        act_buf = torch.empty((T, N) if self.discrete else (T, N, self.action_dim),
                              dtype=torch.long if self.discrete else torch.float32, device=dev)
        logp_buf, val_buf = torch.zeros((T, N), device=dev), torch.zeros((T, N), device=dev)
        # Environment outputs stay in NumPy, where they come from; GAE runs there too.
        rewards, terminated, dones, valid = (np.zeros((T, N), np.float32) for _ in range(4))
        for t in range(T):
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t], rewards[t], terminated[t], dones[t], valid[t] = \
                self.act_and_step()
        a = self.cfg.agent
        values, last_value = val_buf.cpu().numpy(), self.net.value(self.as_tensor(self.obs)).cpu().numpy()
        adv = torch.from_numpy(gae(rewards, values, last_value, terminated, dones, a.gamma, a.gae_lambda)).to(dev)
        keep = torch.from_numpy(valid.reshape(-1) > 0).to(dev)  # NEXT_STEP reset steps are not transitions
        flat = lambda x: x.flatten(0, 1)[keep]  # noqa: E731
        return {"obs": flat(obs_buf), "actions": flat(act_buf), "logp": flat(logp_buf), "values": flat(val_buf),
                "advantages": flat(adv), "returns": flat(adv + val_buf)}

    def episode_batch(self, steps: list[tuple]) -> dict[str, Tensor]:
        """REINFORCE's update input from a complete `EpisodeBatch`: returns G_t (reward to go
        to the episode's end) and advantages G_t - V(s_t) with the baseline, G_t without."""
        columns = list(zip(*steps))  # (obs, action, log π, V, reward, done, kept), one row per vector step
        obs, actions, logp, values = (torch.stack(c) for c in columns[:4])
        rewards, dones, kept = (np.stack(c) for c in columns[4:])
        dev = self.device
        returns = torch.from_numpy(reward_to_go(rewards, dones.astype(np.float32), self.cfg.agent.gamma)).to(dev)
        if not self.uses_critic:
            values = torch.zeros_like(values)
        keep = torch.from_numpy(kept.reshape(-1)).to(dev)
        flat = lambda x: x.flatten(0, 1)[keep]  # noqa: E731
        return {"obs": flat(obs), "actions": flat(actions), "logp": flat(logp), "values": flat(values),
                "advantages": flat(returns - values), "returns": flat(returns)}

    # ---- learning ------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor | float]:
        a, total = self.cfg.agent, self.cfg.train.horizon
        remaining = max(0.0, 1.0 - (step - self.steps_per_call) / total)  # SB3's progress_remaining
        lr = a.lr * remaining if a.anneal_lr else a.lr
        for group in self.opt.param_groups:
            group["lr"] = lr
        clip = a.clip * remaining if a.anneal_clip else a.clip
        if self.whole_episodes is None:
            logs = self.update(self.rollout(), clip)
        else:  # REINFORCE: n_steps vector steps; an update whenever a batch of whole episodes is complete
            logs = {}
            for _ in range(a.n_steps):
                x, action, logp, value, reward, term, done, valid = self.act_and_step()
                # x may share memory with the environment's output; the batch outlives this step.
                steps = self.whole_episodes.add(x.clone(), action, logp, value, reward, done=done, valid=valid)
                if steps is not None:
                    logs = self.update(self.episode_batch(steps), clip)
        self.sync_ranks()
        return {**logs, "lr": lr, **self.episode_logs()}

    def update(self, batch: dict[str, Tensor], clip: float) -> dict[str, Tensor]:
        """PPO: `epochs` passes of shuffled minibatches; REINFORCE and A2C: one step on the rollout."""
        a = self.cfg.agent
        n = batch["obs"].shape[0]
        epochs, size = (a.epochs, self.minibatch_size) if a.algo == "ppo" else (1, n)
        # Under torchrun every rank must take the same number of minibatches (each is one gradient
        # all-reduce), though NEXT_STEP reset steps leave each rank a few samples fewer: the count
        # comes from the nominal rollout, n_steps x this rank's environments.
        nominal = a.n_steps * self.num_envs if self.shared else n
        whole = a.algo != "ppo" or size >= nominal
        if a.normalize_advantage and (n > 1 or self.shared) and whole:  # one minibatch: normalise once
            batch = {**batch, "advantages": standardise(batch["advantages"])}
        sums, count = torch.zeros(4), 0
        for _ in range(epochs):
            # One minibatch is the whole rollout: a mean over it does not depend on the order.
            if whole:
                parts = [None]
            elif self.shared:
                parts = torch.randperm(n, device=self.device).tensor_split(-(-nominal // size))
            else:
                parts = torch.randperm(n, device=self.device).split(size)
            for idx in parts:
                mb = batch if idx is None else {k: v[idx] for k, v in batch.items()}
                adv = mb["advantages"]
                if a.normalize_advantage and idx is not None and (len(idx) > 1 or self.shared):
                    adv = standardise(adv)  # over all ranks' part of the minibatch
                self.opt.zero_grad(set_to_none=True)
                losses = self.loss_and_grads(mb, adv, clip)
                average_gradients(self._params)  # under torchrun: the mean over ranks, as one process of them all
                if a.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self._params, a.max_grad_norm, foreach=True)
                self.opt.step()
                sums += torch.stack(losses)
                count += 1
        pg, vf, ent, kl = (sums / count).tolist()
        return {"policy_loss": pg, "value_loss": vf, "entropy": ent, "approx_kl": kl}

    def loss_and_grads(self, mb: dict[str, Tensor], adv: Tensor, clip: float) -> tuple[Tensor, ...]:
        """L = L_π - c_H mean H + c_V L_V on a minibatch: set the gradients, return the detached
        (L_π, L_V, mean H, approx KL(π_old ‖ π)). Vector observations: the hand-written
        gradient of rl/deep/mlp_grad.py (same numbers, half the time); pixels: autograd."""
        a = self.cfg.agent
        clip_value = a.clip_value if a.algo == "ppo" else None
        if not self.pixels:
            return mlp_grad.loss_and_grads(self.net, mb, adv, a.algo, clip, clip_value, a.ent_coef, a.vf_coef,
                                           self.uses_critic)
        logp, entropy, value = self.net.evaluate_actions(mb["obs"], mb["actions"])
        entropy = entropy.mean()
        pg = policy_loss(a.algo, logp, mb["logp"], adv, clip)
        vf = value_loss(value, mb["values"], mb["returns"], clip_value) if self.uses_critic else torch.zeros(())
        (pg - a.ent_coef * entropy + a.vf_coef * vf).backward()
        with torch.no_grad():
            kl = (mb["logp"] - logp).mean()
        return pg.detach(), vf.detach(), entropy.detach(), kl

    # ---- state ---------------------------------------------------------------------------
    def signature(self) -> str:
        return f"{self.cfg.env.id}:{self.cfg.agent.algo}:{model_signature(self.net)}"

    def _nets_state(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def _load_nets_state(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
