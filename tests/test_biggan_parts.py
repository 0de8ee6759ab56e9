"""BigGAN's orthogonal regularisation and truncation trick, against hand computations."""

import math

import pytest
import torch

from fewlabels.errors import UserError
from fewlabels.gan.biggan_parts import orthogonal_penalty, truncated_normal


def test_orthogonal_penalty_is_the_off_diagonal_gram_norm_by_hand():
    # rows (filters) a = (1, 2, 0), b = (0, 1, 3): a·b = 2; |a|² = 5 and |b|² = 10 are not penalised
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    value = orthogonal_penalty([w], beta=1e-4)
    assert value.item() == pytest.approx(1e-4 * 2 * 2.0**2)  # the pairs (a, b) and (b, a)
    value.backward()
    # d/dW: 4β (W Wᵀ ⊙ (1 - I)) W = 4β [[0, 2], [2, 0]] W = 4β [2b, 2a]
    expected = 4e-4 * torch.stack([2 * w[1], 2 * w[0]]).detach()
    assert torch.allclose(w.grad, expected)


def test_orthogonal_penalty_reshapes_a_conv_weight_to_filters_and_sums_over_weights():
    torch.manual_seed(0)
    conv, lin = torch.randn(4, 3, 3, 3), torch.randn(5, 7)
    by_hand = 0.0
    for w in (conv.reshape(4, -1), lin):
        gram = w @ w.t()
        by_hand += sum(gram[i, j].item() ** 2 for i in range(len(gram)) for j in range(len(gram)) if i != j)
    assert orthogonal_penalty([conv, lin], beta=0.5).item() == pytest.approx(0.5 * by_hand, rel=1e-5)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert orthogonal_penalty([3.0 * q], beta=1.0).item() == pytest.approx(0.0, abs=1e-8)  # orthogonal rows, any norm


def test_truncation_resamples_instead_of_rescaling():
    g = torch.Generator().manual_seed(0)
    t = 0.5
    z = truncated_normal((200_000,), t, generator=g)
    assert z.abs().max() <= t
    # The truncated normal's density on [-t, t] is φ(z) / (2Φ(t) - 1): compare two of its moments.
    phi, Phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(t / math.sqrt(2)))
    mass = 2 * Phi - 1
    assert z.var().item() == pytest.approx(1 - 2 * t * phi / mass, rel=0.02)
    share_outer_half = ((z.abs() > t / 2).float().mean()).item()
    expected = (2 * Phi - 1 - (2 * (0.5 * (1 + math.erf(t / 2 / math.sqrt(2)))) - 1)) / mass
    assert share_outer_half == pytest.approx(expected, abs=0.005)
    # rescaling N(0, 1) into [-t, t] or clamping it would fail both checks
    again = truncated_normal((200_000,), t, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again)  # reproducible from the generator


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_a_truncation_that_is_not_positive_is_one_sentence(threshold):
    with pytest.raises(UserError, match="give a positive threshold"):
        truncated_normal((3,), threshold)
