"""The adversarial game, on points (MLPs) or images (DCGAN-style nets): one alternating step for
every loss and Lipschitz constraint of the lecture. The generic loop (fewlabels.train) does the rest."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fewlabels.checkpoint import model_signature
from fewlabels.data.config import make_data
from fewlabels.distributed import average_gradients, shard
from fewlabels.gan import progan
from fewlabels.gan.config import GANConfig
from fewlabels.gan.lipschitz import add_spectral_norm, clip_weights_, gradient_penalty, r1_penalty
from fewlabels.gan.losses import LOSSES
from fewlabels.gan.nets import DCGANDiscriminator, DCGANGenerator, mlp
from fewlabels.metrics.samples import SampleMetrics

EVAL_SEED = 2024  # fixed noise for evaluation: never drawn from the training streams (FLOOR_SEED = +1)


def _set_requires_grad(params: list[Tensor], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


class GANExperiment:
    def __init__(self, cfg: GANConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.data = make_data(cfg.data, cfg.seed)
        self.is_image = cfg.data.is_image
        m = cfg.model
        self.progressive = m.name == "progan"
        if self.progressive:
            self.G = progan.ProGenerator(m.z_dim, self.data.shape, m.channels).to(device)
            self.D = progan.ProDiscriminator(self.data.shape, m.channels)
        elif self.is_image:
            self.G = DCGANGenerator(m.z_dim, self.data.shape, m.channels).to(device)
            self.D = DCGANDiscriminator(self.data.shape, m.channels)
        else:
            self.G = mlp(m.z_dim, self.data.dim, m.width, m.depth, m.activation).to(device)
            self.D = mlp(self.data.dim, 1, m.width, m.depth, m.activation)
        if cfg.loss.constraint == "sn":
            add_spectral_norm(self.D)
        self.D.to(device)
        if cfg.train.channels_last:
            for net in (self.G, self.D):
                net.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.train.ema > 0 else None
        # What the step calls: the same modules, compiled when asked (weights and state stay in G, D).
        self._G, self._D = self.G, self.D
        if cfg.train.compile:
            if self.progressive:  # one graph per stage, and D's twice (inputs with and without grad)
                torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit,
                                                           4 * self.G.levels + 4)
            self._G, self._D = torch.compile(self.G), torch.compile(self.D)
        self.stage = (self.G.levels, 1.0) if self.progressive else None
        self.opt_G = self._optimizer(self.G, cfg.optim.lr_g)
        self.opt_D = self._optimizer(self.D, cfg.optim.lr_d)
        self.d_loss, self.g_loss = LOSSES[cfg.loss.name]
        # Cached once: walking the module tree every step (requires_grad_, parameters()) costs
        # about a tenth of a small step.
        self._d_params = list(self.D.parameters())
        self._g_params = list(self.G.parameters())
        self._ema_params = list(self.G_ema.parameters()) if self.G_ema is not None else []
        # Batch-norm running statistics are copied into the EMA generator, not averaged.
        self._g_buffers = list(self.G.buffers())
        self._ema_buffers = list(self.G_ema.buffers()) if self.G_ema is not None else []
        # All training randomness (data, z, GP's ε) comes from this stream; its state is checkpointed.
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        e = cfg.eval
        self.metrics = SampleMetrics(self.data, self.is_image, e.samples, e.emd_points, device, e.extractor,
                                     e.classifier, e.inception)

    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        if o.name == "rmsprop":  # the WGAN paper's choice (momentum-based optimisers were unstable)
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        # fused=True: one kernel for all parameters instead of ~10 small ops each (measured faster).
        return torch.optim.Adam(net.parameters(), lr=lr, betas=o.betas, fused=True)

    # ---- the game ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor]:
        cfg, B = self.cfg, self.cfg.train.batch_size
        self._set_learning_rates(step)
        if self.progressive:  # the stage follows from the images shown so far: resume continues mid-fade-in
            self._set_stage(*progan.stage_at((step - 1) * B * cfg.train.n_critic, self.G.levels,
                                             cfg.model.phase_images))
        for _ in range(cfg.train.n_critic):
            # Under torchrun every rank draws the global batch and keeps its slice (fewlabels.distributed).
            real = shard(self.data.sample(B, self.gen))
            if self.progressive:
                real = progan.real_at_stage(real, *self.stage, self.G.levels)
            if cfg.train.channels_last:
                real = real.contiguous(memory_format=torch.channels_last)
            z = shard(torch.randn(B, cfg.model.z_dim, generator=self.gen, device=self.device))
            with self._precision():
                fake = self._G(z)
                loss_d, logs = self._discriminator_loss(real, fake)
            self.opt_D.zero_grad(set_to_none=True)
            loss_d.backward()
            average_gradients(self._d_params)
            self.opt_D.step()
            if cfg.loss.constraint == "clip":
                clip_weights_(self.D, cfg.loss.clip)

        # G's turn, on the last fake batch (as PyTorch's DCGAN example does): its graph through G
        # is intact and G has not moved since. D's weights are frozen so backward skips their grads.
        _set_requires_grad(self._d_params, False)
        with self._precision():
            loss_g = self.g_loss(self._D(fake).float())
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        average_gradients(self._g_params)
        self.opt_G.step()
        _set_requires_grad(self._d_params, True)
        if self.G_ema is not None:
            # Warm-up (as TensorFlow's ExponentialMovingAverage with num_updates): early on the
            # average would otherwise be dominated by the untrained generator.
            decay = min(cfg.train.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(self._ema_params, self._g_params, 1 - decay)
                if self._ema_buffers:
                    torch._foreach_copy_(self._ema_buffers, self._g_buffers)
        logs["loss_g"] = loss_g.detach()
        return logs

    def _discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.cfg.loss
        D_real = self._D
        if c.r1_weight > 0:  # R1 differentiates ∇D(real): that forward must be the eager module's
            real.requires_grad_(True)
            D_real = self.D
        d_real, d_fake = D_real(real).float(), self._D(fake.detach()).float()
        loss = self.d_loss(d_real, d_fake)
        logs = {"loss_d": loss.detach()}
        if c.name == "wasserstein":
            logs["w_estimate"] = (d_real.mean() - d_fake.mean()).detach()
        if c.constraint == "gp":
            eps = torch.rand(self.cfg.train.batch_size, generator=self.gen, device=self.device)
            gp = gradient_penalty(self.D, real, fake.detach(), shard(eps))
            loss = loss + c.gp_weight * gp
            logs["gradient_penalty"] = gp.detach()
        if c.drift > 0:
            loss = loss + c.drift * (d_real ** 2).mean()
        if c.r1_weight > 0:
            r1 = r1_penalty(d_real, real)
            loss = loss + 0.5 * c.r1_weight * r1
            logs["r1"] = r1.detach()
        return loss, logs

    def _set_stage(self, level: int, alpha: float) -> None:
        self.stage = (level, alpha)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                net.set_stage(level, alpha)

    def _precision(self):
        if self.cfg.train.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _set_learning_rates(self, step: int) -> None:
        o = self.cfg.optim
        if o.final_lr_fraction == 1.0:
            return
        scale = 1.0 - (1.0 - o.final_lr_fraction) * (step - 1) / max(1, self.cfg.train.steps - 1)
        for opt, lr in ((self.opt_G, o.lr_g), (self.opt_D, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    # ---- state -------------------------------------------------------------------------
    def signature(self) -> str:
        return model_signature(self.G, self.D)

    def state_dict(self) -> dict:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_G": self.opt_G.state_dict(),
                 "opt_D": self.opt_D.state_dict(), "gen": self.gen.get_state()}
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if self.progressive:
            state["stage"] = [int(self.stage[0]), float(self.stage[1])]
        return state

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.gen.set_state(state["gen"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        if self.progressive:
            self._set_stage(int(state["stage"][0]), float(state["stage"][1]))

    # ---- sampling and evaluation -------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and metrics: the EMA copy when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    @torch.inference_mode()
    def sample(self, n: int, seed: int = EVAL_SEED) -> np.ndarray:
        """n samples in data space: points (n, D) or images (n, C, H, W) in [-1, 1]."""
        g = torch.Generator(self.device).manual_seed(seed)
        z = torch.randn(n, self.cfg.model.z_dim, generator=g, device=self.device)
        net = self.sampler
        was_training = net.training
        net.eval()  # batch norm from running statistics: a sample does not depend on its batch
        try:
            out = net(z).float()
            if self.progressive and out.shape[-1] != self.data.shape[-1]:  # a lower stage, shown at full size
                out = torch.nn.functional.interpolate(out, size=self.data.shape[1:], mode="nearest")
            return out.cpu().numpy()
        finally:
            net.train(was_training)

    def real_floor(self) -> dict[str, float]:
        return self.metrics.floor()

    def evaluate(self) -> dict[str, float]:
        return self.metrics.score(self.sample(self.metrics.count()))

    @torch.inference_mode()
    def snapshot(self, step: int, folder: Path) -> None:
        """Samples (and for 2D data D's landscape) at this step, for the report's grid over training."""
        if self.is_image:
            level = self.stage[0] if self.progressive else -1
            np.savez(folder / f"snapshot_{step:09d}.npz", step=step, samples=self.sample(64, seed=EVAL_SEED + 2),
                     level=level, alpha=self.stage[1] if self.progressive else 1.0)
            return
        if self.data.dim != 2:
            return
        pts = self.sample(1000, seed=EVAL_SEED + 2)
        lo, hi = self.plot_bounds()
        axis = np.linspace(lo, hi, 80, dtype=np.float32)
        grid = np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
        heat = self.D(torch.from_numpy(grid).to(self.device)).float().cpu().numpy().reshape(80, 80)
        if self.cfg.loss.name in ("minimax", "nonsaturating"):
            heat = 1 / (1 + np.exp(-heat))  # D(x) as a probability
        np.savez(folder / f"snapshot_{step:09d}.npz", step=step, samples=pts, heat=heat, lo=lo, hi=hi)

    def plot_bounds(self) -> tuple[float, float]:
        held = self.data.holdout(1000)
        m = float(np.abs(held).max()) * 1.25 + 0.1
        return -m, m

    def report_sections(self, run) -> list:
        from fewlabels.gan.report import sections
        return sections(self, run)
