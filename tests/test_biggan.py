"""BigGAN and the conditional path: each block against a hand computation, the conditional
wrappers every architecture opts into, sampling by class and truncation, resume, bad input."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_bitwise_equal, final_state, write_config
from fewlabels import checkpoint
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.gan.biggan_parts import add_orthogonal_gradient_, orthogonal_penalty
from fewlabels.gan.nets.biggan import BigGANDiscriminator, BigGANGenerator, ConditionalBatchNorm, SelfAttention


def biggan_config(tmp_path, name="b.yaml", **sections):
    base = {"data": {"name": "digits"},
            "model": {"name": "biggan", "conditional": True, "z_dim": 16, "channels": 4, "embed_dim": 8},
            "loss": {"name": "hinge", "constraint": "sn", "ortho_g": 1e-4},
            "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.0, 0.999]},
            "train": {"steps": 8, "batch_size": 16, "n_critic": 2, "ema_start": 2, "log_every": 2,
                      "snapshot_every": 4, "checkpoint_every": 4, "eval_every": 0},
            "eval": {"samples": 100}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return write_config(tmp_path / name, **base)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


# ---- the blocks ---------------------------------------------------------------------------
def test_conditional_batch_norm_is_gain_and_bias_linear_in_the_conditioning_vector():
    torch.manual_seed(0)
    bn = ConditionalBatchNorm(6, cond_dim=5).train()
    x, c = torch.randn(8, 6, 4, 4), torch.randn(8, 5)
    out = bn(x, c)
    normed = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    gain = 1 + c @ bn.gain.weight.t()  # the spectrally normalised weights, no bias
    bias = c @ bn.bias.weight.t()
    assert torch.allclose(out, normed * gain[:, :, None, None] + bias[:, :, None, None], atol=1e-5)
    # a zero conditioning vector leaves plain batch norm (gain 1, bias 0)
    assert torch.allclose(bn(x, torch.zeros(8, 5)), normed, atol=1e-5)


def test_generator_blocks_share_one_class_embedding_and_take_one_z_chunk_each():
    torch.manual_seed(0)
    G = BigGANGenerator(z_dim=96, shape=(3, 32, 32), classes=10, channels=4, embed_dim=16).train()
    assert len(G.blocks) == 3 and G.chunk == 24  # 4 slots: the linear layer and three blocks
    assert G.linear.weight.shape[1] == 24
    for block in G.blocks:
        for bn in (block.bn1, block.bn2):
            assert bn.gain.weight.shape[1] == bn.bias.weight.shape[1] == 16 + 24  # [shared(y), z_chunk]
    assert sum(isinstance(m, torch.nn.Embedding) for m in G.modules()) == 1  # shared, not one per block
    z, y = torch.randn(6, 96, requires_grad=True), torch.arange(6)
    x = G(z, y)
    assert x.shape == (6, 3, 32, 32) and x.abs().max() <= 1
    x.sum().backward()
    for k in range(4):  # every chunk reaches the image
        assert z.grad[:, 24 * k:24 * (k + 1)].abs().sum() > 0, k
    # the conditioning vector of block k is [shared(y), chunk k+1]: record it and compare
    seen = []
    G.blocks[1].bn1.register_forward_hook(lambda m, inp, out: seen.append(inp[1]))
    G(z.detach(), y)
    assert torch.equal(seen[0], torch.cat([G.shared(y), z.detach()[:, 48:72]], 1))


def test_generator_refuses_a_z_that_does_not_split_into_equal_chunks():
    with pytest.raises(UserError, match="model.z_dim is 98 but BigGAN's hierarchical latent splits z into 4"):
        BigGANGenerator(z_dim=98, shape=(3, 32, 32), classes=10)


def test_projection_discriminator_adds_the_inner_product_of_the_class_embedding_and_the_features():
    torch.manual_seed(0)
    D = BigGANDiscriminator((1, 28, 28), classes=10, channels=4).eval()
    x = torch.randn(5, 1, 28, 28)
    y1, y2 = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([9, 8, 7, 6, 5])
    phi = D.features(x)
    assert phi.shape == (5, 16) and (phi >= 0).all()  # ReLU, then a sum over positions
    e = D.embed.weight  # spectrally normalised (eval: the stored estimate)
    assert torch.allclose(D(x, y1), D.head(phi) + (e[y1] * phi).sum(1, keepdim=True), atol=1e-5)
    # changing only the class moves the output by ⟨e(y1) - e(y2), φ(x)⟩
    assert torch.allclose(D(x, y1) - D(x, y2), ((e[y1] - e[y2]) * phi).sum(1, keepdim=True), atol=1e-5)


def test_self_attention_starts_as_the_identity_and_matches_a_direct_computation():
    torch.manual_seed(0)
    att = SelfAttention(16).eval()
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(att(x), x)  # γ = 0 at initialisation
    with torch.no_grad():
        att.gamma.fill_(0.7)
    out = att(x)
    # by hand, one position at a time: position i attends over the 16 max-pooled positions j
    theta = att.theta(x).flatten(2)[0]  # (2, 64)
    phi = F.max_pool2d(att.phi(x), 2).flatten(2)[0]  # (2, 16)
    g = F.max_pool2d(att.g(x), 2).flatten(2)[0]  # (8, 16)
    for i in (0, 27, 63):
        weights = torch.softmax(theta[:, i] @ phi, 0)
        assert weights.sum().item() == pytest.approx(1.0)
        mixed = (g * weights).sum(1)  # (8,)
        o = att.o(mixed.view(1, 8, 1, 1)).flatten()
        assert torch.allclose(out[0, :, i // 8, i % 8], x[0, :, i // 8, i % 8] + 0.7 * o, atol=1e-5)


def test_attention_goes_after_the_block_at_its_side_and_a_side_without_one_is_one_sentence():
    G = BigGANGenerator(z_dim=64, shape=(1, 32, 32), classes=3, channels=4, attention=16)
    assert list(G.attention) == ["1"]  # blocks output 8, 16, 32
    D = BigGANDiscriminator((1, 32, 32), classes=3, channels=4, attention=16)
    assert list(D.attention) == ["0"]  # blocks output 16, 8, 4, 4
    from fewlabels.gan.nets.biggan import check_attention
    with pytest.raises(UserError, match="model.attention is 12 but a 32x32 BigGAN has blocks at sides 8, 16, 32"):
        check_attention(32, 12)


def test_orthogonal_gradient_added_directly_is_the_penalty_s_gradient():
    torch.manual_seed(0)
    weights = [torch.randn(4, 3, 3, 3, requires_grad=True), torch.randn(5, 7, requires_grad=True)]
    orthogonal_penalty(weights, beta=1e-2).backward()
    by_autograd = [w.grad.clone() for w in weights]
    for w in weights:
        w.grad.zero_()
    add_orthogonal_gradient_(weights, beta=1e-2)
    for a, b in zip(by_autograd, weights):
        assert torch.allclose(a, b.grad, rtol=1e-5, atol=1e-7)


def test_spectral_norm_and_orthogonal_initialisation_on_every_layer():
    from torch.nn.utils import parametrize
    G = BigGANGenerator(z_dim=32, shape=(1, 8, 8), classes=10, channels=4, embed_dim=8)
    D = BigGANDiscriminator((1, 8, 8), classes=10, channels=4)
    for net in (G, D):
        layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    w = G.linear.parametrizations.weight.original  # (64·16, 16): orthonormal columns
    assert torch.allclose(w.t() @ w, torch.eye(w.shape[1]), atol=1e-5)
    assert parametrize.is_parametrized(D.embed, "weight") and not parametrize.is_parametrized(G.shared, "weight")


# ---- the conditional path in the trainer ------------------------------------------------
@pytest.mark.parametrize("model", [{"name": "dcgan", "z_dim": 8, "channels": 8},
                                   {"name": "progan", "z_dim": 8, "channels": 8, "phase_images": 64}])
def test_every_image_architecture_opts_into_the_conditional_path(tmp_path, model, capsys):
    from fewlabels import config as configlib
    from fewlabels.gan.nets.conditional import ConcatGenerator, ProjectionDiscriminator
    from fewlabels.loop import build_experiment
    cfg = configlib.load(biggan_config(tmp_path, model={**model, "conditional": True},
                                       loss={"name": "hinge", "constraint": "sn", "ortho_g": 0.0}))
    exp = build_experiment(cfg, torch.device("cpu"))
    assert isinstance(exp.G, ConcatGenerator) and isinstance(exp.D, ProjectionDiscriminator)
    for step in range(1, 4):
        logs = exp.train_step(step)
    assert torch.isfinite(logs["loss_d"]) and torch.isfinite(logs["loss_g"])
    x, labels = exp.sample_labelled(20, label=3)
    assert x.shape == (20, 1, 8, 8) and (labels == 3).all()
    # D's output at class y: its unconditional head plus the projection, by hand
    real = torch.from_numpy(exp.data.held[:4])
    y = torch.tensor([0, 1, 2, 3])
    D = exp.D.eval()
    features, head = D._parts
    phi = features(real)
    assert torch.allclose(D(real, y), head(phi) + (D.embed.weight[y] * phi).sum(1, keepdim=True), atol=1e-5)
    # every layer is in the state dict once, under the unconditional D's own names
    assert not [k for k in D.state_dict() if not k.startswith(("discriminator.", "embed."))]


def test_labels_for_g_are_drawn_as_the_data_has_them_or_uniformly(tmp_path):
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment
    exp = build_experiment(configlib.load(biggan_config(tmp_path)), torch.device("cpu"))
    assert torch.allclose(exp.label_probs, torch.as_tensor(exp.data.class_frequencies(), dtype=torch.float32))
    drawn = exp._draw_labels(20_000)
    assert np.abs(np.bincount(drawn.numpy(), minlength=10) / 20_000 - exp.data.class_frequencies()).max() < 0.01
    exp = build_experiment(configlib.load(biggan_config(tmp_path, model={"labels": "uniform"})), torch.device("cpu"))
    assert torch.allclose(exp.label_probs, torch.full((10,), 0.1))


def test_the_ema_generator_carries_g_s_spectral_norm_vectors(tmp_path):
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment
    exp = build_experiment(configlib.load(biggan_config(tmp_path)), torch.device("cpu"))
    assert exp._sn_pairs
    for step in range(1, 4):
        exp.train_step(step)
    for ema_buffer, g_buffer in exp._sn_pairs:
        assert torch.equal(ema_buffer, g_buffer)


def test_the_ema_generator_s_spectral_norms_are_estimated_on_its_own_weights(tmp_path):
    """σ̂ = uᵀ W v of the EMA generator's SN layers against σ(W) by SVD: with G's vectors (copied each
    step) σ̂ is another network's estimate; before sampling they are refined on the EMA weights."""
    from torch.nn.utils import parametrize

    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    def worst_error(net):
        errors = []
        for m in net.modules():
            if parametrize.is_parametrized(m, "weight"):
                sn = m.parametrizations.weight[0]
                w = sn._reshape_weight_to_matrix(m.parametrizations.weight.original)
                errors.append(abs(torch.vdot(sn._u, torch.mv(w, sn._v)) / torch.linalg.matrix_norm(w, 2) - 1).item())
        return max(errors)

    checkpoint.seed_everything(0)  # the weights, not the test order, decide the numbers
    exp = build_experiment(configlib.load(biggan_config(tmp_path, optim={"lr_g": 2e-3}, train={"ema": 0.9})),
                           torch.device("cpu"))
    for step in range(1, 41):
        exp.train_step(step)
    copied = worst_error(exp.G_ema)
    exp.sample(4)
    assert worst_error(exp.G_ema) < copied / 4, (worst_error(exp.G_ema), copied)


