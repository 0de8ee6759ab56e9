"""A generative run's sample metrics, with their real-vs-real floor, the same for every family
(GANs and diffusion): points get exact EMD (and the PacGAN mode metrics on the 2D mixtures);
images get the scores of a feature extractor (Fréchet distance and more), named in every row."""

from __future__ import annotations

import numpy as np
import torch

from fewlabels.metrics.floors import FLOOR_DRAWS, cached_floor, summarize

FLOOR_SEED = 2025  # the real points or images that stand in for "a perfect model"
# InceptionV3 features cost ~0.1 s an image on a CPU, and each draw needs its own training
# images: its floors take fewer draws, stated in every result as real_draws.
INCEPTION_FLOOR_DRAWS = 3


def draw_seed(k: int) -> int:
    """The seed of the floor's k-th draw (apart from the evaluation and held-out streams)."""
    return 100 * FLOOR_SEED + k


class SampleMetrics:
    def __init__(self, data, is_image: bool, samples: int, emd_points: int, device: torch.device,
                 extractor: str = "classifier", classifier: str | None = None, inception: str | None = None,
                 conditional: bool = False):
        self.data, self.is_image, self.device, self.conditional = data, is_image, device, conditional
        self.samples, self.emd_points = samples, emd_points
        self.extractor, self.classifier, self.inception = extractor, classifier, inception
        self._features = None
        self._floor: dict | None = None
        self._class_stash: dict | None = None  # the conditional references, computed beside the floor

    @property
    def features(self):
        """Images: the feature extractor (None for unlabelled images without a classifier file)."""
        if self._features is None:
            if self.extractor == "inception":
                from fewlabels.metrics.inception import InceptionFeatures
                self._features = InceptionFeatures(self.inception, self.device)
            else:
                from fewlabels.metrics.classifier import ClassifierFeatures
                self._features = ClassifierFeatures.for_data(self.data, self.classifier, self.device)
        return self._features

    @property
    def judge(self):
        """The dataset's classifier (the one behind the classifier FD), which decides class consistency."""
        if self.extractor == "classifier":
            return self.features
        from fewlabels.metrics.classifier import ClassifierFeatures
        return ClassifierFeatures.for_data(self.data, self.classifier, self.device)

    def count(self) -> int:
        """How many generated samples `score` wants."""
        if self.is_image:
            return min(self.samples, len(self.data.held))
        return max(self.samples if self.data.modes is not None else 0, self.emd_points)

    @property
    def floor_draws(self) -> int:
        return INCEPTION_FLOOR_DRAWS if self.is_image and self.extractor == "inception" else FLOOR_DRAWS

    def _point_scores(self, for_emd: np.ndarray, for_modes: np.ndarray, real: np.ndarray) -> dict[str, float]:
        from fewlabels.metrics.distances import emd
        from fewlabels.metrics.mixture import mode_metrics

        out = {"emd": emd(for_emd, real)}
        if self.data.modes is not None:
            out.update(mode_metrics(for_modes, self.data.modes, self.data.mode_std))
        return out

    def floor(self) -> dict[str, float]:
        """The same metrics for real data against disjoint real data, at the model's sample counts:
        the best a model can score. Keys real_<metric> (the mean over draws), real_<metric>_std
        and real_draws; computed once per dataset and protocol (metrics.floors caches them).

        Draw k (seeded by draw_seed(k)) takes two real sets that share no sample:
        - synthetic point sets: two fresh draws from the distribution (count() points play the
          model's samples, emd_points the held-out side);
        - a user's point file: a random subset of its training points against a random subset of
          its held-out points (sizes capped by each part);
        - images: count() random training images against count() random held-out images (all of
          them when count() is the held-out size), scored by the run's feature extractor.
        FLOOR_DRAWS draws, INCEPTION_FLOOR_DRAWS with InceptionV3."""
        if self._floor is None:
            if self.is_image and self.features is None:
                self._floor = {}
            else:
                floor = cached_floor(self._floor_identity(), self._image_floor if self.is_image else self._point_floor)
                if self.is_image and self.conditional:  # cached apart: a plain run's floor is the same
                    floor = {**floor, **cached_floor(self._class_floor_identity(), self._class_floor)}
                self._floor = {f"real_{k}": v for k, v in floor.items()}
        return self._floor

    def _floor_identity(self) -> dict:
        if self.is_image:
            return {"kind": "images", "data": self.data.identity(), "n": self.count(),
                    "extractor": self.features.identity, "draws": self.floor_draws}
        return {"kind": "points", "data": self.data.identity(), "emd_points": self.emd_points,
                "samples": self.samples if self.data.modes is not None else 0, "draws": self.floor_draws}

    def _class_floor_identity(self) -> dict:
        return {**self._floor_identity(), "kind": "classes", "judge": self.judge.identity}

    def _class_floor(self) -> dict[str, float]:
        """The conditional references: intra-class FD of real training against held-out images
        over the floor's draws, and class consistency (see _image_floor). Computed with the plain
        floor when that is computed; else by computing it again."""
        if self._class_stash is None:
            self._image_floor()
        return self._class_stash

    def _point_floor(self) -> dict[str, float]:
        draws = []
        for k in range(self.floor_draws):
            model_side, held_side = self.data.disjoint_real_sets(self.count(), self.emd_points, draw_seed(k))
            draws.append(self._point_scores(model_side[: self.emd_points], model_side[: self.samples], held_side))
        return summarize(draws)

    def _image_floor(self) -> dict[str, float]:
        n, data, features = self.count(), self.data, self.features
        picks = [data.disjoint_real_indices(n, n, draw_seed(k)) for k in range(self.floor_draws)]
        # Each image is embedded once, however many draws share it.
        train_ids = np.unique(np.concatenate([a for a, _ in picks]))
        held_ids = np.unique(np.concatenate([b for _, b in picks]))
        train = features.embed(data.train[train_ids])
        # When the draws cover the whole held-out set, it is the set `score` compares against: disk-cached
        # for InceptionV3 (training subsets are not: each is used once, and the floor itself is cached).
        held = features.embed(data.held[held_ids], cached=len(held_ids) == len(data.held))
        if self.conditional:  # the real images' labels, for the intra-class FD
            train["labels"], held["labels"] = data.train_labels[train_ids], data.held_labels[held_ids]
        draws, class_draws = [], []
        for a, b in picks:
            fake_side = {k: v[np.searchsorted(train_ids, a)] for k, v in train.items()}
            real_side = {k: v[np.searchsorted(held_ids, b)] for k, v in held.items()}
            draws.append(features.compare(fake_side, real_side))
            if self.conditional:
                class_draws.append(class_scores(fake_side, real_side))
        if self.conditional:
            self._class_stash = summarize(class_draws)
            # The classifier was trained on the training images: its consistency on them says
            # little. The reference is its accuracy on the held-out images, which it never saw (a
            # reference, not a bound: samples G makes typical, truncated ones say, can exceed it).
            judged = self.judge.outputs(data.held)[1].argmax(1)
            self._class_stash.update(class_consistency=float(100 * (judged == data.held_labels).mean()),
                                     class_consistency_std=0.0)
        return summarize(draws)

    def score(self, fake: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """`fake` (count() samples) scored, with the floor; {} for images with no extractor. With the
        labels G was asked for (a conditional run): also class consistency and intra-class FD."""
        if not self.is_image:
            return {**self._point_scores(fake[: self.emd_points], fake[: self.samples],
                                         self.data.holdout(self.emd_points)), **self.floor()}
        if self.features is None:
            return {}
        n, m = len(fake), self.count()
        floor = self.floor()
        fake_side = self.features.embed(fake)
        real_side = self.features.embed(self.data.holdout(n), cached=True)
        scores = self.features.compare(fake_side, real_side)
        if labels is not None and self.conditional:
            fake_side["labels"], real_side["labels"] = labels, self.data.held_labels[:n]
            probs = fake_side["probs"] if "probs" in fake_side else self.judge.outputs(fake)[1]
            fake_side["judged"] = probs.argmax(1)
            scores.update(class_scores(fake_side, real_side))
        return {**scores, **floor,
                "feature_extractor": self.features.description,
                "samples_vs_real": f"{n} generated vs {n} held-out real; floor: {m} training vs {m} held-out, "
                                   f"mean ± std over {int(floor['real_draws'])} draws"}


def class_scores(fake: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, float]:
    """A conditional model's scores: class_consistency, the % of `fake` whose class by the dataset's
    classifier (fake["judged"], when given) is the one asked for (fake["labels"]); intra_fd, the Fréchet distance
    between fake and real features of each class, averaged over the classes both sides have (at
    least 2 samples each)."""
    from fewlabels.metrics.frechet import frechet_distance

    distances = []
    for c in np.unique(real["labels"]):
        a, b = fake["features"][fake["labels"] == c], real["features"][real["labels"] == c]
        if len(a) > 1 and len(b) > 1:
            distances.append(frechet_distance(a, b))
    out = {"intra_fd": float(np.mean(distances)) if distances else float("nan")}
    if "judged" in fake:  # the floor's real images have no verdict here (see SampleMetrics._image_floor)
        out["class_consistency"] = float(100 * (fake["judged"] == fake["labels"]).mean())
    return out
