"""Specifications of fewlabels.gan.theory (Theorem 1 of Goodfellow et al. 2014, WGAN Example 1)
and of the figures in fewlabels.gan.theory_plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon as scipy_js_distance
from scipy.stats import entropy as scipy_kl

from fewlabels.gan.theory import (
    default_mixtures,
    grid,
    jensen_shannon,
    kl,
    mixture_pdf,
    optimal_discriminator,
    parallel_lines,
    sample_mixture,
    theorem1_check,
    train_discriminator,
    virtual_training_criterion,
)
from fewlabels.gan.theory_plots import plot_parallel_lines, plot_theorem1

LOG4 = math.log(4.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------- quadrature building blocks
@pytest.mark.parametrize("dim", [1, 2])
def test_mixture_pdf_integrates_to_one_on_a_wide_grid(dim):
    (means, stds, weights), _ = default_mixtures(dim)
    points, cell = grid(-10.0, 10.0, 2000 if dim == 1 else 300, dim)
    assert points.shape[1] == dim
    assert mixture_pdf(points, means, stds, weights).sum() * cell == pytest.approx(
        1.0, abs=1e-9
    )


def test_mixture_pdf_matches_the_gaussian_formula_for_one_component():
    x = np.array([[0.0], [1.0], [-2.0]])
    expected = np.exp(-((x[:, 0] - 0.5) ** 2) / (2 * 0.7**2)) / math.sqrt(
        2 * math.pi * 0.7**2
    )
    np.testing.assert_allclose(
        mixture_pdf(x, [0.5], [0.7], [3.0]), expected, rtol=1e-12
    )


def test_kl_and_jensen_shannon_agree_with_scipy_on_discrete_distributions():
    rng = np.random.default_rng(0)
    p, q = rng.random(50), rng.random(50)
    p, q = p / p.sum(), q / q.sum()
    assert kl(p, q, cell=1.0) == pytest.approx(scipy_kl(p, q), rel=1e-12)
    # scipy returns the JS *distance*, the square root of the divergence.
    assert jensen_shannon(p, q, cell=1.0) == pytest.approx(
        scipy_js_distance(p, q) ** 2, rel=1e-10
    )


def test_kl_is_infinite_where_q_vanishes_on_the_support_of_p_and_js_is_log2_for_disjoint_supports():
    p, q = np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.5, 0.5])
    assert kl(p, q, 1.0) == math.inf
    assert jensen_shannon(p, q, 1.0) == pytest.approx(math.log(2.0), rel=1e-14)


# ----------------------------------------------------------------- Theorem 1
def reference_criterion_and_jsd(dim: int) -> tuple[float, float]:
    """C(G) and JSD(p_data || p_g) of ``default_mixtures(dim)`` computed apart from
    fewlabels.gan.theory: densities from scipy.stats; in 1D by scipy's adaptive quadrature, in 2D
    by scipy's Simpson rule (both accurate far beyond 1e-8 here). Returns (C, JSD)."""
    from scipy.integrate import quad, simpson
    from scipy.special import xlogy
    from scipy.stats import multivariate_normal

    def density(mixture):
        means, stds, weights = mixture
        w = np.asarray(weights, dtype=float) / np.sum(weights)
        parts = [multivariate_normal(np.atleast_1d(m), s**2 * np.eye(dim)) for m, s in zip(means, stds)]
        return lambda x: sum(wk * part.pdf(x) for wk, part in zip(w, parts))

    data, gen = default_mixtures(dim)
    p, q = density(data), density(gen)
    if dim == 1:  # beyond ±12 both densities are below 1e-30
        def integral(f):
            return quad(f, -12.0, 12.0, points=[-2.0, -0.5, 1.5, 2.0], limit=200, epsabs=1e-12)[0]

        c = integral(lambda x: xlogy(p(x), p(x) / (p(x) + q(x))) + xlogy(q(x), q(x) / (p(x) + q(x))))
        js = integral(lambda x: 0.5 * xlogy(p(x), 2 * p(x) / (p(x) + q(x)))
                      + 0.5 * xlogy(q(x), 2 * q(x) / (p(x) + q(x))))
        return c, js

    # 2D: Simpson's rule along each axis of a 1401 x 1401 grid on [-14, 14]^2 (the densities are
    # below 1e-30 beyond it)
    axis = np.linspace(-14.0, 14.0, 1401)
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    points = np.stack([xx, yy], -1)
    pp, qq = p(points), q(points)
    ss = pp + qq
    c = simpson(simpson(xlogy(pp, pp / ss) + xlogy(qq, qq / ss), x=axis), x=axis)
    js = simpson(simpson(0.5 * xlogy(pp, 2 * pp / ss) + 0.5 * xlogy(qq, 2 * qq / ss), x=axis), x=axis)
    return c, js


