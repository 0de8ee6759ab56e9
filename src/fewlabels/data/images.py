"""Image datasets as arrays in [-1, 1] of shape (N, C, H, W), labels kept.

    digits         scikit-learn's 8x8 handwritten digits (1,797 images; always available)
    fashion_mnist  Fashion-MNIST 28x28 from IDX files (Debian: dataset-fashion-mnist puts them
                   under /usr/share/datasets/fashion-mnist), raw or .gz
    mnist          MNIST 28x28 from IDX files, same layout
    file           the user's images: .npy of shape (N, H, W) or (N, C, H, W), or .npz with
                   `images` (and optionally `labels`); uint8 is read as 0..255, floats as given
                   in [0, 1] or [-1, 1]

Every set has a training part and a held-out part (the IDX test files; a fixed part of the
others, split by SPLIT_SEED whatever the run's seed, so runs of every seed are scored on the same
held-out images by the same feature classifier), and draws batches from an explicit
`torch.Generator`, like the 2D sets, so training data is part of a run's saved random state.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fewlabels import files
from fewlabels.errors import UserError

IDX_DEFAULT_ROOTS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
SPLIT_SEED = 0  # the train / held-out split of digits, image files and folders: never the run's seed
IDX_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist", "mnist": "the MNIST IDX files (e.g. from yann.lecun.com)"}


class ImageData:
    """Training and held-out images in [-1, 1], shape (N, C, H, W), with integer labels (or None)."""

    def __init__(self, train: np.ndarray, held: np.ndarray, train_labels: np.ndarray | None = None,
                 held_labels: np.ndarray | None = None, name: str = "images"):
        self.name = name
        self.train, self.held = train.astype(np.float32), held.astype(np.float32)
        self.train_labels, self.held_labels = train_labels, held_labels
        self._train_t = torch.from_numpy(self.train)
        self._on: dict = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.shape[1:])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n training images drawn uniformly with replacement."""
        dev = generator.device
        if dev not in self._on:
            self._on[dev] = self._train_t.to(dev)
        idx = torch.randint(len(self.train), (n,), generator=generator, device=dev)
        return self._on[dev][idx]

    @property
    def classes(self) -> int:
        """How many classes the labels name (0 for images without labels)."""
        return 0 if self.train_labels is None else int(self.train_labels.max()) + 1

    def class_frequencies(self) -> np.ndarray:
        """The share of each class among the training images (for sampling labels as the data has them)."""
        self._need_labels("class frequencies")
        return np.bincount(self.train_labels, minlength=self.classes) / len(self.train_labels)

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n training images with their labels: the same draw as `sample` (same indices from the
        same stream), so a class-conditional run sees the images an unconditional one would."""
        self._need_labels("class-conditional training")
        dev = generator.device
        if ("labels", dev) not in self._on:
            self._on[("labels", dev)] = torch.from_numpy(self.train_labels.astype(np.int64)).to(dev)
        if dev not in self._on:
            self._on[dev] = self._train_t.to(dev)
        idx = torch.randint(len(self.train), (n,), generator=generator, device=dev)
        return self._on[dev][idx], self._on[("labels", dev)][idx]

    def _need_labels(self, what: str) -> None:
        if self.train_labels is None:
            raise UserError(f"{what} needs labelled images, but the {self.name!r} data has no labels; use a labelled "
                            "set (digits, fashion_mnist, mnist, cifar10, folder with one subfolder per class) or "
                            "an unconditional model")

    def holdout(self, n: int, seed: int | None = None) -> np.ndarray:
        """Up to n held-out images: the first n (the same ones every time), or n chosen without
        replacement by `seed`."""
        if seed is None:
            return self.held[:n]
        return self.held[np.random.default_rng(seed).permutation(len(self.held))[:n]]

    def disjoint_real_indices(self, n_a: int, n_b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of min(n_a, training size) training images and min(n_b, held-out size) held-out
        images, each chosen without replacement by `seed`: two real sets that share no image,
        for a real-vs-real floor."""
        rng = np.random.default_rng(seed)
        return rng.permutation(len(self.train))[:n_a], rng.permutation(len(self.held))[:n_b]

    def identity(self) -> str:
        """A hash of the images and labels of both parts (computed once): the dataset's identity
        in cache keys (feature classifier, floors)."""
        if not hasattr(self, "_identity"):
            from fewlabels.metrics.floors import fingerprint

            self._identity = f"{self.name}:{fingerprint(self.train, self.held, self.train_labels, self.held_labels)}"
        return self._identity


