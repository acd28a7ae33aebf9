"""Reading the dataset files users download: safe unpickling, image decoding, one-line errors."""
from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from harness import HarnessError
from harness.datadir import reading
from harness.fewshot.datasets._base import Split

# The only globals a dataset pickle needs: numpy arrays, dtypes and scalars (under
# numpy 1 and numpy 2 module names), and the helper protocol-2 pickles use for bytes.
# Anything else is refused, because unpickling a global can run arbitrary code.
PICKLE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"), ("collections", "OrderedDict"),
}

class _DatasetUnpickler(pickle.Unpickler):
    def __init__(self, file, label):
        super().__init__(file, encoding="latin1")  # Python 2 pickles: latin1 is numpy's convention
        self.label = label

    def find_class(self, module, name):
        if (module, name) not in PICKLE_GLOBALS:
            raise HarnessError(f"{self.label}: refers to {module}.{name}, which no dataset file needs: "
                               f"refused (unpickling it could run code)")
        return super().find_class(module, name)


def load_pickle(source, label) -> object:
    """Unpickle a path or binary file, allowing only the globals of PICKLE_GLOBALS."""
    with reading(label):
        if isinstance(source, (str, Path)):
            with open(source, "rb") as file:
                return _DatasetUnpickler(file, label).load()
        return _DatasetUnpickler(source, label).load()


def require_keys(data, keys: Sequence[str], label) -> None:
    if not isinstance(data, dict):
        raise HarnessError(f"{label}: expected a dict with keys {list(keys)}, found {type(data).__name__}")
    missing = [key for key in keys if key not in data]
    if missing:
        raise HarnessError(f"{label}: wrong keys: lacks {missing}, has {sorted(map(str, data))}")


def as_images(data, size: int, label) -> np.ndarray:
    """A (N, size, size, 3) uint8 array, or a one-line error naming the file and the shape found."""
    array = np.asarray(data)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (size, size, 3):
        raise HarnessError(f"{label}: images are {array.dtype} {array.shape}, expected uint8 (N, {size}, {size}, 3)")
    return array


def as_labels(data, count: int, label, key: str = "labels") -> np.ndarray:
    with reading(label):
        array = np.asarray(data)
    if array.ndim != 1 or len(array) != count or (count and not np.issubdtype(array.dtype, np.integer)):
        raise HarnessError(f"{label}: '{key}' must be {count} integers (one per image), found {array.dtype} {array.shape}")
    return array.astype(np.int64)


def decode_image(data: bytes, label, size: int, resize: bool = False) -> np.ndarray:
    """An encoded image as (size, size, 3) RGB uint8; resized (Lanczos) only where `resize`."""
    with reading(label):
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    if rgb.size != (size, size):
        if not resize:
            raise HarnessError(f"{label}: image is {rgb.size[0]}x{rgb.size[1]}, expected {size}x{size}")
        rgb = rgb.resize((size, size), Image.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def encoded_bytes(item) -> bytes:
    """One entry of a pickled list of encoded images: bytes, a latin1 str (Python 2) or a uint8 array."""
    if isinstance(item, str):
        return item.encode("latin1")
    if isinstance(item, np.ndarray):
        return item.tobytes()
    return bytes(item)


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def select_classes(images: np.ndarray, names: np.ndarray, wanted: Sequence[str], known, where: str,
                   split_list: str) -> Split:
    """The images of the `wanted` classes, labelled by position in `wanted`, in canonical order.

    `names` holds each image's class name; `known` the classes the source defines (a known
    class may still have too few images: the facts check reports counts, not this).
    """
    lacking = [name for name in wanted if name not in known]
    if lacking:
        raise HarnessError(f"{where} has no class {', '.join(map(repr, lacking))} (named by the {split_list} split list)")
    index = {name: i for i, name in enumerate(wanted)}
    mask = np.isin(names, list(wanted))
    labels = np.array([index[name] for name in names[mask]], dtype=np.int64)
    return grouped(images[mask], labels, wanted)


def grouped(images: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Split:
    """Images ordered by label, then by the sha256 of their pixels.

    Content order makes every source of the same images give identical arrays (and so the
    same episodes and hashes), whatever order the downloaded files keep them in.
    """
    digests = [hashlib.sha256(image.tobytes()).digest() for image in images]
    order = sorted(range(len(labels)), key=lambda i: (labels[i], digests[i]))
    return Split(images=np.ascontiguousarray(images[order]), labels=labels[order].astype(np.int64),
                 classes=tuple(classes))


def grouped_by_name(images: np.ndarray, names) -> Split:
    """`grouped`, with classes given by name per image: label order = sorted names."""
    classes, labels = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    return grouped(images, labels.reshape(-1).astype(np.int64), classes.tolist())


def folder_with(files: dict):
    """A `locate` for sources that are per-split files in one folder: the folder, or one of its files."""
    def locate(path: Path):
        folder = path.parent if path.is_file() and path.name in files.values() else path
        return folder if folder.is_dir() and any((folder / name).is_file() for name in files.values()) else None
    return locate
