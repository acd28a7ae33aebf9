"""Multi-MNIST (Sabour et al. 2017, in the form of Sener & Koltun 2018 as run by Kurin et al. 2022),
built from the MNIST TEST set shipped with the package. No preparation step.

Only the 10,000 MNIST test images are available here (``harness/assets/mnist``,
see PROVENANCE there; the 60,000 training images are not), so train, validation
and test are all cut from them; numbers are not comparable with Multi-MNIST built
from the MNIST training set. Exact construction:

1. read the idx files, check 10,000 images of 28x28 and the per-digit counts
   980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009;
2. ``rng = numpy.random.default_rng(SPLIT_SEED)``; ``order = rng.permutation(10000)``:
   source images ``order[:8000]`` are train, ``order[8000:9000]`` val, ``order[9000:]`` test;
3. for train, then val, then test: every source image of the split is a LEFT digit
   once, in split order, and its RIGHT partner is ``rng.integers`` drawn uniformly
   from the same split (with replacement, itself allowed, as the official code), so
   no source image is seen in two splits;
4. a 36x36 zero canvas; the left digit at rows/cols [0:28, 0:28], the right one at
   [6:34, 6:34], pixel-wise maximum where they overlap;
5. nearest-neighbour resize to 28x28 exactly as PIL's ``Image.NEAREST`` (used by the
   official code): output pixel i reads source pixel floor((i + 0.5) * 36 / 28).

Tasks: ``left`` and ``right``, the two digits (10 classes each). Inputs are uint8
(N, 28, 28, 1), normalised with the MNIST mean 0.1307 and std 0.3081 (the official
transform).
"""
from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from harness import HarnessError
from harness.multitask.datasets import register
from harness.multitask.datasets._base import SPLITS, MultiTaskDataset, Task, TaskSplit
from harness.multitask.datasets._idx import read_idx

ASSETS = resources.files("harness") / "assets" / "mnist"
IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
DIGIT_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
SPLIT_SIZES = {"train": 8000, "val": 1000, "test": 1000}
SPLIT_SEED = 20220  # fixed: part of the dataset's definition (and fingerprint)
CANVAS, DIGIT, OFFSET = 36, 28, 6
NEAREST = np.floor((np.arange(DIGIT) + 0.5) * CANVAS / DIGIT).astype(np.int64)


def read_mnist(folder=None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images (10000, 28, 28) uint8 and labels (10000,) int64, checked."""
    folder = Path(str(ASSETS)) if folder is None else Path(folder)
    images, labels = read_idx(folder / IMAGES), read_idx(folder / LABELS)
    if images.shape != (10000, 28, 28) or images.dtype != np.uint8:
        raise HarnessError(f"{folder / IMAGES}: {images.dtype} {images.shape}, expected uint8 (10000, 28, 28)")
    if labels.shape != (10000,) or labels.dtype != np.uint8 or labels.max() > 9:
        raise HarnessError(f"{folder / LABELS}: expected 10000 labels in 0-9, got {labels.dtype} {labels.shape}")
    counts = tuple(np.bincount(labels, minlength=10).tolist())
    if counts != DIGIT_COUNTS:
        raise HarnessError(f"{folder / LABELS}: per-digit counts {counts}, expected the MNIST test set's {DIGIT_COUNTS}")
    return images, labels.astype(np.int64)


def split_indices() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (left, right) indices into the 10,000 source images (steps 2 and 3)."""
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(sum(SPLIT_SIZES.values()))
    out, start = {}, 0
    for split in SPLITS:
        members = order[start:start + SPLIT_SIZES[split]]
        start += len(members)
        out[split] = (members, members[rng.integers(0, len(members), size=len(members))])
    return out


def canvas(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(N, 36, 36): left at [0:28, 0:28], right at [6:34, 6:34], pixel-wise max (step 4)."""
    out = np.zeros((len(left), CANVAS, CANVAS), dtype=left.dtype)
    out[:, :DIGIT, :DIGIT] = left
    window = out[:, OFFSET:OFFSET + DIGIT, OFFSET:OFFSET + DIGIT]
    np.maximum(window, right, out=window)
    return out


def compose(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(N, 28, 28): the canvas resized by nearest neighbour (step 5)."""
    return canvas(left, right)[:, NEAREST][:, :, NEAREST]


@cache
def _build(split: str) -> TaskSplit:
    images, labels = read_mnist()
    left, right = split_indices()[split]
    return TaskSplit(inputs=compose(images[left], images[right])[..., None],
                     targets={"left": labels[left], "right": labels[right]})


@cache
def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in (IMAGES, LABELS):
        digest.update((ASSETS / name).read_bytes())
    digest.update(repr(("multi_mnist", 1, SPLIT_SIZES, SPLIT_SEED, CANVAS, DIGIT, OFFSET, "max", "nearest")).encode())
    return digest.hexdigest()[:16]


@register("multi_mnist", version="1", uses={"model": "multilenet"})
class MultiMNIST(MultiTaskDataset):
    name = "multi_mnist"
    tasks = (Task("left", "classification", 10), Task("right", "classification", 10))
    model = "multilenet"
    input_kind = "uint8"
    mean, std = (0.1307,), (0.3081,)

    @classmethod
    def fingerprint(cls) -> str:
        return _fingerprint()

    @classmethod
    def load(cls, split: str, root=None) -> TaskSplit:
        if split not in SPLITS:
            raise ValueError(f"multi_mnist has no split {split!r} (train, val, test)")
        return _build(split)

    @classmethod
    def require_prepared(cls, root=None) -> Path:
        return Path(str(ASSETS))  # built from the shipped files: nothing to prepare

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [("shipped", f"{IMAGES} and {LABELS} (MNIST test set) shipped in {ASSETS}; needs no preparation")]

    @classmethod
    def verify(cls, root=None) -> str:
        sizes = ", ".join(f"{split} {len(cls.load(split))}" for split in SPLITS)
        return f"multi_mnist: built from the MNIST test set shipped in {ASSETS}: OK ({sizes}, 28x28x1, 2 tasks)"
