"""The diffusion config: every default visible here; YAML files under configs/diffusion/ are
small diffs. Defaults are the 2D setting (an MLP on points); image configs switch model.name to
unet and data.name to an image set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fewlabels.config import LoopConfig, loop_default
from fewlabels.data.config import IMAGE_SETS, POINT_SETS, DataConfig  # noqa: F401 (re-exported)
from fewlabels.errors import UserError

EVAL_SEED = 2024  # fixed noise for evaluation: never drawn from the training streams
SNAPSHOT_STEPS = 50  # DDIM steps for the report's snapshots


@dataclass
class ScheduleConfig:
    """β_1..β_T. linear: from beta_start to beta_end at T = 1000 (rescaled by 1000/T for other T,
    as improved DDPM does); cosine: improved DDPM's ᾱ_t (beta_start/end unused)."""

    name: Literal["linear", "cosine"] = "linear"
    T: int = field(default=1000, metadata={"ge": 1})
    beta_start: float = field(default=1e-4, metadata={"gt": 0, "lt": 1})
    beta_end: float = field(default=0.02, metadata={"gt": 0, "lt": 1})

    def validate(self) -> None:
        if self.beta_start > self.beta_end:
            raise UserError(f"schedule.beta_start ({self.beta_start}) is above schedule.beta_end "
                            f"({self.beta_end}); the linear schedule rises, so beta_start <= beta_end")


@dataclass
class ModelConfig:
    name: Literal["mlp", "unet"] = "mlp"
    prediction: Literal["epsilon", "v"] = "epsilon"  # what the network outputs: ε (DDPM) or v
    # mlp
    width: int = field(default=128, metadata={"ge": 1})
    depth: int = field(default=3, metadata={"ge": 1})  # residual blocks
    time_dim: int = field(default=32, metadata={"ge": 2})  # sinusoidal embedding size
    # unet
    channels: int = field(default=32, metadata={"ge": 8})
    mults: tuple[int, ...] = (1, 2)  # channel multiplier per resolution level
    blocks: int = field(default=1, metadata={"ge": 1})  # residual blocks per level
    attention: bool = True  # self-attention at the lowest resolution
    dropout: float = field(default=0.0, metadata={"ge": 0, "lt": 1})


@dataclass
class SamplerConfig:
    """How samples and metrics are drawn (any sampler can be used on any trained model)."""

    name: Literal["ddpm", "ddim"] = "ddpm"
    steps: int = field(default=50, metadata={"ge": 1})  # ddim: network calls (ddpm always uses T)
    eta: float = field(default=0.0, metadata={"ge": 0, "le": 1})  # ddim: 0 deterministic, 1 like DDPM
    variance: Literal["small", "beta"] = "small"  # ddpm: σ_t² = β̃_t (posterior) or β_t; see samplers.py
    clip: float | None = field(default=None, metadata={"gt": 0})  # clip x̂_0 to [-clip, clip]; 1 for images


@dataclass
class OptimConfig:
    lr: float = field(default=1e-3, metadata={"gt": 0})
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = field(default=0.0, metadata={"ge": 0})
    grad_clip: float | None = field(default=1.0, metadata={"gt": 0})  # max global gradient norm; null: off
    warmup: int = field(default=0, metadata={"ge": 0})  # steps of linear learning-rate warm-up
    final_lr_fraction: float = field(default=1.0, metadata={"ge": 0, "le": 1})  # linear decay to lr * this


@dataclass
class TrainConfig(LoopConfig):
    eval_every: int = loop_default("eval_every", 0)
    snapshot_every: int = loop_default("snapshot_every", 2000)
    batch_size: int = field(default=256, metadata={"ge": 1})
    ema: float = field(default=0.999, metadata={"ge": 0, "lt": 1})  # EMA decay of the weights; 0 = off


@dataclass
class EvalConfig:
    samples: int = field(default=2500, metadata={"ge": 10})  # mixture metrics (PacGAN protocol); images: FD
    emd_points: int = field(default=1000, metadata={"ge": 10})  # exact EMD, n vs n (points)
    # images: weights of the feature classifier; null: train it (digits)
    classifier: str | None = field(default=None, metadata={"path": True})


@dataclass
class DiffusionConfig:
    EXPERIMENT = "fewlabels.diffusion.trainer:DiffusionExperiment"
    DISTRIBUTED = True  # trains under torchrun (fewlabels.distributed)
    SAMPLING_SECTIONS = ("sampler",)  # `sample`/`eval --set sampler.*`: any sampler on any trained model
    family: Literal["diffusion"] = "diffusion"
    name: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        want = "unet" if self.data.is_image else "mlp"
        if self.model.name != want:
            kind = "images" if self.data.is_image else "points"
            raise UserError(f"model.name is {self.model.name!r} but data.name {self.data.name!r} holds {kind}; "
                            f"use model.name: {want}")
        if self.model.time_dim % 2:
            raise UserError(f"model.time_dim is {self.model.time_dim}; the sinusoidal embedding is sines and "
                            "cosines in pairs, so give an even number, e.g. 32")
        if not self.model.mults or min(self.model.mults) < 1:
            raise UserError(f"model.mults is {list(self.model.mults)}; give one positive multiplier per level, "
                            "e.g. [1, 2]")
