"""A small classifier trained on an image dataset, whose hidden layer is the feature space for
the Fréchet distance when no InceptionV3 weights are given (DESIGN.md, data protocols).

    python -m fewlabels.metrics.classifier --data digits --out digits_classifier.safetensors

trains it (seeded, a few seconds on the CPU for digits), prints its held-out accuracy and saves
the weights; `eval.classifier: PATH` in a diffusion config then uses them. Without a file, an
evaluation trains the same classifier with the same seed (bitwise the same on the CPU). It never
depends on a run's seed: the data's split is fixed (data.images.SPLIT_SEED) and the classifier's
own seed is SEED, so Fréchet distances of runs with different seeds share one feature space.
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewlabels.errors import UserError
from fewlabels.metrics.frechet import frechet_distance

SEED = 1234
FEATURES = 128
CONFIDENT = 0.9  # a sample counts as recognisable when the top class has this probability


class SmallClassifier(nn.Module):
    """Three 3x3 convolutions (two with stride 2), pooled to 2x2, then a 128-unit hidden layer
    (the features) and the class logits. Works for any image size >= 4x4."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return h, self.head(h)


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int | None = None, batch: int = 64,
                     seed: int = SEED) -> SmallClassifier:
    """Adam on cross-entropy; its own RNG (fork_rng), so a run's random streams are untouched."""
    classes = int(labels.max()) + 1
    epochs = epochs or max(2, min(30, 40_000 // len(images)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallClassifier(images.shape[1], classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(batch):
                loss = F.cross_entropy(net(x[idx])[1], y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval().requires_grad_(False)


_CACHE: dict = {}  # trained classifiers per process, keyed by the training data's identity


def weights_hash(net: nn.Module) -> str:
    """A hash of a network's weights: the feature space's identity in floor cache keys."""
    from fewlabels.metrics.floors import fingerprint

    return fingerprint(*(t.detach().cpu().numpy() for t in net.state_dict().values()))


class ClassifierFeatures:
    """images (N, C, H, W) in [-1, 1] -> features (N, 128), plus the scores computed on them."""

    def __init__(self, net: SmallClassifier, description: str, device: torch.device):
        self.net, self.description, self.device = net.to(device), description, device
        self.identity = f"small classifier {weights_hash(net)}"

    @classmethod
    def for_data(cls, data, path: str | None, device: torch.device) -> ClassifierFeatures | None:
        """From a weights file, or trained on `data`'s training images (cached per process);
        None for images without labels and without a file."""
        if path:
            return cls(load(path, data.shape[0]), f"small classifier from {path}", device)
        if data.train_labels is None:
            return None
        key = (data.identity(), SEED)
        if key not in _CACHE:
            _CACHE[key] = train_classifier(data.train, data.train_labels)
        net = _CACHE[key]
        acc = accuracy(net, data.held, data.held_labels) if data.held_labels is not None else float("nan")
        net = net if device.type == "cpu" else copy.deepcopy(net)  # the cached copy stays on the CPU
        return cls(net, f"small classifier trained on {data.name} (seed {SEED}; held-out accuracy {acc:.3f})",
                   device)

    @torch.inference_mode()
    def outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = [], []
        for chunk in np.array_split(images, max(1, len(images) // 1000)):
            h, logits = self.net(torch.from_numpy(np.ascontiguousarray(chunk)).float().to(self.device))
            feats.append(h.cpu().numpy())
            probs.append(logits.softmax(1).cpu().numpy())
        return np.concatenate(feats), np.concatenate(probs)

    def embed(self, images: np.ndarray, cached: bool = False) -> dict[str, np.ndarray]:
        """What `compare` needs of a set of images: features and class probabilities."""
        feats, probs = self.outputs(images)
        return {"features": feats, "probs": probs}

    @staticmethod
    def compare(fake: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, float]:
        """Fréchet distance between the two sets' features; % of `fake` the classifier is sure of."""
        return {"fd": frechet_distance(fake["features"], real["features"]),
                "confident_percent": float(100 * (fake["probs"].max(1) >= CONFIDENT).mean())}

    def scores(self, fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
        return self.compare(self.embed(fake), self.embed(real))


def accuracy(net: SmallClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.inference_mode():
        pred = net(torch.from_numpy(images).float())[1].argmax(1).numpy()
    return float((pred == labels).mean())


def save(net: SmallClassifier, path: str) -> None:
    from safetensors.torch import save_file

    classes = net.head.out_features
    save_file(net.state_dict(), path, metadata={"classes": str(classes)})


def load(path: str, channels: int) -> SmallClassifier:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            classes = int((f.metadata() or {})["classes"])
            state = {k: f.get_tensor(k) for k in f.keys()}
        net = SmallClassifier(channels, classes)
        net.load_state_dict(state)
    except Exception as e:
        raise UserError(f"eval.classifier {path!r} is not a classifier written by "
                        f"`python -m fewlabels.metrics.classifier` ({type(e).__name__}); retrain it") from e
    return net.eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> None:
    from fewlabels.data.images import make_images

    ap = argparse.ArgumentParser(description="Train the feature classifier for the Fréchet distance.")
    ap.add_argument("--data", default="digits", help="digits, fashion_mnist or mnist")
    ap.add_argument("--root", help="folder of the IDX files (fashion_mnist, mnist)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--out", required=True, help="weights file (.safetensors)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = make_images(args.data, root=args.root)
    net = train_classifier(data.train, data.train_labels, args.epochs)
    save(net, args.out)
    print(json.dumps({"out": args.out, "held_out_accuracy": accuracy(net, data.held, data.held_labels)}))


if __name__ == "__main__":
    main()
