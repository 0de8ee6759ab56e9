"""Image data for GANs and diffusion: CIFAR-10 python batches and folders of image files, made
small by the tests; every bad input is one sentence naming the file."""

import pickle

import numpy as np
import pytest
from PIL import Image

from fewlabels.data.images import cifar10, image_folder, make_images
from fewlabels.errors import UserError


def write_cifar(root, n=6):
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def test_cifar10_batches_load_as_rgb_32x32_in_unit_range_with_labels(tmp_path):
    data = cifar10(str(write_cifar(tmp_path / "cifar-10-batches-py")))
    assert data.train.shape == (30, 3, 32, 32) and data.held.shape == (6, 3, 32, 32)
    assert data.train.min() >= -1 and data.train.max() <= 1 and data.train_labels.shape == (30,)


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    root = write_cifar(tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(root / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(UserError, match="data_batch_3.*corrupt or not a CIFAR-10"):
        cifar10(str(root))


def write_pngs(folder, sizes, mode="L"):
    for i, (cls, size) in enumerate(sizes):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size, size) if mode == "L" else (size, size, 3), i * 20, np.uint8)).save(
            folder / cls / f"{i}.png")


def test_a_folder_of_images_with_class_subfolders_keeps_labels(tmp_path):
    write_pngs(tmp_path / "imgs", [("a", 8)] * 5 + [("b", 8)] * 5)
    data = make_images("folder", str(tmp_path / "imgs"))
    assert data.shape == (1, 8, 8) and len(data.train) + len(data.held) == 10
    assert set(np.concatenate([data.train_labels, data.held_labels])) == {0, 1}


@pytest.mark.parametrize("setup, phrase", [
    (lambda d: d.mkdir(), "holds no images"),
    (lambda d: write_pngs(d, [("a", 8), ("a", 9)]), "mixes image sizes"),
    (lambda d: (d.mkdir(), (d / "x.png").write_bytes(b"not a png")), "x.png' is corrupt"),
])
def test_bad_image_folders_are_one_sentence(tmp_path, setup, phrase):
    setup(tmp_path / "imgs")
    with pytest.raises(UserError, match=phrase):
        image_folder(str(tmp_path / "imgs"))


def test_runs_of_different_seeds_share_the_digits_test_split_and_the_feature_classifier(monkeypatch):
    import functools

    import torch

    from fewlabels.data.config import DataConfig, make_data
    from fewlabels.metrics import classifier

    a, b = make_data(DataConfig(name="digits"), seed=0), make_data(DataConfig(name="digits"), seed=7)
    assert np.array_equal(a.held, b.held) and np.array_equal(a.held_labels, b.held_labels)
    assert np.array_equal(a.train, b.train)
    # The classifier is trained afresh for each (1 epoch keeps this fast), not taken from the cache.
    monkeypatch.setattr(classifier, "train_classifier", functools.partial(classifier.train_classifier, epochs=1))
    feats = []
    for data in (a, b):
        classifier._CACHE.clear()
        net = classifier.ClassifierFeatures.for_data(data, None, torch.device("cpu"))
        feats.append(net.outputs(a.held)[0])
    classifier._CACHE.clear()
    assert np.array_equal(feats[0], feats[1])


def test_labelled_sampling_draws_the_images_sample_draws_with_their_labels():
    """The conditional path's data (issue 13): the same indices from the same stream as `sample`."""
    import torch

    from fewlabels.data.images import ImageData

    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (50, 1, 4, 4)).astype(np.float32)
    labels = np.arange(50) % 3
    data = ImageData(train, train[:5], labels, labels[:5], name="toy")
    x = data.sample(16, torch.Generator().manual_seed(7))
    xl, y = data.sample_labelled(16, torch.Generator().manual_seed(7))
    assert torch.equal(x, xl) and y.dtype == torch.int64
    idx = [int(np.flatnonzero((train == im.numpy()).all(axis=(1, 2, 3)))[0]) for im in xl]
    assert y.tolist() == labels[idx].tolist()
    assert data.classes == 3 and np.allclose(data.class_frequencies(), [17 / 50, 17 / 50, 16 / 50])
    unlabelled = ImageData(train, train[:5], name="toy")
    assert unlabelled.classes == 0
    with pytest.raises(UserError, match="needs labelled images, but the 'toy' data has no labels"):
        unlabelled.sample_labelled(4, torch.Generator())
