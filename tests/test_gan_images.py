"""Image GANs on the spine: DCGAN on the 8x8 digits, its metrics, samples, resume, bad input."""

import json
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, assert_bitwise_equal, cli_env, final_state, write_config
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.gan.nets import DCGANDiscriminator, DCGANGenerator, upsamplings


def digits_config(tmp_path, name="d.yaml", **sections):
    base = {"data": {"name": "digits"}, "model": {"name": "dcgan", "z_dim": 16, "channels": 16},
            "loss": {"name": "nonsaturating", "r1_weight": 1.0},
            "train": {"steps": 40, "batch_size": 32, "log_every": 10, "snapshot_every": 20, "checkpoint_every": 20,
                      "eval_every": 0}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return write_config(tmp_path / name, **base)


@pytest.mark.parametrize("side, steps", [(8, 1), (28, 2), (32, 3), (64, 4)])
def test_dcgan_shapes_follow_the_image_side(side, steps):
    import torch

    assert upsamplings(side) == steps
    G, D = DCGANGenerator(8, (3, side, side), 8), DCGANDiscriminator((3, side, side), 8)
    x = G(torch.randn(2, 8))
    assert x.shape == (2, 3, side, side) and x.abs().max() <= 1
    assert D(x).shape == (2, 1)


def test_dcgan_refuses_sides_it_cannot_reach():
    with pytest.raises(UserError, match="10x10 images"):
        upsamplings(10)


def test_digits_dcgan_run_reports_frechet_distance_and_samples_images(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(digits_config(tmp_path)), "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    assert summary["fd"] > summary["real_fd"] > 0  # 40 steps are far from the floor
    assert "small classifier trained on digits" in summary["feature_extractor"]
    assert (out / "samples" / "samples.png").exists() and "Fréchet distance" in (out / "report.html").read_text()
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (16, 1, 8, 8) and s.dtype == np.float32 and np.abs(s).max() <= 1
    assert (tmp_path / "s.png").stat().st_size > 1000  # and a PNG grid of them


def test_dcgan_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    once, twice = tmp_path / "once", tmp_path / "twice"
    cfg = digits_config(tmp_path)
    assert main(["train", str(cfg), "--out", str(once), "--device", "cpu"]) == 0
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu", "--set", "train.steps=20"]) == 0
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu"]) == 0
    a, step_a = final_state(once)
    b, step_b = final_state(twice)
    assert step_a == step_b == 40
    assert_bitwise_equal(a, b)  # weights, batch-norm statistics, optimisers, EMA, RNG


@pytest.mark.parametrize("sections, phrase", [
    ({"model": {"name": "mlp"}}, "use model.name: dcgan"),
    ({"data": {"name": "ring8"}}, "use model.name: mlp"),
])
def test_a_model_that_does_not_fit_the_data_is_one_sentence(tmp_path, sections, phrase):
    cfg = digits_config(tmp_path, **sections)
    proc = subprocess.run([PYTHON, "-m", "fewlabels", "train", str(cfg), "--out", str(tmp_path / "r")],
                          env=cli_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and phrase in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["fashion_dcgan", "fashion_dcgan_wgan_gp", "fashion_dcgan_hinge_sn", "fashion_progan"])
def test_fashion_mnist_dcgan_configs_run_a_few_cpu_steps(tmp_path, name):
    from pathlib import Path

    from fewlabels import config as configlib
    from fewlabels.data.images import IDX_DEFAULT_ROOTS
    from fewlabels.train import train

    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    root = Path(__file__).resolve().parents[1]
    cfg = configlib.load(root / "configs" / "gan" / f"{name}.yaml",
                         ["data.limit=256", "train.steps=3", "train.batch_size=16", "train.eval_every=0",
                          "train.snapshot_every=0", "train.threads=1", "eval.samples=64"])
    summary = train(cfg, str(tmp_path / "run"), device="cpu")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["fd"])
