"""Denoising diffusion on points and images: one ε-prediction step for the generic loop
(fewlabels.loop), and the reverse process for samples and metrics."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fewlabels import files
from fewlabels.checkpoint import model_signature
from fewlabels.data.config import make_data
from fewlabels.diffusion import samplers
from fewlabels.diffusion.config import EVAL_SEED, SNAPSHOT_STEPS, DiffusionConfig, SamplerConfig
from fewlabels.diffusion.losses import draw_noise, simple_loss
from fewlabels.diffusion.nets import MLPDenoiser, UNet
from fewlabels.diffusion.schedules import NoiseSchedule
from fewlabels.distributed import average_gradients, shard
from fewlabels.metrics.samples import SampleMetrics
from fewlabels.optim import average_decay, linear_decay, set_learning_rate, update_average_

SAMPLE_CHUNK = 2500  # images are sampled in chunks of this many (bounded memory)
STRIP_T = (0, 50, 100, 200, 400, 600, 1000)  # times shown in the strips, for T = 1000 (scaled to T)


def build_data(cfg: DiffusionConfig):
    return make_data(cfg.data, cfg.seed, multiple=2 ** (len(cfg.model.mults) - 1))


def build_model(cfg: DiffusionConfig, data) -> nn.Module:
    m = cfg.model
    if m.name == "unet":
        return UNet(data.shape[0], m.channels, tuple(m.mults), m.blocks, m.attention, m.dropout)
    return MLPDenoiser(data.dim, m.width, m.depth, m.time_dim)


class DiffusionExperiment:
    def __init__(self, cfg: DiffusionConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.data = build_data(cfg)
        self.is_image = cfg.data.is_image
        self.data_shape = tuple(self.data.shape) if self.is_image else (self.data.dim,)
        s = cfg.schedule
        self.schedule = NoiseSchedule.make(s.name, s.T, s.beta_start, s.beta_end)
        self.model = build_model(cfg, self.data).to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False) if cfg.train.ema > 0 else None
        o = cfg.optim
        # fused=True: one kernel for all parameters (measured faster for small nets, DESIGN.md).
        self.opt = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay,
                                    fused=True)
        self._params = list(self.model.parameters())
        self._ema_params = list(self.ema.parameters()) if self.ema is not None else []
        # All training randomness (data, t, ε) comes from this stream; its state is checkpointed.
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        self.metrics = SampleMetrics(self.data, self.is_image, cfg.eval.samples, cfg.eval.emd_points, device,
                                     classifier=cfg.eval.classifier)

    # ---- training ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor]:
        cfg = self.cfg
        self._set_learning_rate(step)
        # Under torchrun every rank draws the global batch (images, t, ε) and keeps its slice, and
        # the gradients are averaged before the step (fewlabels.distributed, as for the GANs).
        x0 = self.data.sample(cfg.train.batch_size, self.gen)
        t, noise = draw_noise(self.schedule, x0, self.gen)
        loss = simple_loss(self.model, self.schedule, shard(x0), shard(t), shard(noise), cfg.model.prediction)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self._params)
        logs = {"loss": loss.detach()}
        if cfg.optim.grad_clip is not None:
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self._params, cfg.optim.grad_clip, foreach=True)
        self.opt.step()
        if self.ema is not None:
            # Warm-up as in the GAN trainer: early on the average would be the untrained net.
            update_average_(self._ema_params, self._params, average_decay(step, cfg.train.ema))
        return logs

    def _set_learning_rate(self, step: int) -> None:
        o, total = self.cfg.optim, self.cfg.train.horizon
        if o.warmup == 0 and o.final_lr_fraction == 1.0:
            return
        scale = min(1.0, step / o.warmup) if o.warmup else 1.0
        scale *= linear_decay(step, total, o.final_lr_fraction)
        set_learning_rate(self.opt, o.lr * scale)

    # ---- state -------------------------------------------------------------------------
    def signature(self) -> str:
        return model_signature(self.model)

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "gen": self.gen.get_state()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    # ---- the reverse process -----------------------------------------------------------
    @property
    def denoiser(self) -> nn.Module:
        """The network used for samples and metrics: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model

    def reverse(self, n: int, seed: int, sampler: SamplerConfig | None = None):
        """The reverse process from x_T ~ N(0, I): yields (t, x_t) after every step."""
        sc = sampler or self.cfg.sampler
        g = torch.Generator(self.device).manual_seed(seed)
        x = torch.randn((n, *self.data_shape), generator=g, device=self.device)
        model, pred = self.denoiser, self.cfg.model.prediction
        if sc.name == "ddpm":
            return samplers.ddpm_reverse(model, self.schedule, x, g, pred, sc.variance, sc.clip)
        return samplers.ddim_reverse(model, self.schedule, x, g, sc.steps, sc.eta, pred, sc.clip)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = EVAL_SEED, sampler: SamplerConfig | None = None) -> np.ndarray:
        """n samples in data space, float32 (n, *data_shape); drawn in chunks, each seeded."""
        chunks = [samplers.last(self.reverse(min(SAMPLE_CHUNK, n - i), seed + i, sampler)).float().cpu().numpy()
                  for i in range(0, n, SAMPLE_CHUNK)]
        return np.concatenate(chunks)

    @torch.inference_mode()
    def reverse_strip(self, n: int, seed: int, at: tuple[int, ...]) -> dict[int, np.ndarray]:
        """x_t of one reverse path at the requested times (paper's t: T is noise, 0 is data),
        from T down. A DDIM sampler visits only some times: each is shown at the first state
        at or below it."""
        out, wanted = {}, sorted(at, reverse=True)
        for t, x in self.reverse(n, seed):
            while wanted and t <= wanted[0]:
                out[wanted.pop(0)] = x.float().cpu().numpy()
        return out

    @torch.inference_mode()
    def forward_strip(self, x0: np.ndarray, at: tuple[int, ...], seed: int = EVAL_SEED) -> dict[int, np.ndarray]:
        """x_t ~ q(x_t | x_0) at the requested times (paper's t; 0 is x_0), one ε for all."""
        x = torch.from_numpy(x0).to(self.device)
        eps = torch.randn(x.shape, generator=torch.Generator(self.device).manual_seed(seed), device=self.device)
        out = {}
        for t in sorted(at):
            tt = torch.full((len(x),), max(t - 1, 0), device=self.device, dtype=torch.long)
            out[t] = x0 if t == 0 else self.schedule.q_sample(x, tt, eps).cpu().numpy()
        return out

    def strip_times(self) -> tuple[int, ...]:
        T = self.schedule.T
        return tuple(sorted({round(f * T / 1000) for f in STRIP_T}))

    # ---- evaluation --------------------------------------------------------------------
    def evaluate(self, sampler: SamplerConfig | None = None) -> dict[str, float]:
        t0 = time.perf_counter()
        fake = self.sample(self.metrics.count(), sampler=sampler)
        seconds = time.perf_counter() - t0
        out = self.metrics.score(fake)
        if self.is_image:
            out["sample_seconds"] = seconds
        return out

    def real_floor(self) -> dict[str, float]:
        return self.metrics.floor()

    # ---- pictures ----------------------------------------------------------------------
    @torch.inference_mode()
    def snapshot(self, step: int, folder: Path) -> None:
        """Samples at this step, for the report's grid over training. Drawn by DDIM with 50 steps
        (not the configured sampler): T network calls per snapshot would cost as much as a few
        hundred training steps on 2D data."""
        n = 64 if self.is_image else 1000
        sc = SamplerConfig(name="ddim", steps=SNAPSHOT_STEPS, clip=self.cfg.sampler.clip)
        pts = self.sample(n, seed=EVAL_SEED + 2, sampler=sc)
        files.save_npz_atomic(folder / f"snapshot_{step:09d}.npz", "sample snapshot", step=step, samples=pts)

    def plot_bounds(self) -> tuple[float, float]:
        held = self.data.holdout(1000)
        m = float(np.abs(held).max()) * 1.25 + 0.1
        return -m, m

    def report_sections(self, run) -> list:
        from fewlabels.diffusion.report import sections
        return sections(self, run)
