"""The reverse process, checked against the exact denoiser of Gaussian data (no training)."""

import math

import pytest
import torch

from fewlabels.diffusion.samplers import ddim_reverse, ddim_timesteps, ddpm_reverse, last
from fewlabels.diffusion.schedules import NoiseSchedule

MU, STD = 2.0, 0.5  # data: x_0 ~ N(MU, STD² I)


def optimal_epsilon(schedule):
    """E[ε | x_t] for Gaussian data: √(1-ᾱ)(x_t - √ᾱ μ) / (ᾱ s² + 1 - ᾱ), the best any network can do."""
    def model(x, t):
        abar = schedule.alphas_cumprod[t].float()[:, None]
        return (1 - abar).sqrt() * (x - abar.sqrt() * MU) / (abar * STD**2 + 1 - abar)
    return model


def noise(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), g


@pytest.mark.parametrize("variance", ["small", "beta"])
def test_ddpm_with_the_exact_denoiser_samples_the_data_distribution(variance):
    s = NoiseSchedule.make("linear", 200)
    x, g = noise(20_000)
    out = last(ddpm_reverse(optimal_epsilon(s), s, x, g, variance=variance))
    assert out.mean().item() == pytest.approx(MU, abs=0.02)
    assert out.std().item() == pytest.approx(STD, rel=0.05)


@pytest.mark.parametrize("steps, eta", [(50, 0.0), (1000, 1.0)])
def test_ddim_with_the_exact_denoiser_samples_the_data_distribution(steps, eta):
    s = NoiseSchedule.make("cosine", 1000)
    x, g = noise(20_000)
    out = last(ddim_reverse(optimal_epsilon(s), s, x, g, steps=steps, eta=eta))
    assert out.mean().item() == pytest.approx(MU, abs=0.02)
    assert out.std().item() == pytest.approx(STD, rel=0.05 if steps < 1000 else 0.02)


def test_fewer_ddim_steps_shrink_the_spread_and_more_steps_converge():
    """The discretisation error of the few-step sampler, even with a perfect network."""
    s = NoiseSchedule.make("cosine", 1000)
    stds = []
    for steps in (10, 50, 1000):
        x, g = noise(20_000)
        stds.append(last(ddim_reverse(optimal_epsilon(s), s, x, g, steps=steps)).std().item())
    assert stds[0] < stds[1] < stds[2]
    assert stds[2] == pytest.approx(STD, rel=0.01)


def test_ddim_with_eta_one_and_every_step_is_ddpm_with_the_posterior_variance():
    s = NoiseSchedule.make("linear", 100)
    model = optimal_epsilon(s)
    x, g1 = noise(500, seed=3)
    _, g2 = noise(500, seed=3)
    a = last(ddpm_reverse(model, s, x.clone(), g1, variance="small"))
    b = last(ddim_reverse(model, s, x.clone(), g2, steps=100, eta=1.0))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_ddim_is_deterministic_with_eta_zero():
    s = NoiseSchedule.make("linear", 1000)
    x, _ = noise(100)
    a = last(ddim_reverse(optimal_epsilon(s), s, x, torch.Generator().manual_seed(1), steps=20))
    b = last(ddim_reverse(optimal_epsilon(s), s, x, torch.Generator().manual_seed(2), steps=20))
    assert torch.equal(a, b)


def test_ddim_timesteps_start_from_pure_noise_and_are_evenly_spaced():
    assert ddim_timesteps(1000, 10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    assert ddim_timesteps(10, 50) == list(range(9, -1, -1))  # never more steps than T


def test_reverse_yields_x_T_first_and_x_0_last():
    s = NoiseSchedule.make("linear", 20)
    x, g = noise(4)
    ts = [t for t, _ in ddpm_reverse(optimal_epsilon(s), s, x, g)]
    assert ts == list(range(20, -1, -1))
    ts = [t for t, _ in ddim_reverse(optimal_epsilon(s), s, x, g, steps=4)]
    assert ts == [20, 15, 10, 5, 0]


def test_clipping_keeps_the_predicted_x0_in_range():
    s = NoiseSchedule.make("linear", 50)
    x, g = noise(2000)
    out = last(ddim_reverse(optimal_epsilon(s), s, x, g, steps=10, clip=1.0))
    assert out.max().item() <= 1.0 + 1e-5
    assert math.isfinite(out.sum().item())