def test_standing_statistics_follow_the_truncation_samples_are_drawn_at(tmp_path):
    from fewlabels import config as configlib
    from fewlabels.gan.nets import batch_norms
    from fewlabels.loop import build_experiment
    exp = build_experiment(configlib.load(biggan_config(tmp_path)), torch.device("cpu"))
    for step in range(1, 5):
        exp.train_step(step)

    def statistics():
        return [n.running_var.clone() for n in batch_norms(exp.G_ema)]

    exp.sample_labelled(4)
    plain = statistics()
    exp.sample_labelled(4, truncation=0.25)
    truncated = statistics()
    # z within ±0.25 varies far less than N(0, 1): so do the first block's pre-norm activations
    assert truncated[0].mean() < plain[0].mean()
    exp.sample_labelled(4)
    assert all(torch.equal(a, b) for a, b in zip(plain, statistics()))


def test_biggan_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    once, twice = tmp_path / "once", tmp_path / "twice"
    cfg = biggan_config(tmp_path)
    assert main(["train", str(cfg), "--out", str(once), "--device", "cpu"]) == 0
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu", "--set", "train.steps=4"]) == 0
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu"]) == 0
    a, step_a = final_state(once)
    b, step_b = final_state(twice)
    assert step_a == step_b == 8
    assert_bitwise_equal(a, b)  # weights, SN vectors, optimisers, EMA and its statistics, RNG


