"""The adversarial game, on points (MLPs) or images (DCGAN-style nets): one alternating step for
every loss and Lipschitz constraint of the lecture. The generic loop (fewlabels.loop) does the rest."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fewlabels import files
from fewlabels.checkpoint import model_signature
from fewlabels.data.config import make_data
from fewlabels.distributed import average_gradients, shard
from fewlabels.errors import UserError
from fewlabels.gan.biggan_parts import add_orthogonal_gradient_, check_truncation, truncated_normal
from fewlabels.gan.config import GANConfig
from fewlabels.gan.lipschitz import add_spectral_norm, clip_weights_, gradient_penalty, r1_penalty
from fewlabels.gan.losses import LOSSES
from fewlabels.gan.nets import batch_norms, build_players, progan, spectral_norm_estimates_, standing_statistics_
from fewlabels.metrics.samples import SampleMetrics
from fewlabels.optim import average_decay, linear_decay, set_learning_rate, update_average_

EVAL_SEED = 2024  # fixed noise for evaluation: never drawn from the training streams (FLOOR_SEED = +1)
STANDING_SEED = EVAL_SEED + 3  # z for the EMA generator's batch-norm statistics (+2: snapshots)
STANDING_BATCHES = 16
SAMPLE_CHUNK = 1000
SN_ITERATIONS = 50  # power iterations for the EMA generator's spectral norms (warm-started)


def _mean_of(chunks: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The logged values of an accumulated update: each key's mean over its chunks (with one chunk,
    the values themselves: no work added to the step)."""
    if len(chunks) == 1:
        return chunks[0]
    return {key: torch.stack([c[key] for c in chunks]).mean() for key in chunks[0]}


def _chunks(x: Tensor | None, k: int) -> list[Tensor | None]:
    """This rank's slice of a global batch, in k chunks (k Nones for the labels of an unconditional run)."""
    return [None] * k if x is None else list(shard(x).chunk(k))


