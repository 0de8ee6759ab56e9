"""Mode metrics for Gaussian mixtures, as in VEEGAN (Srivastava et al. 2017) and PacGAN
(Lin et al. 2018): assign each sample to its nearest mode; it is *high quality* when it lies
within 3 standard deviations of that mode; a mode is *captured* when it holds at least one
(or at least 20) high-quality samples; the reverse KL compares the histogram of nearest
modes with the uniform mixture weights."""

from __future__ import annotations

import numpy as np


def mode_metrics(samples: np.ndarray, modes: np.ndarray, std: float, n_std: float = 3.0) -> dict[str, float]:
    d2 = ((samples[:, None, :] - modes[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    dist = np.sqrt(d2[np.arange(len(samples)), nearest])
    hq = dist <= n_std * std
    counts_hq = np.bincount(nearest[hq], minlength=len(modes))
    p = np.bincount(nearest, minlength=len(modes)) / len(samples)
    q = 1.0 / len(modes)
    nz = p > 0
    return {
        "modes": int((counts_hq >= 1).sum()),
        "modes_20": int((counts_hq >= 20).sum()),
        "hq_percent": float(100.0 * hq.mean()),
        "reverse_kl": float((p[nz] * np.log(p[nz] / q)).sum()),
    }
