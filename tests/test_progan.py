"""Progressive GAN: the growth schedule, fade-in continuity, and resume in the middle of a fade-in."""

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_bitwise_equal, final_state, write_config
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.gan.nets.progan import ProDiscriminator, ProGenerator, levels_for, minibatch_std, real_at_stage, stage_at


def test_growth_schedule_trains_4x4_then_fades_in_each_level_then_stabilises():
    phase = 100
    assert stage_at(0, 2, phase) == (0, 1.0) and stage_at(99, 2, phase) == (0, 1.0)
    assert stage_at(100, 2, phase) == (1, 0.0) and stage_at(150, 2, phase) == (1, 0.5)
    assert stage_at(250, 2, phase) == (1, 1.0)  # stabilising
    assert stage_at(300, 2, phase) == (2, 0.0) and stage_at(10_000, 2, phase) == (2, 1.0)


def test_at_the_start_of_a_fade_in_the_networks_equal_the_previous_level():
    torch.manual_seed(0)
    G, D = ProGenerator(16, (1, 16, 16), 8), ProDiscriminator((1, 16, 16), 8)
    z, x = torch.randn(4, 16), torch.randn(4, 1, 16, 16)
    G.set_stage(1, 1.0)
    old = F.interpolate(G(z), scale_factor=2, mode="nearest")
    G.set_stage(2, 0.0)
    assert torch.allclose(G(z), old, atol=1e-6)
    D.set_stage(1, 1.0)
    old_score = D(F.avg_pool2d(x, 2))
    D.set_stage(2, 0.0)
    assert torch.allclose(D(x), old_score, atol=1e-5)
    assert real_at_stage(x, 2, 1.0, 2).shape == x.shape and real_at_stage(x, 1, 1.0, 2).shape == (4, 1, 8, 8)


def test_minibatch_std_is_taken_over_groups_of_four_samples():
    """Karras et al. 2018, section 3 and their code: the std is over groups of 4, and each sample
    gets its own group's value. Here one group is collapsed (σ = √1e-8) and the other is not."""
    torch.manual_seed(0)
    x = torch.cat([torch.randn(1, 3, 4, 4).expand(4, -1, -1, -1), 5 * torch.randn(4, 3, 4, 4)])
    feature = minibatch_std(x)[:, -1]
    assert feature.shape == (8, 4, 4)
    assert torch.allclose(feature[:4], torch.full((4, 4, 4), 1e-4))
    spread = torch.sqrt(x[4:].var(dim=0, unbiased=False) + 1e-8).mean()
    assert torch.allclose(feature[4:], spread.expand(4, 4, 4))
    assert torch.equal(minibatch_std(x[:2])[:, -1], minibatch_std(x[:2], group_size=2)[:, -1])  # min(4, N)


def test_gradient_penalty_through_minibatch_std_stays_finite_for_a_collapsed_batch():
    """Where a feature is equal over the batch (a collapsed generator; under bf16 autocast, a few
    features of an ordinary batch) its σ is 0. WGAN-GP differentiates D's input gradient, so D's
    weights get the second derivative of σ: with torch's std that was 0/0 = NaN (anomaly mode put
    it in std's DivBackward), and a Fashion-MNIST ProGAN in bf16 diverged at step 62."""
    from fewlabels.gan.lipschitz import gradient_penalty

    torch.manual_seed(0)
    D = ProDiscriminator((1, 8, 8), 4)
    same = torch.randn(1, 1, 8, 8).expand(8, -1, -1, -1).contiguous()
    gradient_penalty(D, same, same.clone(), torch.rand(8)).backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)


def test_progan_needs_power_of_two_images():
    with pytest.raises(UserError, match="28x28"):
        levels_for(28)


def progan_config(tmp_path, **train):
    return write_config(tmp_path / "p.yaml", data={"name": "digits"},
                        model={"name": "progan", "z_dim": 16, "channels": 8, "phase_images": 320},
                        loss={"name": "wasserstein", "constraint": "gp", "drift": 0.001},
                        optim={"lr_g": 0.001, "lr_d": 0.001, "betas": [0.0, 0.99]},
                        train={"steps": 16, "batch_size": 32, "log_every": 4, "snapshot_every": 4,
                               "checkpoint_every": 4, "eval_every": 0, **train})


def test_progan_batch_must_split_into_minibatch_std_groups(tmp_path):
    from fewlabels import config as configlib

    with pytest.raises(UserError, match="train.batch_size is 30 .* multiple of 4"):
        configlib.load(progan_config(tmp_path, batch_size=30))


def optimiser_steps(exp, first: int, last: int) -> dict[int, tuple[float, float]]:
    """After each step: Adam's step count for a G and a D weight trained from the first stage."""
    counts = {}
    for step in range(first, last + 1):
        exp.train_step(step)
        counts[step] = tuple(float(opt.state[p]["step"]) for opt, p in ((exp.opt_G, exp.G.fc.weight),
                                                                            (exp.opt_D, exp.D.fc1.weight)))
    return counts


@pytest.mark.parametrize("reset", [True, False])
def test_adam_moments_restart_from_zero_when_a_fade_in_starts_and_ends(tmp_path, reset):
    """The paper's code resets the optimisers at every change of floor(lod) or ceil(lod)
    (reset_opt_for_new_lod=True): here the 8x8 fade-in starts at step 11 and ends at step 21."""
    from fewlabels import config as configlib
    from fewlabels.loop import build_experiment

    cfg = configlib.load(progan_config(tmp_path), ["optim.betas=[0.5, 0.99]", f"optim.reset_on_growth={reset}"])
    exp = build_experiment(cfg, torch.device("cpu"))
    counts = optimiser_steps(exp, 1, 11)
    assert counts[10] == (10, 10)
    assert counts[11] == ((1, 1) if reset else (11, 11))
    # one Adam step from zero moments: m = (1 - β1)·g, v = (1 - β2)·g²
    for opt, p in ((exp.opt_G, exp.G.fc.weight), (exp.opt_D, exp.D.fc1.weight)):
        fresh = torch.allclose(opt.state[p]["exp_avg"], 0.5 * p.grad, atol=1e-7)
        assert fresh == reset
        if reset:
            assert torch.allclose(opt.state[p]["exp_avg_sq"], 0.01 * p.grad ** 2, atol=1e-9)
    counts = optimiser_steps(exp, 12, 21)
    assert counts[20] == ((10, 10) if reset else (20, 20))
    assert counts[21] == ((1, 1) if reset else (21, 21))


def test_progan_resumes_mid_fade_in_bitwise(tmp_path):
    cfg = progan_config(tmp_path, steps=22)  # the fade-in ends at step 21 (an optimiser reset) after resuming
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert main(["train", str(cfg), "--out", str(once), "--device", "cpu"]) == 0
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu", "--set", "train.steps=13"]) == 0
    state, step = final_state(twice)
    assert step == 13 and state["stage"][0] == 1 and 0 < state["stage"][1] < 1  # stopped during the fade-in
    assert main(["train", str(cfg), "--out", str(twice), "--device", "cpu"]) == 0
    a, _ = final_state(once)
    b, _ = final_state(twice)
    assert_bitwise_equal(a, b)
    assert (twice / "samples" / "growth.png").exists()  # the growth strip: 4x4 then 8x8