def _call(net: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """net(x), or net(x, y) with the labels of a conditional run."""
    return net(x) if y is None else net(x, y)


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
        self.conditional = m.conditional
        if self.conditional:  # G's labels: uniform, or drawn as the data has them
            freq = self.data.class_frequencies()  # one sentence if the data has no labels
            self.classes = len(freq)
            probs = np.full(self.classes, 1 / self.classes) if m.labels == "uniform" else freq
            self.label_probs = torch.as_tensor(probs, dtype=torch.float32, device=device)
        G, self.D = build_players(m, self.data)  # gan/nets/: one module per architecture
        self.G = G.to(device)
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
            # One graph per stage and grad mode (D: inputs with and without grad; G: the critic's
            # fakes without grad, G's step's with), so a ProGAN needs 2·(2·levels + 1) of each.
            if self.progressive:
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
        # Spectral norm in G (BigGAN): the EMA copy's power-iteration vectors u, v start from G's,
        # copied every step, and are refined on the EMA weights before it samples or is saved
        # (_refresh_standing_statistics); in eval mode its own would never move.
        self._sn_pairs = [] if self.G_ema is None else [
            (b_ema, b) for (name, b_ema), (_, b) in zip(self.G_ema.named_buffers(), self.G.named_buffers())
            if name.endswith(("._u", "._v"))]
        # BigGAN's orthogonal regularisation: G's matrices and kernels, not its class embeddings.
        embeddings = {id(p) for mod in self.G.modules() if isinstance(mod, nn.Embedding) for p in mod.parameters()}
        self._ortho_params = [p for p in self._g_params if p.dim() >= 2 and id(p) not in embeddings]
        # The EMA generator's batch norm needs statistics of its own activations: G's running
        # statistics describe other weights. They are recomputed when the EMA has moved since
        # ("standing statistics"), before the EMA generator samples or is saved.
        self._ema_has_norms = self.G_ema is not None and bool(batch_norms(self.G_ema))
        self._standing_for: float | None | str = "stale"  # the truncation the EMA state was refreshed for
        # G's step draws fresh z, as Algorithm 1 of the GAN, WGAN and WGAN-GP papers do; reusing
        # the critic's last fake batch saves one forward of G (PyTorch's DCGAN example does it).
        reuse = cfg.train.reuse_fake
        self.reuse_fake = (reuse if reuse is not None else cfg.loss.name != "wasserstein") and cfg.train.accumulate == 1
        # All training randomness (data, z, GP's ε) comes from this stream; its state is checkpointed.
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        e = cfg.eval
        self.metrics = SampleMetrics(self.data, self.is_image, e.samples, e.emd_points, device, e.extractor,
                                     e.classifier, e.inception, conditional=self.conditional)

    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        if o.name == "rmsprop":  # the WGAN paper's choice (momentum-based optimisers were unstable)
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        # fused=True: one kernel for all parameters instead of ~10 small ops each (measured faster).
        return torch.optim.Adam(net.parameters(), lr=lr, betas=o.betas, fused=True)

    # ---- the game ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor]:
        cfg, B, k = self.cfg, self.cfg.train.batch_size, self.cfg.train.accumulate
        self._set_learning_rates(step)
        if self.progressive:
            self._grow(step)
        for i in range(cfg.train.n_critic):
            # Under torchrun every rank draws the global batch and keeps its slice (fewlabels.distributed);
            # with train.accumulate = k the batch is k times larger and goes through in k chunks.
            real, y_real = self._draw_real(B * k)
            reals, ys_real = _chunks(real, k), _chunks(y_real, k)
            zs = _chunks(torch.randn(B * k, cfg.model.z_dim, generator=self.gen, device=self.device), k)
            ys_fake = _chunks(self._draw_labels(B * k), k)
            # The critic's loss sees fake.detach(): G's graph is only kept for a batch G's step reuses.
            keep_graph = self.reuse_fake and i == cfg.train.n_critic - 1
            self.opt_D.zero_grad(set_to_none=True)
            chunk_logs = []
            for real, z, y_real, y_fake in zip(reals, zs, ys_real, ys_fake):
                if self.progressive:
                    real = progan.real_at_stage(real, *self.stage, self.G.levels)
                if cfg.train.channels_last:
                    real = real.contiguous(memory_format=torch.channels_last)
                with self._precision(), torch.set_grad_enabled(keep_graph):
                    fake = _call(self._G, z, y_fake)
                with self._precision():
                    loss_d, logs = self._discriminator_loss(real, fake, y_real, y_fake)
                (loss_d / k).backward()  # the mean over k equal chunks is the mean over the batch
                chunk_logs.append(logs)
            logs = _mean_of(chunk_logs)
            average_gradients(self._d_params)
            self.opt_D.step()
            if cfg.loss.constraint == "clip":
                clip_weights_(self.D, cfg.loss.clip)

        # G's turn: on fresh z, or on the last fake batch, whose graph through G is intact and G
        # has not moved since. D's weights are frozen so backward skips their grads.
        if self.reuse_fake:  # the last fake batch, with its labels
            zs, ys = [None], [y_fake]
        else:
            zs = _chunks(torch.randn(B * k, cfg.model.z_dim, generator=self.gen, device=self.device), k)
            ys = _chunks(self._draw_labels(B * k), k)
        _set_requires_grad(self._d_params, False)
        self.opt_G.zero_grad(set_to_none=True)
        losses_g = []
        for z, y in zip(zs, ys):
            if z is not None:
                with self._precision():
                    fake = _call(self._G, z, y)
            with self._precision():
                loss_g = self.g_loss(_call(self._D, fake, y).float())
            (loss_g / k).backward()
            losses_g.append({"loss_g": loss_g.detach()})
        if cfg.loss.ortho_g > 0:  # BigGAN's orthogonal regularisation: its gradient, once per update
            add_orthogonal_gradient_(self._ortho_params, cfg.loss.ortho_g)
        average_gradients(self._g_params)
        self.opt_G.step()
        _set_requires_grad(self._d_params, True)
        if self.G_ema is not None:
            # Before train.ema_start the average is G itself (decay 0); after it, a warm-up (as
            # TensorFlow's ExponentialMovingAverage with num_updates), so that early on the average
            # is not dominated by the untrained generator.
            update_average_(self._ema_params, self._g_params, average_decay(step - cfg.train.ema_start, cfg.train.ema))
            with torch.no_grad():
                if self._sn_pairs:
                    torch._foreach_copy_([a for a, _ in self._sn_pairs], [b for _, b in self._sn_pairs])
            self._standing_for = "stale"
        logs.update(_mean_of(losses_g))
        return logs

    def _draw_real(self, n: int) -> tuple[Tensor, Tensor | None]:
        """n training images, with their labels for a conditional run."""
        if self.conditional:
            return self.data.sample_labelled(n, self.gen)
        return self.data.sample(n, self.gen), None

    def _draw_labels(self, n: int) -> Tensor | None:
        """n labels for G (uniform or as the data has them); None for an unconditional run."""
        if not self.conditional:
            return None
        return torch.multinomial(self.label_probs, n, replacement=True, generator=self.gen)

    def _discriminator_loss(self, real: Tensor, fake: Tensor, y_real: Tensor | None = None,
                            y_fake: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.cfg.loss
        D_real = self._D
        if c.r1_weight > 0:  # R1 differentiates ∇D(real): that forward must be the eager module's
            real.requires_grad_(True)
            D_real = self.D
        d_real, d_fake = _call(D_real, real, y_real).float(), _call(self._D, fake.detach(), y_fake).float()
        loss = self.d_loss(d_real, d_fake)
        logs = {"loss_d": loss.detach()}
        if c.name == "wasserstein":
            # The critic gap E f(x) - E f(G(z)): for a K-Lipschitz critic an estimate of K·W, not of W.
            logs["critic_gap"] = (d_real.mean() - d_fake.mean()).detach()
        if c.constraint == "gp":
            eps = torch.rand(self.cfg.train.batch_size, generator=self.gen, device=self.device)
            # A conditional critic is probed at the real images' labels (x̂ mixes two classes' images).
            critic = self.D if y_real is None else (lambda x: self.D(x, y_real))
            gp = gradient_penalty(critic, real, fake.detach(), shard(eps))
            loss = loss + c.gp_weight * gp
            logs["gradient_penalty"] = gp.detach()
        if c.drift > 0:
            loss = loss + c.drift * (d_real ** 2).mean()
        if c.r1_weight > 0:
            r1 = r1_penalty(d_real, real)
            loss = loss + 0.5 * c.r1_weight * r1
            logs["r1"] = r1.detach()
        return loss, logs

    def _grow(self, step: int) -> None:
        """Set the stage of this step: a function of the images shown so far, so that a resumed run
        continues mid-fade-in. With optim.reset_on_growth the optimisers' moments are reset when
        a fade-in starts and when it ends, as the paper's code does (reset_opt_for_new_lod: at
        every change of floor(lod) or ceil(lod)): the moments of one stage mislead the next."""
        t = self.cfg.train

        def stage(s: int) -> tuple[int, float]:  # before step s, (s - 1) steps have shown their images
            return progan.stage_at((s - 1) * t.batch_size * t.accumulate * t.n_critic, self.G.levels,
                                   self.cfg.model.phase_images)

        level, alpha = stage(step)
        if self.cfg.optim.reset_on_growth and step > 1:
            before, before_alpha = stage(step - 1)
            if (level, alpha < 1) != (before, before_alpha < 1):
                self.opt_G.state.clear()
                self.opt_D.state.clear()
        self._set_stage(level, alpha)

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
        scale = linear_decay(step, self.cfg.train.horizon, o.final_lr_fraction)
        for opt, lr in ((self.opt_G, o.lr_g), (self.opt_D, o.lr_d)):
            set_learning_rate(opt, lr * scale)

    # ---- state -------------------------------------------------------------------------
    def signature(self) -> str:
        return model_signature(self.G, self.D)

    def state_dict(self) -> dict:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_G": self.opt_G.state_dict(),
                 "opt_D": self.opt_D.state_dict(), "gen": self.gen.get_state()}
        if self.G_ema is not None:
            self._refresh_standing_statistics()  # saved statistics belong to the saved EMA weights
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
            self._standing_for = "stale"  # an older checkpoint may hold G's statistics: recompute
        if self.progressive:
            self._set_stage(int(state["stage"][0]), float(state["stage"][1]))

    # ---- sampling and evaluation -------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and metrics: the EMA copy when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def _refresh_standing_statistics(self, truncation: float | None = None) -> None:
        """Make the EMA generator's state describe its own weights, before it samples or is saved:
        - spectral norm (BigGAN's G): σ estimated by SN_ITERATIONS power iterations on the EMA
          weights, warm-started from G's vectors (copied every step);
        - batch norm: statistics recomputed from STANDING_BATCHES training-size batches of z
          (nets.standing_statistics_), truncated at `truncation` when samples will be, as
          BigGAN-PyTorch recomputes them for each truncation of its sweep.
        The z come from a private generator with a fixed seed: the result is a function of the
        weights (and the truncation) alone, the training streams are untouched, and resume stays
        bit for bit."""
        if not (self._ema_has_norms or self._sn_pairs) or self._standing_for == truncation:
            return
        if self._standing_for == "stale":  # the weights moved (another truncation alone leaves σ as it is)
            spectral_norm_estimates_(self.G_ema, SN_ITERATIONS)
        if self._ema_has_norms:
            g = torch.Generator(self.device).manual_seed(STANDING_SEED)
            B, shape = self.cfg.train.batch_size, (self.cfg.train.batch_size, self.cfg.model.z_dim)

            def batch():  # G's input as in training (z ~ N(0, I), labels as G is given them), or truncated
                z = torch.randn(shape, generator=g, device=self.device) if truncation is None else \
                    truncated_normal(shape, truncation, generator=g, device=self.device)
                if not self.conditional:
                    return z
                return z, torch.multinomial(self.label_probs, B, replacement=True, generator=g)

            standing_statistics_(self.G_ema, (batch() for _ in range(STANDING_BATCHES)))
        self._standing_for = truncation

    def balanced_labels(self, n: int) -> np.ndarray:
        """0, 1, ..., K-1, 0, 1, ...: n labels with every class as often as the next (±1)."""
        return np.arange(n, dtype=np.int64) % self.classes

    def check_class(self, label: int | None) -> None:
        if label is None:
            return
        if not self.conditional:
            raise UserError(f"--class {label} asks for a class, but this run's generator is unconditional "
                            "(model.conditional: false); leave out --class")
        if not 0 <= label < self.classes:
            raise UserError(f"--class is {label}; this run's data has classes 0 to {self.classes - 1}")

    @torch.inference_mode()
    def sample_labelled(self, n: int, seed: int = EVAL_SEED, label: int | None = None,
                        truncation: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """n samples in data space (points (n, D) or images (n, C, H, W) in [-1, 1]) and, for a
        conditional run, their labels: all `label`, or balanced (balanced_labels) without one.
        truncation: z from the normal truncated to |z_i| ≤ T by resampling (BigGAN's trick)."""
        self.check_class(label)
        if self.G_ema is not None:
            if truncation is not None:
                check_truncation(truncation)  # one sentence before any work
            self._refresh_standing_statistics(truncation)
        g = torch.Generator(self.device).manual_seed(seed)
        shape = (n, self.cfg.model.z_dim)
        z = torch.randn(shape, generator=g, device=self.device) if truncation is None else \
            truncated_normal(shape, truncation, generator=g, device=self.device)
        labels = None
        if self.conditional:
            labels = np.full(n, label, dtype=np.int64) if label is not None else self.balanced_labels(n)
        net = self.sampler
        was_training = net.training
        net.eval()  # batch norm from running statistics: a sample does not depend on its batch
        try:
            # In chunks of SAMPLE_CHUNK: eval-mode outputs do not depend on the batch, and memory
            # stays bounded (a 28x28 self-attention map is 784 x 196 per image).
            zs = z.split(SAMPLE_CHUNK)
            ys = [None] * len(zs) if labels is None else torch.from_numpy(labels).to(self.device).split(SAMPLE_CHUNK)
            out = torch.cat([_call(net, zc, yc).float() for zc, yc in zip(zs, ys)])
            if self.progressive and out.shape[-1] != self.data.shape[-1]:  # a lower stage, shown at full size
                out = torch.nn.functional.interpolate(out, size=self.data.shape[1:], mode="nearest")
            return out.cpu().numpy(), labels
        finally:
            net.train(was_training)

    def sample(self, n: int, seed: int = EVAL_SEED) -> np.ndarray:
        """n samples in data space: points (n, D) or images (n, C, H, W) in [-1, 1] (a conditional
        run's classes balanced)."""
        return self.sample_labelled(n, seed)[0]

    def real_floor(self) -> dict[str, float]:
        return self.metrics.floor()

    def evaluate(self, truncation: float | None = None) -> dict[str, float]:
        return self.metrics.score(*self.sample_labelled(self.metrics.count(), truncation=truncation))

    @torch.inference_mode()
    def snapshot(self, step: int, folder: Path) -> None:
        """Samples (and for 2D data D's landscape) at this step, for the report's grid over training."""
        if self.is_image:
            level = self.stage[0] if self.progressive else -1
            files.save_npz_atomic(folder / f"snapshot_{step:09d}.npz", "sample snapshot", step=step,
                                  samples=self.sample(64, seed=EVAL_SEED + 2), level=level,
                                  alpha=self.stage[1] if self.progressive else 1.0)
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
        files.save_npz_atomic(folder / f"snapshot_{step:09d}.npz", "sample snapshot", step=step, samples=pts,
                              heat=heat, lo=lo, hi=hi)

    def plot_bounds(self) -> tuple[float, float]:
        held = self.data.holdout(1000)
        m = float(np.abs(held).max()) * 1.25 + 0.1
        return -m, m

    def report_sections(self, run) -> list:
        from fewlabels.gan.report import sections
        return sections(self, run)
