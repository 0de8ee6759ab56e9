import json
import math

import numpy as np
import pytest
import torch

from conftest import write_config
from fewlabels.cli import main
from fewlabels.data.toy2d import grid25, make_points, ring8
from fewlabels.gan import losses
from fewlabels.gan.lipschitz import add_spectral_norm, clip_weights_, gradient_penalty, r1_penalty
from fewlabels.gan.nets import mlp
from fewlabels.metrics.distances import emd
from fewlabels.metrics.mixture import mode_metrics
from fewlabels.run import RunDir


def test_minimax_losses_are_the_value_function_written_with_probabilities():
    d_real, d_fake = torch.tensor([0.3, -1.2]), torch.tensor([2.0, -0.4])
    p_real, p_fake = torch.sigmoid(d_real), torch.sigmoid(d_fake)
    v = torch.log(p_real).mean() + torch.log(1 - p_fake).mean()
    assert torch.allclose(losses.minimax_discriminator_loss(d_real, d_fake), -v)
    assert torch.allclose(losses.minimax_generator_loss(d_fake), torch.log(1 - p_fake).mean())
    assert torch.allclose(losses.nonsaturating_generator_loss(d_fake), -torch.log(p_fake).mean())


def test_minimax_generator_gradient_saturates_where_nonsaturating_does_not():
    d_fake = torch.tensor([-8.0], requires_grad=True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(losses.minimax_generator_loss(d_fake), d_fake)
    (g_ns,) = torch.autograd.grad(losses.nonsaturating_generator_loss(d_fake), d_fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_wasserstein_and_hinge_losses():
    r, f = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -2.0])
    assert losses.wasserstein_critic_loss(r, f).item() == pytest.approx(-(2.0 - (-0.75)))
    assert losses.wasserstein_generator_loss(f).item() == pytest.approx(0.75)
    assert losses.hinge_discriminator_loss(r, f).item() == pytest.approx(0.0 + (1.5 + 0.0) / 2)


def test_weight_clipping_bounds_every_weight():
    net = mlp(2, 1, 16, 2)
    clip_weights_(net, 0.01)
    assert max(p.abs().max().item() for p in net.parameters()) <= 0.01


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8]]))
    gp = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), torch.rand(8))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_r1_penalty_is_the_squared_input_gradient():
    x = torch.randn(5, 2, requires_grad=True)
    assert r1_penalty((3 * x).sum(1, keepdim=True), x).item() == pytest.approx(18.0)


def test_spectral_norm_makes_each_layer_1_lipschitz():
    net = add_spectral_norm(mlp(2, 1, 32, 2))
    for _ in range(30):
        net(torch.randn(4, 2))  # power iterations
    for layer in (m for m in net.modules() if isinstance(m, torch.nn.Linear)):
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_real_data_scores_near_perfect_on_the_mixture_protocol():
    for data, modes in ((grid25(), 25), (ring8(), 8)):
        m = mode_metrics(data.holdout(2500), data.modes, data.mode_std)
        assert m["modes"] == m["modes_20"] == modes
        assert m["hq_percent"] > 97.5 and m["reverse_kl"] < 0.02


def test_mode_collapse_shows_in_every_metric():
    data = grid25()
    one_mode = data.modes[3] + 0.01 * np.random.default_rng(0).normal(size=(2500, 2))
    m = mode_metrics(one_mode, data.modes, data.mode_std)
    assert m["modes"] == 1 and m["hq_percent"] == 100.0 and m["reverse_kl"] == pytest.approx(math.log(25))


def test_emd_is_zero_on_identical_sets_and_the_shift_for_translated_ones():
    a = np.random.default_rng(0).normal(size=(200, 2))
    assert emd(a, a) == pytest.approx(0.0, abs=1e-9)
    assert emd(a, a + np.array([0.0, 0.5])) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("name", ["ring8", "grid25", "swissroll", "moons", "circle"])
def test_datasets_are_deterministic_per_generator(name):
    d = make_points(name)
    a = d.sample(100, torch.Generator().manual_seed(1))
    b = d.sample(100, torch.Generator().manual_seed(1))
    assert a.shape == (100, 2) and torch.equal(a, b) and torch.isfinite(a).all()


def test_circle_lies_on_a_one_dimensional_manifold():
    pts = make_points("circle").sample(500, torch.Generator().manual_seed(0))
    assert torch.allclose(pts.norm(dim=1), torch.ones(500), atol=1e-6)