# ---- sampling and evaluation --------------------------------------------------------------
@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("biggan")
    assert main(["train", str(biggan_config(tmp, eval={"samples": 100})), "--out", str(tmp / "run"),
                 "--device", "cpu"]) == 0
    return tmp / "run"


def test_sample_by_class_and_balanced_with_labels_beside(biggan_run, tmp_path, capsys):
    code, out = run_cli(capsys, "sample", biggan_run, "--n", 25, "--out", tmp_path / "s.npy")
    assert code == 0, out.err
    result = json.loads(out.out)
    labels = np.load(tmp_path / "s.labels.npy")
    assert result["labels"] == str(tmp_path / "s.labels.npy")
    assert np.array_equal(labels, np.arange(25) % 10) and np.load(tmp_path / "s.npy").shape == (25, 1, 8, 8)
    code, out = run_cli(capsys, "sample", biggan_run, "--n", 5, "--out", tmp_path / "k.npy", "--class", 7,
                        "--truncation", 0.5)
    assert code == 0 and not (tmp_path / "k.labels.npy").exists()
    from fewlabels import api
    run = api.load(biggan_run)
    a = run.sample(5, label=7, truncation=0.5)
    assert np.array_equal(a, np.load(tmp_path / "k.npy"))
    assert not np.array_equal(a, run.sample(5, label=2, truncation=0.5))  # the class matters


