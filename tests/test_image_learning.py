"""Image models learn: on scikit-learn's 8x8 digits, a short seeded run's Fréchet distance in the
digits classifier's features (metrics key `fd`) falls far below that of the same network untrained
(same config and seed, 0 training steps).

For scale, in these features (449 vs 449 held-out digits): real training digits ≈ 18 (the floor),
real digits with N(0, 0.5²) pixel noise ≈ 67, real digits of only 5 of the 10 classes ≈ 355, a 3x3
blur ≈ 835, uniform noise ≈ 1,050, one class only 1,200-2,250, the mean digit ≈ 2,100. Budgets
are cut (width, batch, steps, DDIM steps) to 7-30 s a case on one core; each bound is about twice
the worst trained/untrained ratio measured on seeds 0, 1 and 2 (each case's comment gives them),
and every case fails with training cut to 1 step (ratio 0.83-1.01).
"""

from pathlib import Path

import pytest
import torch

from fewlabels import checkpoint
from fewlabels import config as configlib
from fewlabels.loop import build_experiment, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# One thread (the tests' setting; a config's `threads` would change it for the whole worker), no
# intermediate evaluations, snapshots or checkpoints: the budget goes to training.
QUICK = ["train.threads=1", "train.eval_every=0", "train.snapshot_every=0", "train.checkpoint_every=1000000"]
SMALL_DCGAN = ["model.channels=32", "train.batch_size=32"]

# name: (shipped config, overrides, bound on fd_trained / fd_untrained). Measured (seeds 0, 1, 2):
# fd untrained -> trained, real floor 20.9 (449 vs 449 digits)
CASES = {
    # the shipped recipe: non-saturating loss, R1, EMA. 1842/2029/1825 -> 116/116/125 (ratio <= 0.068)
    "dcgan": ("gan/digits_dcgan", [*SMALL_DCGAN, "train.steps=400"], 0.15),
    # WGAN-GP as Gulrajani et al. (λ 10, Adam (0, 0.9)), one critic step per G step to fit the budget.
    # 1842/2029/1825 -> 144/134/135 (ratio <= 0.078)
    "dcgan_wgan_gp": ("gan/digits_dcgan", [*SMALL_DCGAN, "train.steps=500", "loss.name=wasserstein",
                                           "loss.constraint=gp", "loss.r1_weight=0", "optim.betas=[0.0,0.9]"], 0.15),
    # SN-GAN: hinge loss, spectral norm in D, TTUR (D 4e-4, G 2e-4), Adam (0, 0.9).
    # 1842/2029/1825 -> 105/101/101 (ratio <= 0.057)
    "dcgan_hinge_sn": ("gan/digits_dcgan", [*SMALL_DCGAN, "train.steps=400", "loss.name=hinge", "loss.constraint=sn",
                                            "loss.r1_weight=0", "optim.betas=[0.0,0.9]", "optim.lr_d=0.0004"], 0.15),
    # growing within the run: 25 steps at 4x4, 25 fading the 8x8 block in, 350 at 8x8.
    # 1011/1319/1023 -> 120/191/140 (ratio <= 0.145)
    "progan": ("gan/digits_progan", ["train.batch_size=32", "model.phase_images=800", "train.steps=400",
                                     "optim.lr_g=0.002", "optim.lr_d=0.002"], 0.3),
    # the U-Net at half width without attention, sampled by DDIM in 20 steps.
    # 496/460/492 -> 62/70/71 (ratio <= 0.152)
    "diffusion_unet": ("diffusion/digits", ["model.channels=16", "model.attention=false", "train.batch_size=32",
                                            "train.steps=600", "optim.lr=0.002", "optim.warmup=50",
                                            "sampler.steps=20"], 0.3),
}


def untrained_and_trained(tmp_path, config: str, overrides: list[str]) -> tuple[dict, dict]:
    """Metrics of the network `train` starts from (seeded as `train` seeds it) and of the trained run."""
    cfg = configlib.load(CONFIGS / f"{config}.yaml", [*QUICK, *overrides])
    checkpoint.seed_everything(cfg.seed)
    untrained = build_experiment(cfg, torch.device("cpu")).evaluate()
    trained = train(cfg, str(tmp_path / "run"), device="cpu")["metrics"]
    return untrained, trained


@pytest.mark.slow(seconds=25)
@pytest.mark.parametrize("name", list(CASES))
def test_training_takes_the_digits_frechet_distance_far_below_the_untrained_networks(tmp_path, name):
    config, overrides, bound = CASES[name]
    untrained, trained = untrained_and_trained(tmp_path, config, overrides)
    numbers = {"fd_untrained": untrained["fd"], "fd_trained": trained["fd"], "floor": trained["real_fd"]}
    assert trained["fd"] < bound * untrained["fd"], numbers
