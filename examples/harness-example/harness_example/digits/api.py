"""What a digits method is (for method authors; torch-free).

A method is a class registered in ``harness_example/digits/methods/`` with
``register("<name>", version="1")``, or anywhere else (a plugin file, another package)
with ``harness.api.register("digits.method", "<name>", version="1")``. The trainer
builds it with the run's config, calls ``train_epoch`` ``epochs`` times, then
``predict`` on the test images. Images are (n, 64) float64 arrays of pixel values
0-16, labels (n,) int64 digits.

Resumable methods (more than one epoch) give their whole training state in
``state_dict()`` (picklable: arrays, tensors, scikit-learn estimators, random
generator states); the trainer checkpoints it after every epoch but the last and, on a
restart, hands it to ``load_state_dict`` of a method built from the same config, so
the resumed run ends exactly as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np

PIXEL_MAX = 16.0  # load_digits pixel values are 0..16


class DigitsMethod:
    epochs = 1

    def __init__(self, config: dict):
        self.config = config

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, epoch: int) -> str | None:
        """One pass over the training images (epoch counts from 0); may return a log note ("loss 0.12")."""
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The predicted digit of each image."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} trains for {self.epochs} epochs but cannot be checkpointed")

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot resume from a checkpoint")


class EstimatorMethod(DigitsMethod):
    """A scikit-learn estimator fitted once on the training images: subclasses define
    ``estimator()``; ``scale`` multiplies the pixels before fit and predict."""

    scale = 1.0

    def estimator(self):
        raise NotImplementedError

    def train_epoch(self, images, labels, epoch):
        self.fitted = self.estimator().fit(images * self.scale, labels)
        return None

    def predict(self, images):
        return self.fitted.predict(images * self.scale)