def test_evaluation_reports_class_consistency_and_intra_class_fd_with_floors(biggan_run):
    from fewlabels import api
    scores = api.load(biggan_run).evaluate()
    for key in ("class_consistency", "intra_fd", "real_class_consistency", "real_intra_fd", "real_intra_fd_std"):
        assert np.isfinite(scores[key]), key
    assert 90 < scores["real_class_consistency"] <= 100  # the classifier on held-out real digits


def test_truncation_curve_is_one_command_and_one_figure(biggan_run, tmp_path, capsys):
    out = tmp_path / "t.png"
    code, res = run_cli(capsys, "truncation", biggan_run, "--values", 0.5, 2, "--out", out)
    assert code == 0, res.err
    rows = json.loads(res.out)["rows"]
    assert [r["truncation"] for r in rows] == [0.5, 2.0] and out.exists() and out.with_suffix(".json").exists()
    assert all("class_consistency" in r and "fd" in r for r in rows)


def test_report_shows_a_per_class_grid_and_a_truncation_strip(biggan_run):
    html = (biggan_run / "report.html").read_text()
    assert "Samples by class" in html and "Truncation strip" in html
    assert (biggan_run / "samples" / "per_class.png").exists()


# ---- bad input ----------------------------------------------------------------------------
def one_sentence(code, captured):
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewlabels: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize("args, phrase", [
    (["--class", 10], "--class is 10; this run's data has classes 0 to 9"),
    (["--class", -1], "--class is -1; this run's data has classes 0 to 9"),
    (["--truncation", 0], "--truncation is 0.0; give a positive threshold"),
    (["--truncation", -1], "--truncation is -1.0; give a positive threshold"),
])
def test_bad_class_or_truncation_is_one_sentence(biggan_run, tmp_path, capsys, args, phrase):
    msg = one_sentence(*run_cli(capsys, "sample", biggan_run, "--n", 4, "--out", tmp_path / "x.npy", *args))
    assert phrase in msg and not (tmp_path / "x.npy").exists()


def test_class_for_an_unconditional_run_is_one_sentence(tmp_path, capsys):
    cfg = biggan_config(tmp_path, model={"name": "dcgan", "conditional": False}, loss={"ortho_g": 0.0},
                        train={"steps": 2})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    msg = one_sentence(*run_cli(capsys, "sample", tmp_path / "r", "--n", 4, "--out", tmp_path / "x.npy",
                                "--class", 1))
    assert "this run's generator is unconditional" in msg


