"""Sources of the ImageNet-derived few-shot datasets, 84x84 RGB.

mini-ImageNet (classes are ImageNet wnids; label order = sorted wnids):
- `mini-imagenet-cache-{train,validation,test}.pkl`: dict, 'image_data' (N, 84, 84, 3) uint8
  and 'class_dict' {wnid: [indices]};
- MetaOptNet's `miniImageNet_category_split_{train_phase_train,val,test}.pickle`: dict, 'data'
  (N, 84, 84, 3) uint8, 'labels' (N,) and 'catname2label' {wnid: label};
- `{train,val,test}.csv` (header filename,label; label = wnid) beside an `images/` folder
  holding the named JPEGs (`images/<filename>` or `images/<label>/<filename>`), converted to
  RGB and resized to 84x84 with PIL's Lanczos filter when not 84x84 already.

tiered-ImageNet: `{train,val,test}_images_png.pkl` (a list of PNG-encoded 84x84 images) with
`{train,val,test}_labels.pkl` (dict: 'label_specific' (N,) class ids; 'label_specific_str',
the class names, when present). Prepared streaming: see `_read_tiered`.
"""
from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness import HarnessError
from harness.fewshot.datasets._base import Split
from harness.fewshot.datasets._files import (
    as_images,
    as_labels,
    decode_image,
    encoded_bytes,
    folder_with,
    grouped_by_name,
    load_pickle,
    reading,
    require_keys,
)
from harness.fewshot.datasets._layout import SPLITS, Facts, PreparedDataset, Reader, array_paths

SIZE = 84
MEAN = (120.39586422 / 255, 115.59361427 / 255, 104.54012653 / 255)
STD = (70.68188272 / 255, 68.27635443 / 255, 72.54505529 / 255)

MINI_CACHE = {"train": "mini-imagenet-cache-train.pkl", "val": "mini-imagenet-cache-validation.pkl",
              "test": "mini-imagenet-cache-test.pkl"}
MINI_METAOPTNET = {"train": "miniImageNet_category_split_train_phase_train.pickle",
                   "val": "miniImageNet_category_split_val.pickle",
                   "test": "miniImageNet_category_split_test.pickle"}
MINI_CSV = {split: f"{split}.csv" for split in SPLITS}
TIERED_IMAGES = {split: f"{split}_images_png.pkl" for split in SPLITS}
TIERED_LABELS = {split: f"{split}_labels.pkl" for split in SPLITS}


class ImageNetDataset(PreparedDataset):
    crop_padding = 8

    @staticmethod
    def imagenet_facts(classes: dict, per_class=None, totals=None) -> Facts:
        return Facts(classes=classes, per_class=per_class, totals=totals, image_size=SIZE, channels=3,
                     mean=MEAN, std=STD)


# -- mini-ImageNet ------------------------------------------------------------------------


def mini_readers() -> tuple:
    return (
        Reader("mini-imagenet-cache", "a folder with mini-imagenet-cache-{train,validation,test}.pkl",
               folder_with(MINI_CACHE), _read_mini_cache),
        Reader("metaoptnet-pickles", "a folder with MetaOptNet's miniImageNet_category_split_"
               "{train_phase_train,val,test}.pickle", folder_with(MINI_METAOPTNET), _read_mini_metaoptnet),
        Reader("jpeg-csv", "a folder with {train,val,test}.csv (filename,label) and images/ holding the JPEGs",
               folder_with(MINI_CSV), _read_mini_jpegs),
    )


def _indices(values, count: int, label) -> np.ndarray:
    with reading(label):
        index = np.asarray(values, dtype=np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() >= count):
        raise HarnessError(f"{label}: 'class_dict' has indices outside [0, {count})")
    return index


def _read_mini_cache(dataset, folder: Path, out_dir: Path):
    splits = {}
    for split, file in MINI_CACHE.items():
        label = folder / file
        data = load_pickle(label, label)
        require_keys(data, ["image_data", "class_dict"], label)
        images = as_images(data["image_data"], SIZE, label)
        names = np.full(len(images), "", dtype=object)
        for wnid, indices in dict(data["class_dict"]).items():
            names[_indices(indices, len(images), label)] = str(wnid)
        if (names == "").any():
            raise HarnessError(f"{label}: {(names == '').sum()} images belong to no class of 'class_dict'")
        splits[split] = grouped_by_name(images, names)
    return splits, []