def to_unit_range(x: np.ndarray, source: str) -> np.ndarray:
    """Pixels -> float32 in [-1, 1]: uint8 as 0..255; floats in [0, 1] or [-1, 1] as given."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{source} holds {x.dtype} pixels; expected uint8 (0..255) or floats in [0, 1] or [-1, 1]")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{source} has NaN or infinite pixels; remove those images")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi <= 1:
        return x * 2 - 1
    if lo >= -1 and hi <= 1:
        return x
    raise UserError(f"{source} has float pixels from {lo:.3g} to {hi:.3g}; expected [0, 1] or [-1, 1] "
                    "(or uint8 0..255)")


def as_nchw(x: np.ndarray, source: str, multiple: int = 1) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, C, H, W) kept; anything else refused in one sentence.
    H and W must be divisible by `multiple` (a U-Net with k downsamplings needs 2^k)."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] < 2 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 2:
        raise UserError(f"{source} has images of shape {tuple(x.shape)}; expected (N, H, W) or (N, C, H, W) "
                        "with C = 1 or 3 and at least 2 images")
    if x.shape[2] % multiple or x.shape[3] % multiple:
        raise UserError(f"{source} has {x.shape[2]}x{x.shape[3]} images; this U-Net needs height and width "
                        f"divisible by {multiple} (pad or crop them, or use fewer model.mults)")
    return x


def split(x: np.ndarray, y: np.ndarray | None, holdout_fraction: float, seed: int, name: str) -> ImageData:
    """A seeded random train / held-out split (at least one held-out image); labels follow."""
    perm = np.random.default_rng(seed).permutation(len(x))
    n_held = max(1, int(round(holdout_fraction * len(x))))
    held, train = perm[:n_held], perm[n_held:]
    labels = (y[train], y[held]) if y is not None else (None, None)
    return ImageData(x[train], x[held], *labels, name=name)


# ---- scikit-learn's digits -----------------------------------------------------------------
def digits(holdout_fraction: float = 0.25, split_seed: int = SPLIT_SEED) -> ImageData:
    """The 1,797 8x8 digits of scikit-learn (UCI optdigits test set), pixels 0..16 -> [-1, 1];
    a quarter held out by `split_seed`."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    y = d.target.astype(np.int64)
    return split(x, y, holdout_fraction, split_seed, "digits")


# ---- IDX files (MNIST, Fashion-MNIST) --------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format; raw or gzipped): magic 0 0 TYPE NDIM, NDIM big-endian
    int32 sizes, then the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f"IDX file {str(path)!r} could not be read ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise UserError(f"{str(path)!r} is not an IDX file (bad magic number); expected MNIST-format "
                        "files such as train-images-idx3-ubyte.gz")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)) * dtype.itemsize:
        raise UserError(f"IDX file {str(path)!r} is truncated: its header promises shape {dims}, "
                        f"but it holds {len(raw) - offset} bytes of data")
    return np.frombuffer(raw, dtype, offset=offset).reshape(dims)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz", stem.replace("-idx", ".idx"), f"{stem.replace('-idx', '.idx')}.gz"):
        if (root / name).is_file():
            return root / name
    return None


