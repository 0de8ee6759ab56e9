"""Noise schedules and the forward process: the formulas of the DDPM and improved-DDPM papers."""

import math

import pytest
import torch

from fewlabels.diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas
from fewlabels.errors import UserError


def test_linear_schedule_is_the_ddpm_papers():
    s = NoiseSchedule.make("linear", 1000)
    assert s.T == 1000
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert s.alphas_cumprod[-1].item() < 1e-4  # x_T is (nearly) pure noise


def test_linear_schedule_for_fewer_steps_keeps_the_total_noise():
    assert linear_betas(100)[-1].item() == pytest.approx(0.2)
    assert NoiseSchedule(linear_betas(100)).alphas_cumprod[-1].item() < 1e-4


def test_cosine_schedule_follows_improved_ddpm_alpha_bar():
    T, s = 1000, 0.008
    sched = NoiseSchedule(cosine_betas(T))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    for t in (1, 10, 500, 900):
        assert sched.alphas_cumprod[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert sched.betas.max().item() <= 0.999


def test_closed_form_marginal_equals_noising_one_step_at_a_time():
    """x_t = √α_t x_{t-1} + √β_t ε, iterated, has mean √ᾱ_t x_0 and variance 1 - ᾱ_t."""
    s = NoiseSchedule.make("linear", 1000)
    scale, var = 1.0, 0.0
    for t in range(1000):
        a = s.alphas[t].item()
        scale, var = math.sqrt(a) * scale, a * var + s.betas[t].item()
        if t in (0, 10, 500, 999):
            assert scale == pytest.approx(s.alphas_cumprod[t].sqrt().item(), rel=1e-9)
            assert var == pytest.approx(1 - s.alphas_cumprod[t].item(), rel=1e-9)


def test_q_sample_draws_from_the_closed_form_marginal():
    s = NoiseSchedule.make("cosine", 1000)
    x0 = torch.full((200_000, 1), 1.5)
    t = torch.full((200_000,), 300)
    xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
    abar = s.alphas_cumprod[300].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 1.5, abs=0.01)
    assert xt.var().item() == pytest.approx(1 - abar, rel=0.02)


def test_posterior_is_bayes_rule_for_gaussians():
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): precisions add."""
    s = NoiseSchedule.make("linear", 1000)
    x0, xt = torch.tensor([[0.7]]), torch.tensor([[-0.3]])
    for i in (1, 50, 999):
        a, b, abar_prev = s.alphas[i].item(), s.betas[i].item(), s.alphas_cumprod_prev[i].item()
        var = 1 / (a / b + 1 / (1 - abar_prev))
        mean = var * (math.sqrt(a) * xt.item() / b + math.sqrt(abar_prev) * x0.item() / (1 - abar_prev))
        got_mean, got_var = s.q_posterior(x0, xt, torch.tensor([i]))
        assert got_mean.item() == pytest.approx(mean, rel=1e-5)
        assert got_var.item() == pytest.approx(var, rel=1e-5)


def test_epsilon_and_v_conversions_round_trip():
    s = NoiseSchedule.make("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    t = torch.randint(1000, (64,), generator=g)
    xt = s.q_sample(x0, t, eps)
    # float32 tables: the round trip is exact up to the amplification 1/√ᾱ_t at the noisiest t
    torch.testing.assert_close(s.x0_from_eps(xt, t, eps), x0, atol=2e-3, rtol=0)
    torch.testing.assert_close(s.x0_from_v(xt, t, s.velocity(x0, t, eps)), x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(s.eps_from_x0(xt, t, x0), eps, atol=1e-4, rtol=0)


@pytest.mark.parametrize("args, words", [
    (("quadratic", 1000), "noise schedule 'quadratic' is unknown; valid: linear, cosine"),
    (("linear", 0), "T is 0; it must be at least 1"),
])
def test_bad_schedules_are_one_sentence(args, words):
    with pytest.raises(UserError, match=words):
        NoiseSchedule.make(*args)


def test_betas_outside_zero_one_are_refused():
    with pytest.raises(UserError, match=r"every β_t must lie in \(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.0]))


def test_forward_process_and_posterior_match_diffusers_when_it_is_installed():
    diffusers = pytest.importorskip("diffusers")
    theirs = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4,
                                     beta_end=0.02, clip_sample=False)
    ours = NoiseSchedule.make("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(256, 2, generator=g), torch.randn(256, 2, generator=g)
    t = torch.randint(1000, (256,), generator=g)
    # diffusers accumulates ᾱ_t in float32, we in float64: they agree to float32 rounding
    torch.testing.assert_close(ours.q_sample(x0, t, eps), theirs.add_noise(x0, eps, t), atol=1e-5, rtol=0)
    for i in (1, 10, 500, 999):
        assert ours.posterior_variance[i].item() == pytest.approx(float(theirs._get_variance(i)), rel=1e-3)
