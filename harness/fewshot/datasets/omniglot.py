"""Omniglot (Lake et al.) from the official zip files shipped with the package.

The package ships ``images_background_small1.zip`` and ``images_background_small2.zip``
(MIT licence, official Omniglot repository; see ``harness/assets/omniglot/PROVENANCE``).
Their union holds 8 alphabets and 242 characters of 20 drawings each; Greek and
Latin appear in both zips with identical files and are counted once. Characters
are split BY ALPHABET, so no alphabet is seen in training and test:

- train: Balinese, Early_Aramaic, Japanese_(katakana), Korean, Sanskrit (175 characters)
- val:   Tagalog (17 characters)
- test:  Greek, Latin (50 characters)

Drawings are 105x105 1-bit images, resized to 28x28 (Lanczos) and inverted so
that strokes are bright on a dark background.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from harness.fewshot.datasets import register
from harness.fewshot.datasets._base import Split

ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
SPLITS = {
    "train": ("Balinese", "Early_Aramaic", "Japanese_(katakana)", "Korean", "Sanskrit"),
    "val": ("Tagalog",),
    "test": ("Greek", "Latin"),
}
IMAGE_SIZE = 28


@register("omniglot")
class Omniglot:
    name = "omniglot"
    channels = 1
    image_size = IMAGE_SIZE
    # Pixel statistics of the train split after resizing (checked by a test).
    mean = (0.0880,)
    std = (0.2439,)

    @staticmethod
    def fingerprint() -> str:
        return _fingerprint()

    @staticmethod
    def load(split: str) -> Split:
        if split not in SPLITS:
            raise ValueError(f"omniglot has no split {split!r} (train, val, test)")
        return _load(split)


def _zip_paths():
    folder = resources.files("harness") / "assets" / "omniglot"
    return [folder / name for name in ZIPS]


@lru_cache(maxsize=None)
def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in _zip_paths():
        digest.update(path.read_bytes())
    digest.update(repr((SPLITS, IMAGE_SIZE)).encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=None)
def _load(split: str) -> Split:
    alphabets = SPLITS[split]
    drawings: dict[tuple[str, str], dict[str, bytes]] = {}
    for path in _zip_paths():
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                if not member.endswith(".png") or len(parts) != 4 or parts[1] not in alphabets:
                    continue
                _, alphabet, character, filename = parts
                drawings.setdefault((alphabet, character), {})[filename] = archive.read(member)
    classes = sorted(drawings)
    images, labels = [], []
    for label, key in enumerate(classes):
        for filename in sorted(drawings[key]):
            images.append(_decode(drawings[key][filename]))
            labels.append(label)
    return Split(
        images=np.stack(images)[..., None],
        labels=np.asarray(labels, dtype=np.int64),
        classes=tuple(f"{alphabet}/{character}" for alphabet, character in classes),
    )


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8)
