"""scikit-learn's handwritten digits (``sklearn.datasets.load_digits``): 1,797 real 8x8
images, pixel values 0-16, shipped with scikit-learn (UCI "Optical Recognition of
Handwritten Digits", test part). Nothing to download or prepare.

The split is the one of scikit-learn's example "Recognizing hand-written digits"
(``train_test_split(data, target, test_size=0.5, shuffle=False)``): the first 898
images train, the last 899 test, so the example's SVC result is a baseline for this
split. No validation split: every method here has fixed hyperparameters.

Torch-free: imported at plan time for its ``fingerprint``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness_example.digits.datasets import register

IMAGES, CLASSES, SIDE = 1797, 10, 8


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (n, 64) float64, pixel values 0-16, as load_digits gives them
    labels: np.ndarray  # (n,) int64, the digit


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.reshape(len(digits.images), -1)
    return np.ascontiguousarray(images, dtype=np.float64), np.ascontiguousarray(digits.target, dtype=np.int64)


@register("digits", version="1")
class Digits:
    name = "digits"
    classes = CLASSES
    features = SIDE * SIDE

    @classmethod
    def load(cls) -> dict[str, Split]:
        """{"train": first half, "test": second half}, as the scikit-learn example splits."""
        from sklearn.model_selection import train_test_split

        images, labels = _arrays()
        train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.5, shuffle=False)
        return {"train": Split(train_x, train_y), "test": Split(test_x, test_y)}

    @classmethod
    def fingerprint(cls) -> str:
        """sha256 of the images and labels, 16 hex digits: part of every run id."""
        images, labels = _arrays()
        digest = hashlib.sha256()
        for array in (images, labels):
            digest.update(str(array.shape).encode() + array.tobytes())
        return digest.hexdigest()[:16]

    # -- what `harness data` asks of a dataset

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [("scikit-learn", "shipped with scikit-learn (sklearn.datasets.load_digits): nothing to download or prepare")]

    @classmethod
    def verify(cls, root=None) -> str:
        images, labels = _arrays()
        counts = np.bincount(labels, minlength=CLASSES)
        problems = []
        if images.shape != (IMAGES, SIDE * SIDE):
            problems.append(f"images have shape {images.shape}, expected ({IMAGES}, {SIDE * SIDE})")
        if len(counts) != CLASSES or counts.min() < 170:
            problems.append(f"class counts {counts.tolist()}, expected 10 classes of about 180 images")
        if images.min() < 0 or images.max() > 16:
            problems.append(f"pixel values span {images.min()}..{images.max()}, expected 0..16")
        if problems:
            from harness import HarnessError

            raise HarnessError("digits: " + "; ".join(problems))
        return f"digits: OK ({len(images):,} images, {CLASSES} classes, fingerprint {cls.fingerprint()})"
