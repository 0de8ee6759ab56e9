"""Image data (digits, IDX files, the user's arrays), the Fréchet distance, the feature
classifier, and diffusion runs on images (digits on the CPU; Fashion-MNIST's config for a few
CPU steps, and on a GPU when there is one)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fewlabels import config as configlib
from fewlabels.cli import main
from fewlabels.data.images import digits, idx_dataset, image_file, read_idx
from fewlabels.errors import UserError
from fewlabels.metrics.frechet import frechet_distance

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fake_fashion_mnist(folder: Path, n_train: int = 64, n_test: int = 32) -> Path:
    """Four small IDX files laid out as dataset-fashion-mnist lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder


def test_digits_are_scaled_to_minus_one_one_with_labels_kept():
    d = digits()
    assert d.train.shape[1:] == (1, 8, 8) and len(d.train) + len(d.held) == 1797
    assert d.train.min() == -1.0 and d.train.max() == 1.0 and d.train.dtype == np.float32
    assert set(np.unique(d.train_labels)) == set(range(10)) and len(d.held_labels) == len(d.held)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_files_round_trip_raw_and_gzipped(tmp_path, suffix):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / f"a-idx3-ubyte{suffix}", x)
    assert np.array_equal(read_idx(tmp_path / f"a-idx3-ubyte{suffix}"), x)


def test_a_truncated_idx_file_is_one_sentence(tmp_path):
    write_idx(tmp_path / "a", np.zeros((5, 28, 28)))
    (tmp_path / "a").write_bytes((tmp_path / "a").read_bytes()[:100])
    with pytest.raises(UserError, match="is truncated: its header promises shape"):
        read_idx(tmp_path / "a")


def test_fashion_mnist_from_idx_files(tmp_path):
    d = idx_dataset("fashion_mnist", str(fake_fashion_mnist(tmp_path / "fm")))
    assert d.train.shape == (64, 1, 28, 28) and d.held.shape == (32, 1, 28, 28)
    assert -1 <= d.train.min() and d.train.max() <= 1 and d.train_labels.shape == (64,)


def test_a_folder_without_the_idx_files_names_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no train-images-idx3-ubyte"):
        idx_dataset("fashion_mnist", str(tmp_path / "empty"))


def test_user_images_in_zero_one_or_uint8_are_scaled(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.full((20, 3, 4, 4), 255, np.uint8), labels=np.arange(20))
    d = image_file(str(tmp_path / "x.npz"))
    assert d.shape == (3, 4, 4) and (d.train == 1.0).all() and d.train_labels is not None


def test_frechet_distance_of_gaussians_has_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (200_000, 3))
    b = rng.normal(1, 2, (200_000, 3))
    # ||μ_a - μ_b||² + Σ (σ_a - σ_b)² for diagonal covariances = 3 + 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.01)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_the_digits_classifier_recognises_held_out_digits():
    from fewlabels.metrics.classifier import accuracy, train_classifier

    d = digits()
    net = train_classifier(d.train, d.train_labels)
    assert accuracy(net, d.held, d.held_labels) > 0.95


def write_image_config(path: Path, **sections) -> Path:
    cfg = {"family": "diffusion", "name": "digits-test", "data": {"name": "digits"},
           "schedule": {"name": "cosine", "T": 100},
           "model": {"name": "unet", "channels": 8, "mults": [1, 2]},
           "sampler": {"name": "ddim", "steps": 5, "clip": 1.0},
           "train": {"steps": 6, "batch_size": 8, "log_every": 2, "snapshot_every": 3, "checkpoint_every": 3},
           "eval": {"samples": 40}}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_digits_run_reports_frechet_distance_beside_the_real_floor(tmp_path, capsys):
    cfg = write_image_config(tmp_path / "c.yaml")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["fd"] > m["real_fd"] > 0 and "small classifier trained on digits" in m["feature_extractor"]
    assert main(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (3, 1, 8, 8)
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Forward process" in report and "Samples" in report


def test_image_runs_resume_bitwise(tmp_path, capsys):
    """6 steps straight, or 3 steps then 3 more: the same weights, optimiser and data stream."""
    from fewlabels import checkpoint
    from fewlabels.run import RunDir

    cfg = write_image_config(tmp_path / "c.yaml", eval={"samples": 10})
    assert main(["train", str(cfg), "--out", str(tmp_path / "a")]) == 0
    assert main(["train", str(cfg), "--set", "train.steps=3", "--out", str(tmp_path / "b")]) == 0
    assert main(["train", str(cfg), "--out", str(tmp_path / "b")]) == 0
    a, _ = checkpoint.load(RunDir(tmp_path / "a").latest_checkpoint())
    b, _ = checkpoint.load(RunDir(tmp_path / "b").latest_checkpoint())
    for key in ("model", "ema"):
        for name, tensor in a["experiment"][key].items():
            assert torch.equal(tensor, b["experiment"][key][name]), f"{key}.{name}"
    assert torch.equal(a["experiment"]["gen"], b["experiment"]["gen"])


def fashion_overrides(root: Path, steps: int) -> list[str]:
    return [f"data.root={root}", f"train.steps={steps}", "train.batch_size=4", "train.snapshot_every=0",
            "train.log_every=1", "eval.samples=10", "sampler.name=ddim", "sampler.steps=2"]


def test_fashion_mnist_config_runs_a_few_cpu_steps(tmp_path, capsys):
    from fewlabels.loop import train

    cfg = configlib.load(ROOT / "configs" / "diffusion" / "fashion_mnist.yaml",
                         fashion_overrides(fake_fashion_mnist(tmp_path / "fm"), 2))
    summary = train(cfg, str(tmp_path / "run"), device="cpu")
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["fd"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fashion_mnist_trains_on_the_gpu(tmp_path):
    from fewlabels.loop import train

    root = Path("/usr/share/datasets/fashion-mnist")
    if not root.is_dir():
        root = fake_fashion_mnist(tmp_path / "fm", 512, 128)
    cfg = configlib.load(ROOT / "configs" / "diffusion" / "fashion_mnist.yaml",
                         [*fashion_overrides(root, 200), "train.batch_size=64", "train.log_every=50"])
    summary = train(cfg, str(tmp_path / "run"), device="cuda")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert summary["status"] == "completed" and losses[-1] < losses[0]