def _read_mini_metaoptnet(dataset, folder: Path, out_dir: Path):
    splits = {}
    for split, file in MINI_METAOPTNET.items():
        label = folder / file
        data = load_pickle(label, label)
        require_keys(data, ["data", "labels", "catname2label"], label)
        images = as_images(data["data"], SIZE, label)
        labels = as_labels(data["labels"], len(images), label)
        name_of = {int(v): str(k) for k, v in dict(data["catname2label"]).items()}
        unnamed = sorted(set(labels.tolist()) - set(name_of))
        if unnamed:
            raise HarnessError(f"{label}: labels {unnamed[:5]} have no name in 'catname2label'")
        splits[split] = grouped_by_name(images, [name_of[v] for v in labels.tolist()])
    return splits, []


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    with reading(path):
        with open(path, newline="") as file:
            rows = list(csv.reader(file))
    if not rows or [cell.strip() for cell in rows[0]] != ["filename", "label"]:
        raise HarnessError(f"{path}: expected the header filename,label")
    bad = next((i for i, row in enumerate(rows[1:], 2) if len(row) != 2), None)
    if bad is not None:
        raise HarnessError(f"{path}:{bad}: expected two fields, filename and label")
    return [(filename.strip(), label.strip()) for filename, label in rows[1:]]


def _jpeg_path(folder: Path, filename: str, label: str, csv_name: str) -> Path:
    for path in (folder / "images" / filename, folder / "images" / label / filename):
        if path.is_file():
            return path
    raise HarnessError(f"{folder / 'images' / filename}: missing (named by {csv_name})")


def _read_jpeg(path: Path) -> np.ndarray:
    with reading(path):
        data = path.read_bytes()
    return decode_image(data, path, SIZE, resize=True)


def _read_mini_jpegs(dataset, folder: Path, out_dir: Path):
    splits = {}
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # PIL decodes and resizes without the GIL
        for split, file in MINI_CSV.items():
            rows = _csv_rows(folder / file)
            paths = [_jpeg_path(folder, filename, label, file) for filename, label in rows]
            images = list(pool.map(_read_jpeg, paths))
            stacked = np.stack(images) if images else np.zeros((0, SIZE, SIZE, 3), np.uint8)
            splits[split] = grouped_by_name(stacked, [label for _, label in rows])
    return splits, ["JPEGs converted to RGB and resized to 84x84 (PIL Lanczos) where not 84x84 already"]


# -- tiered-ImageNet ----------------------------------------------------------------------


def tiered_readers() -> tuple:
    return (Reader("tiered-png-pickles", "a folder with {train,val,test}_images_png.pkl and "
                   "{train,val,test}_labels.pkl", folder_with({**TIERED_IMAGES, **TIERED_LABELS}),
                   _read_tiered, order="by label (class order below), then source order"),)


def _tiered_labels(path: Path) -> tuple[np.ndarray, list]:
    """(label per image in [0, classes), class names) from a `<split>_labels.pkl`."""
    meta = load_pickle(path, path)
    require_keys(meta, ["label_specific"], path)
    with reading(path):
        specific = np.asarray(meta["label_specific"]).reshape(-1)
    specific = as_labels(specific, len(specific), path, "label_specific")
    ids, labels = np.unique(specific, return_inverse=True)
    names = meta.get("label_specific_str")
    if names is not None and len(names) > (ids.max() if ids.size else -1):
        return labels.reshape(-1), [str(names[i]) for i in ids]
    return labels.reshape(-1), [f"class_{i:03d}" for i in ids]


def _read_tiered(dataset, folder: Path, out_dir: Path):
    """Stream each split's PNGs into a memory-mapped .npy (`numpy.lib.format.open_memmap`).

    Peak memory is one split's pickled PNG list (about the size of its .pkl file, smaller
    than the decoded output) plus one decoded image: each image is decoded and written
    straight into the mapped output, whose pages the OS writes back to disk, and its PNG is
    released right after. Never is the decoded split (9.5 GB for train) held in memory; the
    hashes and statistics are then computed over the file in 16 MB chunks.
    """
    splits = {}
    for split in SPLITS:
        labels, names = _tiered_labels(folder / TIERED_LABELS[split])
        path = folder / TIERED_IMAGES[split]
        encoded = load_pickle(path, path)
        if not isinstance(encoded, (list, np.ndarray)) or len(encoded) != len(labels):
            found = f"{len(encoded)} images" if isinstance(encoded, (list, np.ndarray)) else type(encoded).__name__
            raise HarnessError(f"{path}: expected a list of {len(labels)} PNG images "
                               f"(one per label of {TIERED_LABELS[split]}), found {found}")
        if isinstance(encoded, np.ndarray) and encoded.dtype != object:
            raise HarnessError(f"{path}: expected a list of PNG-encoded images, found a {encoded.dtype} array {encoded.shape}")
        order = np.argsort(labels, kind="stable")
        images_path = array_paths(out_dir, split)[0]
        out = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(len(order), SIZE, SIZE, 3))
        for position, index in enumerate(order):
            out[position] = decode_image(encoded_bytes(encoded[index]), f"{path}[{index}]", SIZE)
            encoded[index] = None
        out.flush()
        del out, encoded
        splits[split] = Split(images=np.load(images_path, mmap_mode="r"), labels=labels[order].astype(np.int64),
                              classes=tuple(names))
    return splits, []
