"""fewlabels: learning without labels, as one lecture teaches it (GANs, diffusion, RL).

The Python API (fewlabels/api.py): `fewlabels.train(config, out=..., **overrides)`,
`fewlabels.load(run_dir)` (a run with `sample`, `evaluate` and, for RL, `act`) and
`fewlabels.configs()`. They are imported on first use, so `fewlabels --version` stays fast.
"""

__version__ = "0.1.0"
__all__ = ["train", "load", "configs", "__version__"]


def __getattr__(name: str):
    if name in ("train", "load", "configs", "Run"):
        from fewlabels import api

        return getattr(api, name)
    raise AttributeError(f"module 'fewlabels' has no attribute {name!r}")
