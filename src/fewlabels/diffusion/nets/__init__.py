"""Denoising networks ε_θ(x_t, t): an MLP for points, a small U-Net for images."""

from fewlabels.diffusion.nets.mlp import MLPDenoiser, sinusoidal_embedding
from fewlabels.diffusion.nets.unet import UNet

__all__ = ["MLPDenoiser", "UNet", "sinusoidal_embedding"]