def idx_dataset(name: str, root: str | None = None, limit: int | None = None) -> ImageData:
    """MNIST or Fashion-MNIST from a directory holding train-/t10k- images and labels (IDX)."""
    root = Path(root or IDX_DEFAULT_ROOTS[name])
    if not root.is_dir():
        raise UserError(f"data.root {str(root)!r} does not exist; install the package {IDX_PACKAGES[name]} "
                        f"(apt-get install {IDX_PACKAGES[name]}) or set data.root to a folder of its IDX files"
                        if name == "fashion_mnist" else
                        f"data.root {str(root)!r} does not exist; set data.root to a folder holding "
                        "train-images-idx3-ubyte(.gz) and the other MNIST IDX files")
    parts = {}
    for split in ("train", "t10k"):
        for kind, idx in (("images", 3), ("labels", 1)):
            stem = f"{split}-{kind}-idx{idx}-ubyte"
            path = _find_idx(root, stem)
            if path is None:
                raise UserError(f"data.root {str(root)!r} has no {stem} (or {stem}.gz); it must hold the four "
                                f"IDX files of {name} (train-/t10k- images and labels)")
            parts[(split, kind)] = read_idx(path)
    src = str(root)
    train = as_nchw(parts[("train", "images")][:limit], f"{src} train images")
    test = as_nchw(parts[("t10k", "images")][:limit], f"{src} t10k images")
    train_y, test_y = parts[("train", "labels")][:limit], parts[("t10k", "labels")][:limit]
    if len(train_y) != len(train) or len(test_y) != len(test):
        raise UserError(f"data.root {src!r}: the numbers of images and labels differ ({len(train)} vs {len(train_y)})")
    return ImageData(to_unit_range(train, src), to_unit_range(test, src), train_y.astype(np.int64),
                     test_y.astype(np.int64), name=name)


