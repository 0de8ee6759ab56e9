"""Learning with few labels: one classifier network D, trained three ways (config.py) on L
labelled images per class and the whole training set unlabelled. Read `train_step` top to bottom:
each method is a few lines on the same batches.

The held-out images (the test files; 25 % of digits) are used by `evaluate` alone: no training
step, no choice of the run, reads them.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fewlabels import files
from fewlabels.checkpoint import model_signature
from fewlabels.data.config import LazyData, make_data
from fewlabels.distributed import average_gradients, rank_seed, shard, world_size
from fewlabels.errors import UserError
from fewlabels.optim import average_decay, linear_decay, set_learning_rate, update_average_
from fewlabels.ssl import augment, losses, nets
from fewlabels.ssl.config import SSLConfig
from fewlabels.ssl.splits import labelled_indices

EVAL_SEED = 2024  # fixed z for the snapshots of G


class SSLExperiment:
    def __init__(self, cfg: SSLConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.data = make_data(cfg.data, cfg.seed)
        self.shape = tuple(self.data.shape)
        self.classes = int(self.data.classes)
        if self.classes < 2:
            raise UserError(f"data.name {cfg.data.name!r} has {self.classes} classes of labels; a classifier needs "
                            "labelled images of at least two classes")
        if cfg.model.name == "conv" and (self.shape[1] % 4 or self.shape[2] % 4):
            raise UserError(f"model.name is 'conv' but the images are {self.shape[1]}x{self.shape[2]}; the conv pair "
                            "(its generator doubles a quarter-size map twice) needs sides divisible by 4: use "
                            "data.pad or model.name mlp")
        self.gan = cfg.method == "ssl_gan"
        self._on_device: dict[str, Tensor] = {}
        D, G = nets.build(cfg.model, self.shape, self.classes, with_generator=self.gan)
        self.D, self.G = D.to(device), (G.to(device) if G is not None else None)
        self.gen = torch.Generator(device).manual_seed(cfg.seed)  # batches, z, augmentations
        if cfg.model.data_init:  # the paper's code: D initialised from 500 training images, hidden scales fixed
            if not isinstance(self.data, LazyData):  # (a run opened to predict has its weights)
                # the same images and noise on every rank under torchrun (the streams all ranks share)
                nets.data_dependent_init(self.D, self._unlabelled_batch(500, sliced=False))
            nets.fix_hidden_scales(self.D)
        self._d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.D_ema = copy.deepcopy(self.D).requires_grad_(False) if cfg.train.ema > 0 else None
        o = cfg.optim
        self.opt_D = torch.optim.Adam(self._d_params, lr=o.lr, betas=o.betas, eps=o.eps)
        self.opt_G = (torch.optim.Adam(self.G.parameters(), lr=o.lr_g or o.lr, betas=o.betas, eps=o.eps)
                      if self.gan else None)
        self._g_params = list(self.G.parameters()) if self.gan else []
        # The labelled split, drawn by data.split_seed (a trained run opened to predict has its
        # data only lazily: its split comes from the checkpoint).
        self.labelled: np.ndarray | None = None
        if not isinstance(self.data, LazyData):
            self.labelled = labelled_indices(self.data.train_labels, cfg.data.labels_per_class, cfg.data.split_seed,
                                             f"data {cfg.data.name!r}")
        # Under torchrun every rank draws the global batches (images, labels, augmentations, z)
        # from self.gen and keeps its slice; D's Gaussian noise comes from torch's own generator,
        # seeded apart per rank once the networks (the same on every rank) are built.
        if world_size() > 1:
            torch.manual_seed(rank_seed(cfg.seed))

    # ---- batches -----------------------------------------------------------------------
    def _tensor(self, key: str) -> Tensor:
        if key not in self._on_device:
            arrays = {"train": lambda: self.data.train, "labelled_x": lambda: self.data.train[self.labelled],
                      "labelled_y": lambda: self.data.train_labels[self.labelled].astype(np.int64)}
            self._on_device[key] = torch.from_numpy(np.ascontiguousarray(arrays[key]())).to(self.device)
        return self._on_device[key]

    def _labelled_batch(self, n: int) -> tuple[Tensor, Tensor]:
        x, y = self._tensor("labelled_x"), self._tensor("labelled_y")
        i = torch.randint(len(x), (n,), generator=self.gen, device=self.device)
        return shard(self._weak(x[i]) if self.cfg.augment.labelled else x[i]), shard(y[i])

    def _unlabelled_batch(self, n: int, sliced: bool = True) -> Tensor:
        """n training images, labels unseen: the whole training set is the unlabelled pool
        (this rank's slice of them, unless not `sliced`)."""
        x = self._tensor("train")
        u = x[torch.randint(len(x), (n,), generator=self.gen, device=self.device)]
        return shard(u) if sliced else u

    def _weak(self, x: Tensor) -> Tensor:
        a = self.cfg.augment
        return augment.weak(x, a.shift, a.flip, self.gen)

    def _z(self, n: int) -> Tensor:
        """G's input: U(0, 1)^d as in the paper's MNIST code."""
        return shard(torch.rand(n, self.cfg.model.z_dim, generator=self.gen, device=self.device))

    # ---- one update ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Tensor]:
        cfg, B = self.cfg, self.cfg.train.batch_size
        self._set_learning_rates(step)
        self.D.train()
        x_lab, y_lab = self._labelled_batch(B)
        logged: dict[str, Tensor] = {}
        if cfg.method == "supervised":
            logits = self.D(x_lab)
            loss = losses.supervised_loss(logits, y_lab)
        elif cfg.method == "fixmatch":
            f = cfg.fixmatch
            u = self._unlabelled_batch(f.ratio * B, sliced=False)
            a = cfg.augment
            u_weak = shard(augment.weak(u, a.shift, a.flip, self.gen))
            u_strong = shard(augment.strong(u, a.shift, a.flip, self.gen))
            # The pseudo-labels come from the weak view alone (FixMatch's teacher sees only the weak
            # augmentation): D's noise layers are off for it, unless fixmatch.teacher_noise.
            with torch.no_grad():
                self.D.train(f.teacher_noise)
                l_weak = self.D(u_weak)
                self.D.train()
            logits, l_strong = self.D(torch.cat([x_lab, u_strong])).split([len(x_lab), len(u_strong)])
            loss_u, confident = losses.fixmatch_loss(l_weak, l_strong, f.threshold)
            loss = losses.supervised_loss(logits, y_lab) + f.unlabelled_weight * loss_u
            logged.update(loss_unlabelled=loss_u.detach(), confident=confident)
        else:  # ssl_gan
            # The real and fake images D tells apart are not augmented: shifted reals (edges
            # repeated) beside unshifted fakes would give D a cue that is not about digits.
            x_unl = self._unlabelled_batch(B)
            self.G.train()
            with torch.no_grad():
                fake = self.G(self._z(B))
            logits = self.D(x_lab)
            logits_unl, logits_fake = self.D(torch.cat([x_unl, fake])).split([len(x_unl), len(fake)])
            loss_unl = losses.unlabelled_loss(logits_unl, logits_fake)
            loss = losses.supervised_loss(logits, y_lab) + cfg.gan.unlabelled_weight * loss_unl
            logged["loss_unlabelled"] = loss_unl.detach()
            if cfg.gan.entropy_weight:
                entropy = losses.conditional_entropy(logits_unl)
                loss = loss + cfg.gan.entropy_weight * entropy
                logged["entropy"] = entropy.detach()
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self._d_params)  # under torchrun: the global batch's gradient
        self.opt_D.step()
        logged["loss_d"] = loss.detach()
        logged["train_accuracy"] = (logits.detach().argmax(1) == y_lab).float().mean()
        if self.gan:
            logged["loss_g"] = self._generator_step(B)
        self._update_average(step)
        return logged

    def _generator_step(self, B: int) -> Tensor:
        """G's update against the D just updated: feature matching on D's last hidden layer (or
        the non-saturating loss), fresh z and, as in the paper's code, a fresh unlabelled batch;
        only G's parameters receive gradients."""
        fake = self.G(self._z(B))
        if self.cfg.gan.generator_loss == "feature_matching":
            x_unl = self._unlabelled_batch(B)
            with torch.no_grad():
                _, f_real = self.D.features(x_unl)
            _, f_fake = self.D.features(fake)
            loss = losses.feature_matching_loss(f_real, f_fake)
        else:
            loss = losses.nonsaturating_loss(self.D(fake))
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward(inputs=self._g_params)
        average_gradients(self._g_params)
        self.opt_G.step()
        return loss.detach()

    def _set_learning_rates(self, step: int) -> None:
        o = self.cfg.optim
        if o.final_lr_fraction == 1.0:
            return
        fraction = linear_decay(step, self.cfg.train.horizon, o.final_lr_fraction)
        for opt, lr in ((self.opt_D, o.lr), (self.opt_G, o.lr_g or o.lr)):
            if opt is not None:
                set_learning_rate(opt, lr * fraction)

    def _update_average(self, step: int) -> None:
        """Polyak (exponential) average of D's weights, with the warm-up of fewlabels.optim so the
        first steps do not keep the initial weights for thousands of steps."""
        if self.D_ema is not None:
            decay = average_decay(step, self.cfg.train.ema)
            update_average_(list(self.D_ema.parameters()), list(self.D.parameters()), decay)

    # ---- classifying ---------------------------------------------------------------------
    @property
    def classifier(self) -> torch.nn.Module:
        """The network that labels images: the Polyak average (train.ema), else D itself."""
        return self.D_ema if self.D_ema is not None else self.D

    @torch.no_grad()
    def classify(self, images: np.ndarray | Tensor, which: torch.nn.Module | None = None) -> np.ndarray:
        """Class labels (int64) of images (N, C, H, W) in [-1, 1]."""
        net = which or self.classifier
        was = net.training
        net.eval()
        out = []
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        for chunk in x.split(self.cfg.eval.batch_size):
            out.append(net(chunk.to(self.device)).argmax(1).cpu())
        net.train(was)
        return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, np.int64)

    def evaluate(self, confusion: bool = False) -> dict:
        """Test accuracy and error (%), per class, of the averaged classifier (and of D itself),
        on the held-out images only. `confusion`: also the confusion matrix (rows: true class)."""
        x, y = self.data.held, self.data.held_labels
        if y is None or len(y) == 0:
            raise UserError(f"data {self.cfg.data.name!r} has no labelled held-out images to measure accuracy on")
        pred = self.classify(x)
        out = {"test_accuracy": float((pred == y).mean()), "test_error_pct": float(100 * (pred != y).mean())}
        if self.D_ema is not None:
            out["test_accuracy_online"] = float((self.classify(x, self.D) == y).mean())
        for k in range(self.classes):
            out[f"accuracy_class_{k}"] = float((pred[y == k] == k).mean()) if (y == k).any() else float("nan")
        if confusion:
            out["confusion"] = confusion_matrix(y, pred, self.classes).tolist()
        return out

    # ---- generating (ssl_gan) ------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        if self.G is None:
            raise UserError(f"this run's method is {self.cfg.method!r}, which has no generator; only method "
                            "ssl_gan samples images")
        gen = torch.Generator(self.device).manual_seed(seed)
        was = self.G.training
        self.G.eval()
        z = torch.rand(n, self.cfg.model.z_dim, generator=gen, device=self.device)
        x = self.G(z).cpu().numpy()
        self.G.train(was)
        return x

    def snapshot(self, step: int, folder: Path) -> None:
        if self.G is not None:
            files.save_npz_atomic(Path(folder) / f"snapshot_{step:09d}.npz", "sample snapshot", step=step,
                                  samples=self.sample(64, seed=EVAL_SEED))

    # ---- loop contract -------------------------------------------------------------------
    def signature(self) -> str:
        return f"ssl:{self.cfg.method}:" + model_signature(self.D, self.G)

    def state_dict(self) -> dict:
        state = {"D": self.D.state_dict(), "opt_D": self.opt_D.state_dict(), "gen": self.gen.get_state(),
                 "labelled": self.labelled}
        if self.G is not None:
            state.update(G=self.G.state_dict(), opt_G=self.opt_G.state_dict())
        if self.D_ema is not None:
            state["D_ema"] = self.D_ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.D.load_state_dict(state["D"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.gen.set_state(state["gen"])
        saved = np.asarray(state["labelled"], dtype=np.int64)
        if self.labelled is not None and not np.array_equal(saved, self.labelled):
            # the run keeps the labels it started with (a newer numpy could draw another split)
            print("fewlabels: this run keeps the labelled split saved in its checkpoint, which differs from the "
                  "one data.split_seed draws here", file=sys.stderr)
        self.labelled = saved
        self._on_device.pop("labelled_x", None)
        self._on_device.pop("labelled_y", None)
        if self.G is not None:
            self.G.load_state_dict(state["G"])
            self.opt_G.load_state_dict(state["opt_G"])
        if self.D_ema is not None:
            self.D_ema.load_state_dict(state["D_ema"])

    def report_sections(self, run) -> list:
        from fewlabels.ssl.report import sections

        return sections(self, run)


def confusion_matrix(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j]: images of class i labelled j."""
    flat = np.asarray(y) * classes + np.asarray(pred)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)
