"""What every few-shot dataset provides: splits as uint8 arrays plus facts about them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """One split: images (N, H, W, C) uint8, labels (N,) int64 in [0, len(classes))."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must have one entry per image")

    @property
    def num_classes(self) -> int:
        return len(self.classes)
