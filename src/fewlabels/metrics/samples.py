"""A generative run's sample metrics, with their real-vs-real floor, the same for every family
(GANs and diffusion): points get exact EMD (and the PacGAN mode metrics on the 2D mixtures);
images get the scores of a feature extractor (Fréchet distance and more), named in every row."""

from __future__ import annotations

import numpy as np
import torch

FLOOR_SEED = 2025  # the real points or images that stand in for "a perfect model"


class SampleMetrics:
    def __init__(self, data, is_image: bool, samples: int, emd_points: int, device: torch.device,
                 extractor: str = "classifier", classifier: str | None = None, inception: str | None = None):
        self.data, self.is_image, self.device = data, is_image, device
        self.samples, self.emd_points = samples, emd_points
        self.extractor, self.classifier, self.inception = extractor, classifier, inception
        self._features = None
        self._floor: dict | None = None

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

    def count(self) -> int:
        """How many generated samples `score` wants."""
        if self.is_image:
            return min(self.samples, len(self.data.held))
        return max(self.samples if self.data.modes is not None else 0, self.emd_points)

    def _point_scores(self, for_emd: np.ndarray, for_modes: np.ndarray) -> dict[str, float]:
        from fewlabels.metrics.distances import emd
        from fewlabels.metrics.mixture import mode_metrics

        out = {"emd": emd(for_emd, self.data.holdout(self.emd_points))}
        if self.data.modes is not None:
            out.update(mode_metrics(for_modes, self.data.modes, self.data.mode_std))
        return out

    def floor(self) -> dict[str, float]:
        """The same metrics for real data against real data (keys real_*): the best a model can score."""
        if self._floor is None:
            if self.is_image:
                n = self.count()
                floor = {} if self.features is None else \
                    self.features.scores(self.data.real(n, seed=FLOOR_SEED), self.data.holdout(n))
            else:
                real = self.data.holdout(self.samples + self.emd_points, seed=FLOOR_SEED)
                floor = self._point_scores(real[: self.emd_points], real[-self.samples:])
            self._floor = {f"real_{k}": v for k, v in floor.items()}
        return self._floor

    def score(self, fake: np.ndarray) -> dict:
        """`fake` (count() samples) scored, with the floor; {} for images with no extractor."""
        if not self.is_image:
            return {**self._point_scores(fake[: self.emd_points], fake[: self.samples]), **self.floor()}
        if self.features is None:
            return {}
        n = len(fake)
        return {**self.features.scores(fake, self.data.holdout(n)), **self.floor(),
                "feature_extractor": self.features.description,
                "samples_vs_real": f"{n} generated vs {n} held-out real; floor: {n} training vs the same {n}"}
