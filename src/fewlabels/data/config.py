"""The data section of a config, shared by the GAN and diffusion families: 2D point sets and
image sets, and `make_data`, which builds either."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fewlabels.errors import UserError

POINT_SETS = ("ring8", "grid25", "swissroll", "moons", "circle", "file")
IMAGE_SETS = ("digits", "fashion_mnist", "mnist", "cifar10", "images", "folder")


@dataclass
class DataConfig:
    name: Literal["ring8", "grid25", "swissroll", "moons", "circle", "file",
                  "digits", "fashion_mnist", "mnist", "cifar10", "images", "folder"] = "swissroll"
    # file: points (.npy/.csv (N, D)); images: .npy/.npz (N, C, H, W); folder: image files (Pillow)
    path: str | None = field(default=None, metadata={"path": True})  # relative: to the config file's folder
    # fashion_mnist/mnist: folder of IDX files (default /usr/share/datasets/...); cifar10: cifar-10-batches-py
    root: str | None = field(default=None, metadata={"path": True})
    limit: int | None = field(default=None, metadata={"ge": 2})  # fashion_mnist/mnist/cifar10: first N only
    pad: int = field(default=0, metadata={"ge": 0})  # images: black pixels added on each side (28 + 2·2 = 32)

    @property
    def is_image(self) -> bool:
        return self.name in IMAGE_SETS

    def validate(self) -> None:
        if self.name in ("file", "images", "folder") and not self.path:
            raise UserError(f"data.name is {self.name!r} but data.path is empty; give a file or folder to train on")
        if self.path and self.name not in ("file", "images", "folder"):
            raise UserError(f"data.path is set but data.name is {self.name!r}; set data.name: file (points), "
                            "images (.npy/.npz) or folder (image files) to train on it")
        if self.pad and not self.is_image:
            raise UserError(f"data.pad is {self.pad} but data.name {self.name!r} holds points; padding is for images")
        if self.root and self.name not in ("fashion_mnist", "mnist", "cifar10"):
            raise UserError(f"data.root is set but data.name is {self.name!r}; it is the dataset folder of "
                            "fashion_mnist, mnist or cifar10")


SHAPE_KEYS = ("dim", "shape", "classes")  # what a network is built from; a run keeps them in data.json


def shape_of(data) -> dict:
    """The data set's shape as a run directory keeps it (data.json): {"dim": D} for points,
    {"shape": [C, H, W], "classes": K} for images (K = 0 without labels)."""
    return {k: list(v) if isinstance(v, tuple) else v for k in SHAPE_KEYS
            if (v := getattr(data, k, None)) is not None and not callable(v)}


class LazyData:
    """A data set known by its shape (`shape_of`) until something needs its contents, then loaded.
    A trained run builds its networks and samples from the shape alone, so `fewlabels sample`
    works after the training files moved; what does need them (training, data metrics) loads
    them then, or says in one sentence that it needs them."""

    def __init__(self, shape: dict, load):
        for k, v in shape.items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self._load, self._data = load, None

    def __getattr__(self, name: str):  # only for what the shape does not answer
        if name.startswith("__") or name in ("_load", "_data"):
            raise AttributeError(name)
        if self._data is None:
            try:
                self._data = self._load()
            except UserError as e:
                raise UserError(f"{e} (sampling a trained run does not need its data, but this does: training "
                                "and the data metrics of `eval` compare with it)") from None
        return getattr(self._data, name)


def make_data(d: DataConfig, seed: int | None = None, multiple: int = 1, shape: dict | None = None):
    """Points (data.toy2d) or images (data.images) as `d` describes; image sides must be
    divisible by `multiple` (a network's downsampling). The run's `seed` does not choose the
    held-out part (a fixed SPLIT_SEED does), so runs of different seeds are scored on the same
    held-out data; it is accepted for the callers' sake and draws nothing here (training batches
    come from the run's own generator). With `shape` (a trained run's data.json, which
    `fewlabels.loop.open_run` puts on the config as `d.known_shape`), a LazyData that loads
    only when asked."""
    if shape is None:
        shape = getattr(d, "known_shape", None)
    if shape:  # {} loads at once
        return LazyData(shape, lambda: make_data(d, seed, multiple, shape={}))
    if d.is_image:
        from fewlabels.data.images import make_images, pad_images
        data = make_images(d.name, d.path, d.root, multiple=1 if d.pad else multiple, limit=d.limit)
        return pad_images(data, d.pad, multiple) if d.pad else data
    from fewlabels.data.toy2d import make_points
    return make_points(d.name, d.path)
