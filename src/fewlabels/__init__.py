"""fewlabels: learning without labels, as one lecture teaches it (GANs, diffusion, RL)."""

__version__ = "0.1.0"