def test_conditional_training_on_unlabelled_images_is_one_sentence(tmp_path, capsys):
    images = np.random.default_rng(0).uniform(-1, 1, (64, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    cfg = biggan_config(tmp_path, data={"name": "images", "path": str(tmp_path / "x.npy")})
    msg = one_sentence(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "class-conditional training needs labelled images" in msg or "needs labelled images" in msg
    assert not (tmp_path / "r" / "checkpoints").exists() or not any((tmp_path / "r" / "checkpoints").iterdir())


@pytest.mark.parametrize("sections, phrase", [
    ({"model": {"conditional": False}}, "BigGAN is class-conditional"),
    ({"data": {"name": "ring8"}, "model": {"name": "mlp"}}, "conditional training needs labelled images"),
    ({"model": {"z_dim": 15}}, "model.z_dim is 15 but BigGAN's hierarchical latent splits z into 2"),
    ({"model": {"attention": 16}}, "model.attention is 16 but a 8x8 BigGAN has blocks at sides 8"),
    ({"loss": {"constraint": "gp"}}, "BigGAN's D carries spectral norm itself"),
])
def test_bad_biggan_configs_are_one_sentence(tmp_path, capsys, sections, phrase):
    msg = one_sentence(*run_cli(capsys, "train", biggan_config(tmp_path, **sections), "--out", tmp_path / "r"))
    assert phrase in msg


def test_eval_takes_a_truncation_for_gans_only(biggan_run, tmp_path, capsys):
    code, out = run_cli(capsys, "eval", biggan_run, "--truncation", 0.5)
    assert code == 0, out.err
    scores = json.loads(out.out)
    assert scores["truncation"] == 0.5 and "class_consistency" in scores
    msg = one_sentence(*run_cli(capsys, "eval", biggan_run, "--truncation", 0))
    assert "--truncation is 0.0; give a positive threshold" in msg


# ---- the shipped configs ------------------------------------------------------------------
FEW_STEPS = ["train.steps=2", "train.batch_size=8", "model.channels=4", "train.eval_every=0",
             "train.snapshot_every=0", "train.checkpoint_every=2", "train.threads=1", "eval.samples=64"]


@pytest.mark.slow(seconds=12)
@pytest.mark.parametrize("name", ["fashion_biggan", "fashion_biggan_paper"])
def test_fashion_biggan_configs_run_a_few_cpu_steps(tmp_path, name):
    from pathlib import Path

    from fewlabels import config as configlib
    from fewlabels.data.images import IDX_DEFAULT_ROOTS
    from fewlabels.loop import train

    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    cfg = configlib.load_shipped(f"gan/{name}.yaml", ["data.limit=256", *FEW_STEPS])
    summary = train(cfg, str(tmp_path / "run"), device="cpu")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["class_consistency"])


def test_cifar10_biggan_config_runs_on_the_cifar_batches(tmp_path):
    from fewlabels import config as configlib
    from fewlabels.loop import train
    from test_image_data import write_cifar

    root = write_cifar(tmp_path / "cifar-10-batches-py", n=20)
    cfg = configlib.load_shipped("gan/cifar10_biggan.yaml", [f"data.root={root}", *FEW_STEPS])
    assert (cfg.model.z_dim, cfg.optim.betas, cfg.train.n_critic) == (80, (0.5, 0.999), 5)  # StudioGAN's
    summary = train(cfg, str(tmp_path / "run"), device="cpu")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["fd"])


def test_accumulating_labelled_chunks_equals_one_batch_k_times_larger(tmp_path):
    """train.accumulate on the conditional path: images, their labels and G's labels chunked
    together. G's batch norm is put in eval mode (running statistics) so that every part is
    linear in the batch, and one step of D and of G lands where one big batch does."""
    from fewlabels import checkpoint
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    def one_step(batch: int, k: int):
        cfg = configlib.load(biggan_config(
            tmp_path, name=f"a{k}.yaml", model={"name": "dcgan", "z_dim": 8, "channels": 8},
            loss={"name": "hinge", "constraint": "none", "ortho_g": 0.0, "r1_weight": 1.0},
            train={"batch_size": batch, "accumulate": k, "reuse_fake": False, "n_critic": 2}))
        checkpoint.seed_everything(cfg.seed)
        exp = build_experiment(cfg, torch.device("cpu"))
        exp.G.eval()
        logs = exp.train_step(1)
        return exp, logs

    big, big_logs = one_step(64, 1)
    acc, acc_logs = one_step(16, 4)
    for net in ("G", "D"):
        for a, b in zip(getattr(big, net).parameters(), getattr(acc, net).parameters()):
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-7), net
            assert torch.allclose(a, b, atol=1e-6), net
    for key in ("loss_d", "r1", "loss_g"):
        assert torch.allclose(big_logs[key], acc_logs[key], atol=1e-6), key