@pytest.mark.parametrize("dim", [1, 2])
def test_virtual_training_criterion_equals_minus_log4_plus_twice_jsd(dim):
    r = theorem1_check(dim)
    c, js = reference_criterion_and_jsd(dim)
    # The grid's C(G) and JSD are those of an independent integration...
    assert r["C"] == pytest.approx(c, abs=1e-8)
    assert r["JSD"] == pytest.approx(js, abs=1e-8)
    # ...and the theorem holds for them.
    assert r["identity_error"] < 1e-6
    assert c == pytest.approx(-LOG4 + 2.0 * js, abs=1e-7)
    # The generator differs from the data, so C(G) sits strictly above its minimum.
    assert r["JSD"] > 0.05
    assert r["C"] > -LOG4 + 0.1


@pytest.mark.parametrize("dim", [1, 2])
def test_virtual_training_criterion_is_minus_log4_when_the_generator_matches_the_data(
    dim,
):
    r = theorem1_check(dim)
    assert r["equality_error"] < 1e-6
    assert r["C_at_equality"] == pytest.approx(-LOG4, abs=1e-6)


def test_theorem1_check_returns_json_serialisable_numbers():
    r = theorem1_check(1)
    assert json.loads(json.dumps(r)) == r
    assert r["dim"] == 1 and r["n_points"] == r["n_per_axis"]


def test_theorem1_check_detects_a_grid_that_loses_mass():
    # On a grid that cuts off the tails the identity fails: the check is not vacuous.
    r = theorem1_check(1, lo=-2.0, hi=2.0, n=800)
    assert r["identity_error"] > 1e-3
    assert r["equality_error"] > 1e-3


def test_optimal_discriminator_lies_in_the_unit_interval():
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(1)
    points, _ = grid(-12.0, 12.0, 2000, 1)
    d = optimal_discriminator(
        mixture_pdf(points, dm, ds, dw), mixture_pdf(points, gm, gs, gw)
    )
    assert np.all((d >= 0.0) & (d <= 1.0))
    assert d.min() < 0.1 and d.max() > 0.8  # and it actually uses the range


def test_optimal_discriminator_is_one_half_where_the_densities_are_equal():
    p = np.array([0.3, 1e-12, 2.0, 0.0])
    np.testing.assert_array_equal(
        optimal_discriminator(p, p), np.full(4, 0.5)
    )  # 0/0 := 1/2


def test_optimal_discriminator_is_the_density_ratio():
    p, q = np.array([1.0, 0.0, 3.0]), np.array([0.0, 2.0, 1.0])
    np.testing.assert_allclose(optimal_discriminator(p, q), [1.0, 0.0, 0.75])


