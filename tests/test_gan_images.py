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


def test_eval_can_score_a_finished_run_under_another_protocol_but_not_retrain_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(digits_config(tmp_path, train={"steps": 10})), "--out", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--set", "eval.samples=100"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["samples_vs_real"].startswith("100 generated vs 100 held-out") and scores["fd"] > 0
    before = (out / "config.yaml").read_text()
    assert main(["eval", str(out), "--set", "train.steps=5"]) == 2
    assert "only eval.* keys can be set" in capsys.readouterr().err and (out / "config.yaml").read_text() == before


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


@pytest.mark.slow(seconds=14)
@pytest.mark.parametrize("name", ["fashion_dcgan", "fashion_dcgan_wgan_gp", "fashion_dcgan_hinge_sn", "fashion_progan"])
def test_fashion_mnist_dcgan_configs_run_a_few_cpu_steps(tmp_path, name):
    from pathlib import Path

    from fewlabels import config as configlib
    from fewlabels.data.images import IDX_DEFAULT_ROOTS
    from fewlabels.loop import train

    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    root = Path(__file__).resolve().parents[1]
    cfg = configlib.load(root / "configs" / "gan" / f"{name}.yaml",
                         ["data.limit=256", "train.steps=3", "train.batch_size=16", "train.eval_every=0",
                          "train.snapshot_every=0", "train.threads=1", "eval.samples=64"])
    summary = train(cfg, str(tmp_path / "run"), device="cpu")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["fd"])


def short_experiment(tmp_path, *overrides, config=None):
    """A digits DCGAN experiment (no run directory) for comparing the step under speed options."""
    import torch

    from fewlabels import checkpoint
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    cfg = configlib.load(config or digits_config(tmp_path), list(overrides))
    checkpoint.seed_everything(cfg.seed)
    return build_experiment(cfg, torch.device("cpu"))


def trained_generator(exp, steps):
    for step in range(1, steps + 1):
        exp.train_step(step)
    return exp.G.state_dict()


def pre_norm_statistics(net, z):
    """Per-channel mean and variance of the input of G's (first) batch norm, in train mode."""
    import copy

    import torch

    probe, seen = copy.deepcopy(net).train(), []
    norm = next(m for m in probe.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        probe(z)
    return seen[0].mean((0, 2, 3)), seen[0].var((0, 2, 3))


def test_ema_generator_samples_with_batch_norm_statistics_of_its_own_weights(tmp_path):
    """Standing statistics: the EMA weights' own activations, recomputed before sampling, not the
    running statistics of the raw G (other weights, and a momentum average since the start), and
    from a private stream: the training and global random streams are untouched."""
    import torch

    exp = short_experiment(tmp_path)
    trained_generator(exp, 20)
    rng, gen = torch.get_rng_state(), exp.gen.get_state()
    exp.sample(8)
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(exp.gen.get_state(), gen)
    z = torch.randn(4096, exp.cfg.model.z_dim, generator=torch.Generator().manual_seed(123))
    mean, var = pre_norm_statistics(exp.G_ema, z)
    ema, raw = (next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)) for net in (exp.G_ema, exp.G))
    assert torch.allclose(ema.running_mean, mean, atol=5e-3) and torch.allclose(ema.running_var, var, rtol=0.1)
    assert not (torch.allclose(raw.running_mean, mean, atol=5e-3) and torch.allclose(raw.running_var, var, rtol=0.1))


def test_channels_last_trains_like_contiguous_memory(tmp_path):
    import torch

    plain = trained_generator(short_experiment(tmp_path), 10)
    exp = short_experiment(tmp_path, "train.channels_last=true")
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in exp.D.parameters() if p.dim() == 4)
    nhwc = trained_generator(exp, 10)
    for key, value in plain.items():  # the same arithmetic, other kernels: equal to rounding
        assert torch.allclose(value, nhwc[key], atol=1e-4, rtol=1e-4), key


def test_compiled_step_matches_the_eager_step_with_a_gradient_penalty(tmp_path):
    """torch.compile has no double backward: the penalty must take the eager critic (it would
    raise otherwise) while the losses take the compiled one, with the same numbers."""
    import torch

    wgan = digits_config(tmp_path, loss={"name": "wasserstein", "constraint": "gp", "r1_weight": 0.0},
                         model={"channels": 8})
    eager = trained_generator(short_experiment(tmp_path, config=wgan), 3)
    exp = short_experiment(tmp_path, "train.compile=true", config=wgan)
    assert exp._D is not exp.D  # the step really calls a compiled module
    compiled = trained_generator(exp, 3)
    for key, value in eager.items():
        assert torch.allclose(value, compiled[key], atol=1e-5, rtol=1e-4), key


def test_channels_last_for_points_is_one_sentence(tmp_path):
    from conftest import write_config

    cfg = write_config(tmp_path / "p.yaml", train={"channels_last": True})
    proc = subprocess.run([PYTHON, "-m", "fewlabels", "train", str(cfg), "--out", str(tmp_path / "r")],
                          env=cli_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "train.channels_last is for images" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fashion_dcgan", "fashion_progan"])
def test_fashion_configs_train_on_the_gpu_with_every_speed_option(tmp_path, name):
    """bf16 autocast, channels-last and torch.compile together, through the growth for ProGAN."""
    from pathlib import Path

    import torch

    from fewlabels import config as configlib
    from fewlabels.data.images import IDX_DEFAULT_ROOTS
    from fewlabels.loop import train

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    root = Path(__file__).resolve().parents[1]
    cfg = configlib.load(root / "configs" / "gan" / f"{name}.yaml",
                         ["train.steps=60", "train.eval_every=0", "train.snapshot_every=20", "eval.samples=256",
                          "model.phase_images=512", "train.precision=bf16", "train.channels_last=true",
                          "train.compile=true"])
    summary = train(cfg, str(tmp_path / "run"), device="cuda")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["fd"])