def test_user_points_from_csv_train_and_sample_in_their_dimension(tmp_path, capsys):
    pts = np.random.default_rng(0).normal(size=(300, 3))
    np.savetxt(tmp_path / "p.csv", pts, delimiter=",")
    cfg = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "p.csv")},
                       train={"steps": 50, "snapshot_every": 0})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    assert main(["sample", str(tmp_path / "r"), "--n", "7", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (7, 3)


def test_train_sample_eval_follow_the_contracts(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", loss={"name": "wasserstein", "constraint": "gp"},
                       train={"steps": 100, "n_critic": 2})
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run)]) == 0
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "report.html"):
        assert (run / name).is_file(), name
    assert list((run / "tb").iterdir())
    rows = RunDir(run).read_metrics()
    assert all("step" in r and "wall_seconds" in r for r in rows)
    assert any("critic_gap" in r for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 100 and "wall_seconds" in summary
    assert "modes" in summary["metrics"] and "real_emd" in summary["metrics"]
    capsys.readouterr()

    assert main(["sample", str(run), "--n", "33", "--out", str(tmp_path / "s.npy"), "--seed", "4"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (33, 2) and s.dtype == np.float32
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["modes"] == summary["metrics"]["modes"] and ev["emd"] == pytest.approx(summary["metrics"]["emd"])
    assert "<img" in (run / "report.html").read_text()


def generator_inputs(tmp_path, loss: dict, *overrides: str) -> tuple[list, int]:
    """The z of every call of G during one training step, and n_critic."""
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    cfg = configlib.load(write_config(tmp_path / "c.yaml", loss=loss, train={"n_critic": 3}), list(overrides))
    exp = build_experiment(cfg, torch.device("cpu"))
    calls = []
    exp._G = lambda z: calls.append(z) or exp.G(z)
    exp.train_step(1)
    return calls, cfg.train.n_critic


@pytest.mark.parametrize("constraint", ["clip", "gp"])
def test_wgan_generator_step_draws_fresh_z_as_in_algorithm_1(tmp_path, constraint):
    """WGAN and WGAN-GP, Algorithm 1: after n_critic critic steps, G's step samples its own
    minibatch of z rather than reusing the critic's last fake batch."""
    calls, n_critic = generator_inputs(tmp_path, {"name": "wasserstein", "constraint": constraint})
    assert len(calls) == n_critic + 1
    assert not torch.equal(calls[-1], calls[-2])


def test_other_losses_reuse_the_last_fake_batch_unless_told_not_to(tmp_path):
    calls, n_critic = generator_inputs(tmp_path, {"name": "nonsaturating"})
    assert len(calls) == n_critic
    calls, n_critic = generator_inputs(tmp_path, {"name": "nonsaturating"}, "train.reuse_fake=false")
    assert len(calls) == n_critic + 1 and not torch.equal(calls[-1], calls[-2])


def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from fewlabels.gan.trainer import GANExperiment

    real_step = GANExperiment.train_step

    def poisoned(self, step):
        logs = real_step(self, step)
        if step == 130:
            logs["loss_d"] = torch.tensor(float("nan"))
        return logs

    monkeypatch.setattr(GANExperiment, "train_step", poisoned)
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 200, "checkpoint_every": 100})
    code = main(["train", str(cfg), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "diverged at step 130: loss_d is nan" in err and "step_000000100" in err
    run = RunDir(tmp_path / "r")
    assert [p.name for p in run.checkpoint_paths()] == ["step_000000100.safetensors"]
    assert run.read_summary()["status"] == "diverged"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "fewlabels 0." in capsys.readouterr().out


def test_bf16_autocast_trains_and_samples_float32(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", loss={"r1_weight": 0.1}, train={"steps": 60, "precision": "bf16"})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "completed" and math.isfinite(summary["metrics"]["emd"])
    assert main(["sample", str(tmp_path / "r"), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").dtype == np.float32


TORCHRUN_CASES = {
    # 2 critic steps and the penalty's ε are drawn per step: the random streams must agree too
    "points_wgan_gp": {"data": {"name": "grid25"}, "train": {"n_critic": 2},
                       "loss": {"name": "wasserstein", "constraint": "gp", "gp_weight": 1.0}},
    # the DCGAN generator's batch norm couples the samples of a batch: its statistics must be global
    "digits_dcgan_batchnorm": {"data": {"name": "digits"}, "model": {"name": "dcgan", "z_dim": 16, "channels": 8},
                               "loss": {"name": "nonsaturating", "r1_weight": 1.0}},
}


@pytest.mark.slow(seconds=40)
@pytest.mark.parametrize("case", list(TORCHRUN_CASES))
def test_two_torchrun_processes_train_like_one_process_with_the_same_global_batch(tmp_path, case):
    """DDP semantics on the CPU (gloo): each rank takes half of the global batch, gradients are
    averaged, batch norm sees the global batch, rank 0 writes the run; the weights (and batch-norm
    statistics) match a single process to float rounding."""
    from conftest import final_state, one_and_two_processes, resume_across_process_counts, write_config

    sections = {key: dict(value) for key, value in TORCHRUN_CASES[case].items()}
    sections.setdefault("train", {}).update(steps=30, batch_size=64, checkpoint_every=30, snapshot_every=0,
                                            eval_every=0, log_every=10)
    single, double = one_and_two_processes(write_config(tmp_path / "c.yaml", **sections), tmp_path)
    a, step_a = final_state(single)
    b, step_b = final_state(double)
    assert step_a == step_b == 30
    # Float rounding differs between one reduction and two halves all-reduced; Adam's normalised
    # step amplifies it where a gradient is near zero. Measured on an AMD EPYC after 30 steps: at
    # most 2.1e-5 (one weight of 4,096). The bug this guards against (per-rank batch norm) moves
    # thousands of weights, by up to 8e-4; a tolerance of 1e-4 separates the two.
    for name in ("G", "D", "G_ema"):
        for key, value in a[name].items():
            assert torch.allclose(value, b[name][key], atol=1e-4, rtol=1e-4), f"{name}.{key}"
    # the logged losses are the global batch's (averaged over ranks), not rank 0's half
    logged = [[row for row in RunDir(out).read_metrics() if "loss_d" in row] for out in (single, double)]
    assert [r["step"] for r in logged[0]] == [r["step"] for r in logged[1]] == [10, 20, 30]
    for row_a, row_b in zip(*logged, strict=True):
        for key in ("loss_d", "loss_g"):
            assert row_a[key] == pytest.approx(row_b[key], rel=1e-4, abs=1e-5), (row_a["step"], key)
    if case == "points_wgan_gp":  # the checkpoint does not depend on the number of processes
        a, b = resume_across_process_counts(tmp_path / "c.yaml", single, double, 45)
        for name in ("G", "D"):
            for key, value in a[name].items():
                assert torch.allclose(value, b[name][key], atol=1e-4, rtol=1e-4), f"{name}.{key}"


def test_every_model_name_is_one_architecture_module_with_build():
    """gan/nets/: model.name chooses a module through one table; each builds (G, D) for its data."""
    import importlib
    import typing

    from fewlabels.gan.config import ModelConfig
    from fewlabels.gan.nets import ARCHITECTURES

    names = typing.get_args(typing.get_type_hints(ModelConfig)["name"])
    assert set(names) == set(ARCHITECTURES)
    for module in ARCHITECTURES.values():
        assert callable(importlib.import_module(module).build)


def test_the_ema_generator_copies_g_until_ema_start_then_averages(tmp_path):
    """BigGAN's ema_start: before it the average is G itself; after it, it lags behind G."""
    import torch

    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    cfg = configlib.load(write_config(tmp_path / "c.yaml", train={"ema": 0.999, "ema_start": 3}))
    exp = build_experiment(cfg, torch.device("cpu"))
    same = []
    for step in range(1, 6):
        exp.train_step(step)
        same.append(all(torch.equal(a, b) for a, b in zip(exp.G_ema.parameters(), exp.G.parameters())))
    assert same == [True, True, True, False, False]


def test_accumulating_k_chunks_equals_one_batch_k_times_larger(tmp_path):
    """train.accumulate: the same samples (drawn at once from the run's stream), the gradient of
    the mean over k chunks: one step of D and of G lands where one big batch does."""
    import torch

    from fewlabels import checkpoint
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    def one_step(batch: int, k: int):
        cfg = configlib.load(write_config(tmp_path / f"c{k}.yaml", loss={"r1_weight": 1.0},
                                          train={"batch_size": batch, "accumulate": k, "reuse_fake": False,
                                                 "n_critic": 2}))
        checkpoint.seed_everything(cfg.seed)
        exp = build_experiment(cfg, torch.device("cpu"))
        logs = exp.train_step(1)
        return exp, logs

    big, big_logs = one_step(256, 1)
    acc, acc_logs = one_step(64, 4)
    for net in ("G", "D"):
        for a, b in zip(getattr(big, net).parameters(), getattr(acc, net).parameters()):
            assert torch.allclose(a, b, atol=1e-6), net
            # the gradients themselves (Adam's first steps barely see their scale): G's of its step,
            # D's of its last critic step
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-7), net
    for key in ("loss_d", "r1", "loss_g"):
        assert torch.allclose(big_logs[key], acc_logs[key], atol=1e-6), key


def test_accumulation_refuses_reusing_the_last_fake_batch(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", train={"accumulate": 2, "reuse_fake": True})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "train.reuse_fake is true but train.accumulate is 2" in capsys.readouterr().err
