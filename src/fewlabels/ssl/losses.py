"""The losses of the three methods, written with log-sum-exp and softplus (never a log of a
probability that could underflow).

With K class logits l_1..l_K and the fake class's logit fixed at 0 (Salimans et al. 2016, §5),

    Z(x) = Σ_k exp l_k(x),    D(x) = p(real | x) = Z(x) / (Z(x) + 1) = σ(LSE(l(x)))

so that  -log D(x) = softplus(-LSE) = -LSE + softplus(LSE)  and  -log(1 - D(x)) = softplus(LSE).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from fewlabels.distributed import global_mean


def supervised_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """L_sup = -E_{(x,y) labelled} log p(y | x, y < K+1) = cross-entropy over the K real classes
    (the fake class drops out of the conditional: its logit 0 only enters through Z)."""
    return F.cross_entropy(logits, labels)


def unlabelled_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """D's unsupervised loss, the GAN game on the K+1-class classifier:

        L_unsup = -E_{x ~ data} log D(x) - E_{z} log(1 - D(G(z)))
                = E softplus(-LSE(l(x))) + E softplus(LSE(l(G(z))))

    (the paper's code halves the two terms' sum: that is `gan.unlabelled_weight` 0.5, the default)."""
    return F.softplus(-torch.logsumexp(logits_real, 1)).mean() + F.softplus(torch.logsumexp(logits_fake, 1)).mean()


def conditional_entropy(logits: Tensor) -> Tensor:
    """The entropy of the class prediction on unlabelled real images (entropy minimisation,
    Grandvalet & Bengio 2005; the SSL GAN's added term in Dai et al. 2017, "Good Semi-supervised
    Learning That Requires a Bad GAN"), over the K real classes:

        H = -E_{x ~ data} Σ_k p(k | x) log p(k | x),    p(k | x) = softmax(l(x))_k

    Minimising it pushes the decision boundaries away from the unlabelled images."""
    log_p = torch.log_softmax(logits, 1)
    return -(log_p.exp() * log_p).sum(1).mean()


def feature_matching_loss(features_real: Tensor, features_fake: Tensor) -> Tensor:
    """G's loss by feature matching (the paper's §3.1 and its MNIST code):

        L_G = ‖E_x f(x) - E_z f(G(z))‖² / d

    with f D's last hidden layer (d units), the mean over the features as in the paper's code.
    The expectations are over the global batch under torchrun (each rank holds a slice)."""
    return (global_mean(features_real) - global_mean(features_fake)).pow(2).mean()


def nonsaturating_loss(logits_fake: Tensor) -> Tensor:
    """G's non-saturating loss on the K+1-class D: L_G = -E_z log D(G(z)) = E softplus(-LSE(l(G(z))))."""
    return F.softplus(-torch.logsumexp(logits_fake, 1)).mean()


def fixmatch_loss(logits_weak: Tensor, logits_strong: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """FixMatch's unlabelled loss (Sohn et al. 2020, eq. 4), μB unlabelled images u_b:

        q_b = softmax(l(α(u_b))) (no gradient),   ŷ_b = argmax q_b
        L_u = 1/(μB) Σ_b 1[max q_b ≥ τ] H(ŷ_b, softmax(l(A(u_b))))

    with α weak and A strong augmentation. Returns (L_u, the fraction of images above τ)."""
    q = torch.softmax(logits_weak.detach(), 1)
    confidence, pseudo = q.max(1)
    mask = (confidence >= threshold).float()
    return (F.cross_entropy(logits_strong, pseudo, reduction="none") * mask).mean(), mask.mean()
