"""Adversarial losses, one function per term of the lecture.

Every function takes the raw outputs of the discriminator (logits for the
probabilistic losses, critic values for the Wasserstein and hinge losses) and
returns the scalar that the optimiser *minimises*. With D(x) = sigmoid(logit),
log D = -softplus(-logit) and log(1 - D) = -softplus(logit), which is how the
equations below are written without ever forming an unstable log of a sigmoid.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def minimax_discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """D maximises V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]; we minimise -V.

    -V = E_x[softplus(-l(x))] + E_z[softplus(l(G(z)))]   with l the logit of D.
    """
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def minimax_generator_loss(d_fake: Tensor) -> Tensor:
    """G minimises E_z[log(1 - D(G(z)))] = -E_z[softplus(l(G(z)))].

    This is the game as stated; its gradient vanishes when D confidently rejects
    G's samples, which is why the lecture introduces the non-saturating variant.
    """
    return -F.softplus(d_fake).mean()


def nonsaturating_generator_loss(d_fake: Tensor) -> Tensor:
    """G maximises E_z[log D(G(z))]; we minimise -E_z[log D(G(z))] = E_z[softplus(-l(G(z)))]."""
    return F.softplus(-d_fake).mean()


def wasserstein_critic_loss(c_real: Tensor, c_fake: Tensor) -> Tensor:
    """The critic f maximises E_x[f(x)] - E_z[f(G(z))] (the Kantorovich-Rubinstein dual of W1
    for a K-Lipschitz f); we minimise -(E_x[f(x)] - E_z[f(G(z))])."""
    return c_fake.mean() - c_real.mean()


def wasserstein_generator_loss(c_fake: Tensor) -> Tensor:
    """G minimises -E_z[f(G(z))]: it moves its samples up the critic."""
    return -c_fake.mean()


def hinge_discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]  (Lim & Ye 2017; SN-GAN, BigGAN)."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_generator_loss(d_fake: Tensor) -> Tensor:
    """L_G = -E_z[D(G(z))]."""
    return -d_fake.mean()


# name -> (discriminator loss, generator loss); configs choose by name.
LOSSES: dict[str, tuple] = {
    "minimax": (minimax_discriminator_loss, minimax_generator_loss),
    "nonsaturating": (minimax_discriminator_loss, nonsaturating_generator_loss),
    "wasserstein": (wasserstein_critic_loss, wasserstein_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}
