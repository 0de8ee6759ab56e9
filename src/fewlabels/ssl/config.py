"""The semi-supervised config (family `ssl`): one labelled image set split into L labelled images
per class and the whole training set as unlabelled pool, and three ways to learn from it that
share the classifier network (so the comparison is of methods, not of networks):

    ssl_gan      Salimans et al. 2016: D is a K+1-class classifier (the fake class's logit fixed
                 at 0), G trained by feature matching
    supervised   the same D trained on the labelled images alone (same noise, same augmentation)
    fixmatch     Sohn et al. 2020: pseudo-labels from weakly augmented unlabelled images, above a
                 confidence threshold, as targets for strongly augmented ones
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fewlabels.config import LoopConfig, loop_default
from fewlabels.data.config import DataConfig as SharedDataConfig
from fewlabels.errors import UserError


@dataclass
class DataConfig(SharedDataConfig):
    """A labelled image set; `labels_per_class` of its training images keep their labels (a
    class-balanced draw by `split_seed`), all of them serve unlabelled; the held-out part (the
    test files, or 25 % of digits) is only ever used to measure."""

    name: Literal["digits", "fashion_mnist", "mnist", "cifar10", "images", "folder"] = "digits"
    labels_per_class: int = field(default=10, metadata={"ge": 1})
    split_seed: int = field(default=0, metadata={"ge": 0})


@dataclass
class ModelConfig:
    # mlp: the paper's permutation-invariant MNIST networks (D 1000-500-250-250-250 with weight
    # norm and Gaussian noise, G 500-500 with batch norm); conv: a small convolutional pair
    name: Literal["mlp", "conv"] = "mlp"
    z_dim: int = field(default=100, metadata={"ge": 1})
    d_hidden: list[int] = field(default_factory=lambda: [1000, 500, 250, 250, 250])
    g_hidden: list[int] = field(default_factory=lambda: [500, 500])
    channels: int = field(default=64, metadata={"ge": 1})  # conv: D's first layer (doubled twice)
    input_noise: float = field(default=0.3, metadata={"ge": 0})  # σ of the noise on D's input, pixels in [-1, 1]
    hidden_noise: float = field(default=0.5, metadata={"ge": 0})  # σ after each hidden layer (mlp)
    dropout: float = field(default=0.5, metadata={"ge": 0, "lt": 1})  # conv: between D's stages
    # conv: the stride of D's first convolution; 2 runs the later layers on about a quarter of the
    # positions (for 28 px images on a CPU: 1.8x faster an update at width 16)
    stem_stride: int = field(default=1, metadata={"ge": 1, "le": 2})
    # the paper's code: D's weight norm initialised from 500 training images (each unit mean 0,
    # std 1), the hidden layers' scales g then held fixed (nets.data_dependent_init)
    data_init: bool = False


@dataclass
class GANConfig:
    # the weight of the unlabelled (real vs fake) part of D's loss: the paper's code weighs it 1
    # but halves both its terms (loss_unl = 0.5·...), so 0.5 here is the paper's setting
    unlabelled_weight: float = field(default=0.5, metadata={"ge": 0})
    # the weight of the conditional entropy of D's class prediction on unlabelled images
    # (entropy minimisation; Dai et al. 2017 add it to the SSL GAN); 0: the paper's D
    entropy_weight: float = field(default=0.0, metadata={"ge": 0})
    # G's loss: feature matching on D's last hidden layer (the paper's best for classification)
    # or the non-saturating -log D(G(z))
    generator_loss: Literal["feature_matching", "nonsaturating"] = "feature_matching"


@dataclass
class FixMatchConfig:
    threshold: float = field(default=0.95, metadata={"gt": 0, "le": 1})  # τ
    unlabelled_weight: float = field(default=1.0, metadata={"ge": 0})   # λ_u
    ratio: int = field(default=7, metadata={"ge": 1})  # μ: unlabelled images per labelled one in a batch
    # the weak view's pseudo-labels with D's noise layers (and the conv D's dropout) on; off by
    # default: FixMatch's teacher sees the weak augmentation and nothing else
    teacher_noise: bool = False


@dataclass
class AugmentConfig:
    # weak: a random shift of up to `shift` pixels (edges replicated), a horizontal flip when
    # `flip` (not for digits); strong (FixMatch) adds contrast, brightness, noise and a cut-out
    shift: int = field(default=2, metadata={"ge": 0})
    flip: bool = False
    # labelled images are weakly augmented in every method, for a fair comparison
    labelled: bool = True


@dataclass
class OptimConfig:
    lr: float = field(default=3e-3, metadata={"gt": 0})  # the paper's MNIST code: Adam 0.003, β1 0.5
    lr_g: float | None = field(default=None, metadata={"gt": 0})  # null: lr
    betas: tuple[float, float] = (0.5, 0.999)
    # Adam's ε (torch: g / (sqrt(v) + ε)); the paper's code divides by sqrt(v + 1e-8), which for
    # small second moments acts like ε ≈ 1e-4
    eps: float = field(default=1e-8, metadata={"gt": 0})
    # linear decay to lr * final_lr_fraction over the run (1: constant)
    final_lr_fraction: float = field(default=1.0, metadata={"ge": 0, "le": 1})


@dataclass
class TrainConfig(LoopConfig):
    # steps: updates of the classifier (and, for ssl_gan, one of G each)
    batch_size: int = field(default=100, metadata={"ge": 1})  # labelled (and, for ssl_gan, unlabelled and fake)
    # Polyak average of the classifier's weights used for evaluation and predict (decay per step; 0: off)
    ema: float = field(default=0.999, metadata={"ge": 0, "lt": 1})
    eval_every: int = loop_default("eval_every", 500)
    snapshot_every: int = loop_default("snapshot_every", 0)


@dataclass
class EvalConfig:
    batch_size: int = field(default=1000, metadata={"ge": 1})


@dataclass
class SSLConfig:
    EXPERIMENT = "fewlabels.ssl.trainer:SSLExperiment"
    DISTRIBUTED = True  # trains under torchrun (fewlabels.distributed)
    family: Literal["ssl"] = "ssl"
    name: str = ""
    seed: int = 0
    method: Literal["ssl_gan", "supervised", "fixmatch"] = "ssl_gan"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    fixmatch: FixMatchConfig = field(default_factory=FixMatchConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        for key, widths in (("model.d_hidden", self.model.d_hidden), ("model.g_hidden", self.model.g_hidden)):
            if not widths or any(w < 1 for w in widths):
                raise UserError(f"{key} is {widths!r}; give a list of positive layer widths, e.g. [500, 500]")
