"""Cityscapes (Cordts et al., CVPR 2016) at 128x256, 7-class segmentation + depth, as in Kurin et al. (2022).

Accepted source: the preprocessed ``.npy`` release used by multi-task papers (MTAN,
Liu et al. 2019; reused by the official code of Kurin et al.), a folder holding::

    train/image/<i>.npy     i = 0 .. 2974, (128, 256, 3) float, RGB in [0, 1]
    train/label_7/<i>.npy   (128, 256) float or int: class 0..6, -1 = ignore
    train/depth/<i>.npy     (128, 256, 1) or (128, 256) float, >= 0, 0 = no measurement
    val/...                 the same three folders, i = 0 .. 499

Every folder must hold exactly ``0.npy .. (N-1).npy`` with the same N for image,
label_7 and depth; each file must load without pickles and have the shape, a finite
value range and (labels) integer values in [-1, 6]. Any violation is one line naming
the file. The ``label_19`` and ``normal`` folders of some releases are ignored.

Splits, as the official code: train = release train 0 .. 2379 (the first 80%),
val = release train 2380 .. 2974, test = the release's val (500 images).
Prepared arrays: ``<split>_images.npy`` (N, 128, 256, 3) float32, used as stored (no
normalisation, as the official code), ``<split>_segmentation.npy`` (N, 128, 256) int8,
``<split>_depth.npy`` (N, 128, 256) float32.

Metrics (see ``harness.multitask.tasks``): segmentation mIoU and pixel accuracy (%,
higher is better), depth absolute and relative error over pixels with depth != 0
(lower is better). Model selection is per metric, as the official code (each metric
at the epoch where its own validation value is best), besides the selection by the
mean of the higher-is-better metrics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import HarnessError
from harness.datadir import reading
from harness.multitask.datasets import register
from harness.multitask.datasets._base import MultiTaskDataset, Task, TaskSplit
from harness.multitask.datasets._layout import PreparedMultiTaskDataset, create_array

HEIGHT, WIDTH, CLASSES = 128, 256, 7
RELEASE = {"train": 2975, "val": 500}
TRAIN_FRACTION = 0.8
FOLDERS = ("image", "label_7", "depth")


def indices(folder: Path) -> int:
    """N, when the folder holds exactly 0.npy .. (N-1).npy."""
    if not folder.is_dir():
        raise HarnessError(f"cityscapes: {folder}: missing")
    names = [p.name for p in folder.iterdir() if p.suffix == ".npy"]
    numbers = sorted(int(n[:-4]) for n in names if n[:-4].isdigit())
    if len(numbers) != len(names) or numbers != list(range(len(numbers))):
        odd = next((n for n in sorted(names) if not n[:-4].isdigit()), None)
        gap = next((i for i, n in enumerate(numbers) if i != n), len(numbers))
        raise HarnessError(f"cityscapes: {folder}: expected files 0.npy .. {len(names) - 1}.npy, "
                           + (f"found {odd}" if odd else f"{gap}.npy is missing"))
    return len(numbers)


def read_file(path: Path, kind: str) -> np.ndarray:
    with reading(path):
        array = np.load(path, allow_pickle=False)
    if kind == "depth" and array.shape == (HEIGHT, WIDTH, 1):
        array = array[..., 0]
    shape = {"image": (HEIGHT, WIDTH, 3), "label_7": (HEIGHT, WIDTH), "depth": (HEIGHT, WIDTH)}[kind]
    if array.shape != shape or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise HarnessError(f"{path}: {array.dtype} {array.shape}, expected numbers of shape {shape}")
    if not np.isfinite(array).all():
        raise HarnessError(f"{path}: holds NaN or infinite values")
    if kind == "label_7" and (np.any(array != np.round(array)) or array.min() < -1 or array.max() >= CLASSES):
        raise HarnessError(f"{path}: labels must be integers in [-1, {CLASSES - 1}], "
                           f"found values in [{array.min():g}, {array.max():g}]")
    if kind == "depth" and array.min() < 0:
        raise HarnessError(f"{path}: negative depth {array.min():g}")
    return array


@register("cityscapes", version="1", uses={"model": "resnet50_dilated_deeplab"})
class Cityscapes(PreparedMultiTaskDataset, MultiTaskDataset):
    name = "cityscapes"
    tasks = (Task("segmentation", "segmentation", CLASSES), Task("depth", "depth"))
    model = "resnet50_dilated_deeplab"
    input_kind = "float"
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    selection = "per_metric"
    arrays = ("images", "segmentation", "depth")
    counts = {"train": 2380, "val": 595, "test": 500}
    source_hint = "CITYSCAPES_NPY_FOLDER"

    @classmethod
    def definition(cls) -> dict:
        return {"name": cls.name, "size": [HEIGHT, WIDTH], "classes": CLASSES, "labels": "label_7",
                "split": "train: first 80% of release train; val: the rest; test: release val", "counts": cls.counts}

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [("cityscapes-npy", "the preprocessed release: train/ and val/, each with image/, label_7/, "
                                   "depth/ holding 0.npy .. N-1.npy (128x256)")]

    @classmethod
    def locate(cls, path: Path) -> Path:
        if not (path / "train" / "image").is_dir() or not (path / "val" / "image").is_dir():
            raise HarnessError(f"cityscapes: {path}: not the preprocessed release (expected {cls.sources()[0][1]})")
        return path

    @classmethod
    def read(cls, root: Path, out_dir: Path) -> tuple[str, list]:
        sizes = {}
        for part in RELEASE:
            found = {folder: indices(root / part / folder) for folder in FOLDERS}
            if len(set(found.values())) != 1:
                raise HarnessError(f"cityscapes: {root / part}: image/, label_7/ and depth/ hold different numbers "
                                   f"of files ({', '.join(f'{k} {v}' for k, v in found.items())})")
            sizes[part] = found["image"]
        cut = int(sizes["train"] * TRAIN_FRACTION)
        plan = {"train": ("train", range(cut)), "val": ("train", range(cut, sizes["train"])),
                "test": ("val", range(sizes["val"]))}
        for split, (part, members) in plan.items():
            images = create_array(out_dir, split, "images", np.float32, (len(members), HEIGHT, WIDTH, 3))
            labels = create_array(out_dir, split, "segmentation", np.int8, (len(members), HEIGHT, WIDTH))
            depth = create_array(out_dir, split, "depth", np.float32, (len(members), HEIGHT, WIDTH))
            for row, index in enumerate(members):
                images[row] = read_file(root / part / "image" / f"{index}.npy", "image")
                labels[row] = read_file(root / part / "label_7" / f"{index}.npy", "label_7")
                depth[row] = read_file(root / part / "depth" / f"{index}.npy", "depth")
            for array in (images, labels, depth):
                array.flush()
            del images, labels, depth
        return "cityscapes-npy", [f"release train {sizes['train']} (train 0..{cut - 1}, val {cut}..{sizes['train'] - 1}), "
                                  f"release val {sizes['val']} (test)"]

    @classmethod
    def split_from(cls, arrays: dict) -> TaskSplit:
        return TaskSplit(inputs=arrays["images"],
                         targets={"segmentation": arrays["segmentation"], "depth": arrays["depth"]})