def test_optimal_discriminator_beats_any_other_discriminator_on_the_value_function():
    # V(D) = E_{p_data}[log D] + E_{p_g}[log(1 - D)] is maximised pointwise by D*; C(G) = V(D*).
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(1)
    points, cell = grid(-10.0, 10.0, 4000, 1)
    p, q = mixture_pdf(points, dm, ds, dw), mixture_pdf(points, gm, gs, gw)
    d_star = optimal_discriminator(p, q)

    def value(d):
        return float((p * np.log(d) + q * np.log1p(-d)).sum() * cell)

    c = virtual_training_criterion(p, q, cell)
    assert value(np.clip(d_star, 1e-300, 1 - 1e-16)) == pytest.approx(c, abs=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        other = np.clip(
            d_star + 0.05 * rng.standard_normal(d_star.shape), 1e-6, 1 - 1e-6
        )
        assert value(other) < c
    assert value(np.full_like(d_star, 0.5)) == pytest.approx(-LOG4, abs=1e-6)


# ----------------------------------------------------------------- WGAN Example 1
def test_parallel_lines_closed_form_matches_transport_and_histograms_of_samples():
    """Each closed form against an estimate from samples of the two laws (z stratified over 500
    strata): W by an exact optimal transport (POT's network simplex; its error is at most 1/500
    in z), JS, KL and TV by scipy on the joint histograms of (x at its distinct values, z in 20
    bins)."""
    import ot
    from scipy.spatial.distance import jensenshannon

    theta = np.array([-1.0, -0.3, 0.0, 1e-9, 0.5])
    r = parallel_lines(theta)
    n, bins = 500, 20
    rng = np.random.default_rng(0)

    def draw(x):
        z = (np.arange(n) + rng.uniform(size=n)) / n
        return np.column_stack([np.full(n, x), rng.permutation(z)])

    def histogram(points, xs):
        counts = np.zeros((len(xs), bins))
        np.add.at(counts, (np.searchsorted(xs, points[:, 0]), (points[:, 1] * bins).astype(int)), 1)
        return counts.ravel() / len(points)

    for i, t in enumerate(theta):
        p0, pt = draw(0.0), draw(t)
        uniform = np.full(n, 1 / n)
        w = ot.emd2(uniform, uniform, ot.dist(p0, pt, metric="euclidean"))
        assert w == pytest.approx(r["W"][i], abs=2 / n), t
        xs = np.unique([0.0, t])
        h0, ht = histogram(p0, xs), histogram(pt, xs)
        assert jensenshannon(h0, ht) ** 2 == pytest.approx(r["JS"][i], abs=1e-12), t
        assert scipy_kl(ht, h0) == r["KL"][i] and scipy_kl(h0, ht) == r["KL"][i], t
        assert 0.5 * np.abs(h0 - ht).sum() == pytest.approx(r["TV"][i], abs=1e-12), t


def test_parallel_lines_js_has_no_gradient_off_zero_while_w_does():
    theta = np.linspace(0.1, 1.0, 10)
    h = 1e-3
    grad_js = (parallel_lines(theta + h)["JS"] - parallel_lines(theta - h)["JS"]) / (
        2 * h
    )
    grad_w = (parallel_lines(theta + h)["W"] - parallel_lines(theta - h)["W"]) / (2 * h)
    np.testing.assert_array_equal(grad_js, 0.0)
    np.testing.assert_allclose(grad_w, 1.0)


# ----------------------------------------------------------------- a trained D approaches D*
def _bulk_error(
    model: torch.nn.Module, points: np.ndarray, d_star: np.ndarray, bulk: np.ndarray
) -> float:
    with torch.no_grad():
        d = (
            torch.sigmoid(model(torch.as_tensor(points, dtype=torch.float32)))
            .double()
            .numpy()
        )
    return float(np.abs(d - d_star)[bulk].max())


def test_trained_discriminator_approaches_the_optimal_discriminator():
    torch.set_num_threads(1)
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(1)
    points, _ = grid(-6.0, 6.0, 1200, 1)
    p, q = mixture_pdf(points, dm, ds, dw), mixture_pdf(points, gm, gs, gw)
    d_star = optimal_discriminator(p, q)
    bulk = (p + q) > 0.1 * (p + q).max()
    assert (
        d_star[bulk].min() < 0.1 and d_star[bulk].max() > 0.8
    )  # a target worth learning

    model = train_discriminator(
        lambda n: sample_mixture(n, dm, ds, dw),
        lambda n: sample_mixture(n, gm, gs, gw),
        steps=1500,
        batch=512,
        width=64,
        lr=3e-3,
        seed=0,
    )
    untrained = train_discriminator(
        lambda n: sample_mixture(n, dm, ds, dw),
        lambda n: sample_mixture(n, gm, gs, gw),
        steps=0,
        batch=512,
        width=64,
        lr=3e-3,
        seed=0,
    )
    assert (
        _bulk_error(untrained, points, d_star, bulk) > 0.2
    )  # the same net before learning fails
    assert _bulk_error(model, points, d_star, bulk) < 0.05


def test_train_discriminator_is_reproducible_and_leaves_the_global_rng_alone():
    torch.set_num_threads(1)
    (dm, ds, dw), (gm, gs, gw) = default_mixtures(1)

    def train():
        return train_discriminator(
            lambda n: sample_mixture(n, dm, ds, dw),
            lambda n: sample_mixture(n, gm, gs, gw),
            steps=20,
            batch=64,
            width=16,
            lr=1e-2,
            seed=3,
        )

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = train(), train()
    assert torch.rand(1) == before
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


# ----------------------------------------------------------------- figures
@pytest.mark.parametrize("dim", [1, 2])
def test_plot_theorem1_writes_a_png(tmp_path, dim):
    out = plot_theorem1(tmp_path / f"theorem1_{dim}d.png", dim=dim)
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_plot_parallel_lines_writes_a_png(tmp_path):
    out = plot_parallel_lines(tmp_path / "sub" / "parallel_lines.png")
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == PNG_MAGIC
