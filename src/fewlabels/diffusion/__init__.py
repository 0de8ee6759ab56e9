"""Diffusion models: the forward noising process and the reverse denoising process (DDPM, DDIM)."""