# ---- the user's own images ------------------------------------------------------------------
def image_file(path: str, holdout_fraction: float = 0.2, split_seed: int = SPLIT_SEED, multiple: int = 1) -> ImageData:
    """Images from .npy (N, H, W) / (N, C, H, W), or .npz with `images` (and `labels`)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file {path!r} does not exist; give a .npy or .npz of images (N, C, H, W)")
    try:
        if p.suffix == ".npy":
            x, y = np.load(p, allow_pickle=False), None
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "images" not in z:
                    raise UserError(f"data file {path!r} has no array named 'images' (it has {', '.join(z.files)})")
                x, y = z["images"], (z["labels"] if "labels" in z else None)
        else:
            raise UserError(f"data file {path!r} has suffix {p.suffix!r}; valid for images: .npy, .npz")
    except UserError:
        raise
    except OSError as e:
        raise files.error(p, "data file", "read", e, "give a readable .npy or .npz of images (N, C, H, W)") from e
    except Exception as e:
        raise UserError(f"data file {path!r} could not be read ({type(e).__name__}: {e})") from e
    x = to_unit_range(as_nchw(x, f"data file {path!r}", multiple), f"data file {path!r}")
    return split(x, y if y is not None and len(y) == len(x) else None, holdout_fraction, split_seed, p.stem)


# ---- CIFAR-10 (the "python version": pickled batches) -----------------------------------------
class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles of dicts of NumPy arrays; anything else is refused, so a
    foreign pickle cannot run code while being read."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
        x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(batch[b"labels"], np.int64)
    except OSError as e:
        raise files.error(path, "CIFAR-10 batch", "read", e, "give a readable cifar-10-batches-py folder") from e
    except Exception as e:
        raise UserError(f"CIFAR-10 batch {str(path)!r} is corrupt or not a CIFAR-10 python batch "
                        f"({type(e).__name__}); download cifar-10-python.tar.gz again") from e
    if len(x) != len(y):
        raise UserError(f"CIFAR-10 batch {str(path)!r} has {len(x)} images but {len(y)} labels")
    return x, y


def cifar10(root: str | None, limit: int | None = None) -> ImageData:
    """CIFAR-10 from the folder of its python batches (data_batch_1..5, test_batch)."""
    folder = Path(root or "cifar-10-batches-py")
    if not folder.is_dir():
        raise UserError(f"data.root {str(folder)!r} does not exist; set it to the cifar-10-batches-py folder "
                        "of cifar-10-python.tar.gz (this project downloads nothing)")
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UserError(f"data.root {str(folder)!r} has no {missing[0]}; it must hold data_batch_1..5 and test_batch")
    train = [_cifar_batch(folder / n) for n in names[:5]]
    x, y = np.concatenate([b[0] for b in train])[:limit], np.concatenate([b[1] for b in train])[:limit]
    tx, ty = _cifar_batch(folder / "test_batch")
    src = str(folder)
    return ImageData(to_unit_range(x, src), to_unit_range(tx[:limit], src), y, ty[:limit], name="cifar10")


# ---- a folder of image files (Pillow) --------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_folder(path: str, holdout_fraction: float = 0.2, split_seed: int = SPLIT_SEED) -> ImageData:
    """Every image file under `path`. With class subfolders (path/cat/1.png, path/dog/2.png) the
    subfolder is the label, as torchvision's ImageFolder has it. All images must have one size;
    all greyscale gives 1 channel, otherwise RGB."""
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise UserError(f"data.path {path!r} is not a folder; give a folder of image files (png, jpg, ...)")
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise UserError(f"data.path {path!r} holds no images (looked for {', '.join(IMAGE_SUFFIXES)} files, "
                        "also in subfolders)")
    images, size, first = [], None, None
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                images.append(im.copy())
        except UnidentifiedImageError as e:
            raise UserError(f"image {str(f)!r} is corrupt or not an image ({type(e).__name__}); remove it") from e
        except OSError as e:
            if e.errno is None:  # Pillow's own decoding errors (a truncated file) carry no errno
                raise UserError(f"image {str(f)!r} is corrupt or not an image ({type(e).__name__}); remove it") from e
            raise files.error(f, "image", "read", e, "make it readable or remove it") from e
        if size is None:
            size, first = images[-1].size, f
        elif images[-1].size != size:
            raise UserError(f"data.path {path!r} mixes image sizes: {str(first)!r} is {size[0]}x{size[1]}, "
                            f"{str(f)!r} is {images[-1].size[0]}x{images[-1].size[1]}; resize them to one size")
    grey = all(im.mode in ("L", "1", "I;16", "I") for im in images)
    x = np.stack([np.asarray(im.convert("L" if grey else "RGB")) for im in images])
    x = x[:, None] if grey else x.transpose(0, 3, 1, 2)
    classes = sorted({f.parent.relative_to(root).as_posix() for f in files})
    y = np.array([classes.index(f.parent.relative_to(root).as_posix()) for f in files]) if len(classes) > 1 else None
    x = to_unit_range(as_nchw(x, f"data.path {path!r}"), f"data.path {path!r}")
    return split(x, y, holdout_fraction, split_seed, root.name)


IMAGE_SETS = ("digits", "fashion_mnist", "mnist", "cifar10", "images", "folder")


def pad_images(data: ImageData, pad: int, multiple: int = 1) -> ImageData:
    """`pad` black pixels (-1) on every side, e.g. Fashion-MNIST's 28x28 to 32x32 for a network
    that grows by doublings; labels unchanged."""
    widths = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    out = ImageData(np.pad(data.train, widths, constant_values=-1.0), np.pad(data.held, widths, constant_values=-1.0),
                    data.train_labels, data.held_labels, name=data.name)
    as_nchw(out.train, f"{data.name} padded by {pad}", multiple)
    return out


def make_images(name: str, path: str | None = None, root: str | None = None, multiple: int = 1,
                limit: int | None = None) -> ImageData:
    """One of IMAGE_SETS; `multiple`: what H and W must be divisible by. Held-out parts never
    depend on a run's seed (SPLIT_SEED)."""
    if name == "digits":
        data = digits()
    elif name in IDX_DEFAULT_ROOTS:
        data = idx_dataset(name, root, limit)
    elif name == "cifar10":
        data = cifar10(root, limit)
    elif name == "images":
        return image_file(path, multiple=multiple)
    elif name == "folder":
        data = image_folder(path)
    else:
        raise UserError(f"image dataset {name!r} is unknown; valid: {', '.join(IMAGE_SETS)}")
    as_nchw(data.train, name, multiple)
    return data
