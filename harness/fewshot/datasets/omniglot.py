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

No preparation is needed: without a prepared folder, `load` reads the shipped zips.
`harness data prepare omniglot --source FOLDER_WITH_THE_ZIPS` writes the same arrays in
the common prepared layout, which `load` then reads instead.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from harness import HarnessError
from harness.fewshot.datasets import register
from harness.fewshot.datasets._base import Split
from harness.fewshot.datasets._files import folder_with, reading
from harness.fewshot.datasets._layout import SPLITS as SPLIT_NAMES
from harness.fewshot.datasets._layout import Facts, PreparedDataset, Reader, data_root, summarize

ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
SPLITS = {
    "train": ("Balinese", "Early_Aramaic", "Japanese_(katakana)", "Korean", "Sanskrit"),
    "val": ("Tagalog",),
    "test": ("Greek", "Latin"),
}
IMAGE_SIZE = 28
ASSETS = resources.files("harness") / "assets" / "omniglot"


def _read_zips(dataset, folder: Path, out_dir: Path):
    paths = [folder / name for name in ZIPS]
    return {split: _build(paths, split) for split in SPLIT_NAMES}, []


@register("omniglot", version="1")
class Omniglot(PreparedDataset):
    name = "omniglot"
    # Pixel statistics of the train split after resizing (checked by a test).
    facts = Facts(classes={"train": 175, "val": 17, "test": 50}, per_class=20, image_size=IMAGE_SIZE, channels=1,
                  mean=(0.0880,), std=(0.2439,))
    crop_padding = 0
    readers = (Reader("omniglot-small-zips", f"a folder with {' and '.join(ZIPS)} (official Omniglot repository)",
                      folder_with({name: name for name in ZIPS}), _read_zips,
                      order="by class (alphabet/character, sorted), then file name"),)
    source_hint = str(ASSETS)

    @classmethod
    def fingerprint(cls) -> str:
        # Unchanged by the prepared layout: the arrays are the same as before it, so are run ids.
        return _fingerprint()

    @classmethod
    def prepared(cls, root=None) -> bool:
        return (data_root(root) / cls.name).exists()

    @classmethod
    def load(cls, split: str, root=None) -> Split:
        if cls.prepared(root):
            return super().load(split, root)
        if split not in SPLITS:
            raise ValueError(f"omniglot has no split {split!r} (train, val, test)")
        return _shipped(split)

    @classmethod
    def require_prepared(cls, root=None):
        return super().require_prepared(root) if cls.prepared(root) else Path(str(ASSETS))

    @classmethod
    def verify(cls, root=None) -> str:
        if cls.prepared(root):
            return super().verify(root)
        splits = {split: _shipped(split) for split in SPLIT_NAMES}
        summaries = {split: summarize(s.images, s.labels, s.classes) for split, s in splits.items()}
        problems = [p for split in SPLIT_NAMES for p in cls.facts.problems(split, summaries[split])]
        if problems:
            raise HarnessError(f"verify omniglot (shipped zips in {ASSETS}): " + "; ".join(problems))
        counts = ", ".join(f"{split} {len(s['classes'])} classes x 20" for split, s in summaries.items())
        return (f"omniglot: not prepared in {data_root(root)}; runs read the zips shipped in {ASSETS}: "
                f"OK ({counts}, 28x28x1)")


def _zip_paths():
    return [ASSETS / name for name in ZIPS]


@cache
def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in _zip_paths():
        digest.update(path.read_bytes())
    digest.update(repr((SPLITS, IMAGE_SIZE)).encode())
    return digest.hexdigest()[:16]


@cache
def _shipped(split: str) -> Split:
    return _build(_zip_paths(), split)


def _build(paths, split: str) -> Split:
    alphabets = SPLITS[split]
    drawings: dict[tuple[str, str], dict[str, bytes]] = {}
    for path in paths:
        with reading(path):
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
            images.append(_decode(drawings[key][filename], f"{key[0]}/{key[1]}/{filename}"))
            labels.append(label)
    return Split(
        images=np.stack(images)[..., None] if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8),
        labels=np.asarray(labels, dtype=np.int64),
        classes=tuple(f"{alphabet}/{character}" for alphabet, character in classes),
    )


def _decode(png: bytes, label: str) -> np.ndarray:
    with reading(label):
        with Image.open(io.BytesIO(png)) as image:
            small = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8)
