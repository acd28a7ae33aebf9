"""CIFAR-100 sources shared by cifar_fs and fc100, which use ALL 600 images (official train
and test) of each of their classes.

Accepted forms:
- the official `cifar-100-python` folder (meta, train, test) or `cifar-100-python.tar.gz`;
- MetaOptNet's `<PREFIX>_{train,val,test}.pickle`: dict, 'data' (N, 32, 32, 3) uint8 and
  'labels' = CIFAR-100 fine label ids;
- learn2learn's `cifar100.zip` (Bertinetto's release): `cifar100/data/<class>/<image>.png`,
  one folder of 32x32 PNGs per CIFAR-100 class named by its fine label name; a PNG's class
  is its folder's name, other files (the split .txt lists) are ignored.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath

import numpy as np

from harness import HarnessError
from harness.fewshot.datasets._files import (
    as_images,
    as_labels,
    decode_image,
    folder_with,
    load_pickle,
    reading,
    require_keys,
    select_classes,
)
from harness.fewshot.datasets._layout import SPLITS, Facts, PreparedDataset, Reader

SPLIT_LISTS = resources.files("harness") / "assets" / "splits"
ARCHIVE = "cifar-100-python.tar.gz"
PARTS = ("meta", "train", "test")
# md5 sums of the official files (www.cs.toronto.edu/~kriz, as torchvision lists them)
OFFICIAL_MD5 = {
    ARCHIVE: "eb9058c3a382ffc7106e4002c42a8d85",
    "meta": "7973b15100ade9c7d40fb424638fde48",
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
}
MEAN = (0.5071, 0.4867, 0.4408)
STD = (0.2675, 0.2565, 0.2761)


def _split_list(folder: str, split: str) -> list:
    return json.loads((SPLIT_LISTS / folder / f"{split}.json").read_text())


# The CIFAR-FS lists name all 100 classes once with their superclasses. CIFAR-100's fine
# label ids are the alphabetical order of the class names (the official meta agrees).
SUPERCLASS = {name: superclass for split in SPLITS for superclass, name in _split_list("cifar-fs", split)}
FINE_NAMES = tuple(sorted(SUPERCLASS))


def cifar_fs_classes() -> dict:
    return {split: tuple(name for _, name in _split_list("cifar-fs", split)) for split in SPLITS}


def fc100_classes() -> dict:
    """Per split, the classes of its superclasses: superclass list order, then by name."""
    return {split: tuple(name for superclass in _split_list("fc100", split)
                         for name in sorted(n for n, s in SUPERCLASS.items() if s == superclass))
            for split in SPLITS}


class CifarDataset(PreparedDataset):
    crop_padding = 4
    source_hint = "PATH/TO/cifar-100-python.tar.gz"

    @staticmethod
    def cifar_facts(classes: dict, reference_sha256: dict) -> Facts:
        return Facts(classes=classes, per_class=600, image_size=32, channels=3, mean=MEAN, std=STD,
                     reference_sha256=reference_sha256)


def cifar_readers(prefix: str) -> tuple:
    return (
        Reader("cifar-100-python", f"the official cifar-100-python folder (meta, train, test) or {ARCHIVE}",
               _locate_official, _read_official),
        Reader("metaoptnet-pickles", f"a folder with MetaOptNet's {prefix}_{{train,val,test}}.pickle",
               *_metaoptnet(prefix)),
        Reader("learn2learn-zip", "learn2learn's cifar100.zip (cifar100/data/<class>/<image>.png)",
               _locate_zip, _read_zip),
    )


def _in_range(labels: np.ndarray, count: int, label, key: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= count):
        raise HarnessError(f"{label}: '{key}' outside [0, {count})")
    return labels


# -- the official files ----------------------------------------------------------------


def _locate_official(path: Path):
    if path.is_file():
        return path if path.name.endswith((".tar.gz", ".tgz")) else None
    for folder in (path, path / "cifar-100-python"):
        if any((folder / part).is_file() for part in PARTS):
            return folder
    return path / ARCHIVE if (path / ARCHIVE).is_file() else None


def _official_parts(located: Path) -> tuple[dict, list]:
    """{part: (label, bytes)} from the folder or the archive, and notes on their md5 sums."""
    if located.is_dir():
        parts = {}
        for part in PARTS:
            with reading(located / part):
                parts[part] = (located / part, (located / part).read_bytes())
        return parts, [_md5_note(part, hashlib.md5(data).hexdigest()) for part, (_, data) in parts.items()]
    parts = {}
    with reading(located):
        with tarfile.open(located, "r|*") as archive:  # one sequential pass through the stream
            for member in archive:
                part = PurePosixPath(member.name).name
                if member.isfile() and part in PARTS and part not in parts:
                    parts[part] = (f"{located}:{member.name}", archive.extractfile(member).read())
        digest = hashlib.md5()
        with open(located, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        md5 = digest.hexdigest()
    lacking = [part for part in PARTS if part not in parts]
    if lacking:
        raise HarnessError(f"{located}: lacks cifar-100-python/{', '.join(lacking)}")
    return parts, [_md5_note(ARCHIVE, md5)]


def _md5_note(name: str, md5: str) -> str:
    if md5 == OFFICIAL_MD5[name]:
        return f"md5 of {name} matches the official file"
    return f"md5 of {name} is {md5}, not the official {OFFICIAL_MD5[name]}: content checked instead"


def _read_official(dataset, located: Path, out_dir: Path):
    parts, notes = _official_parts(located)
    meta_label, meta_bytes = parts["meta"]
    meta = load_pickle(io.BytesIO(meta_bytes), meta_label)
    require_keys(meta, ["fine_label_names"], meta_label)
    fine_names = np.asarray(meta["fine_label_names"])
    images, names = [], []
    for part in ("train", "test"):
        label, raw = parts[part]
        data = load_pickle(io.BytesIO(raw), label)
        require_keys(data, ["data", "fine_labels"], label)
        rows = np.asarray(data["data"])
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3072:
            raise HarnessError(f"{label}: 'data' is {rows.dtype} {rows.shape}, expected uint8 (N, 3072)")
        fine = _in_range(as_labels(data["fine_labels"], len(rows), label, "fine_labels"),
                         len(fine_names), label, "fine_labels")
        images.append(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # R, G, B planes -> HWC
        names.append(fine_names[fine])
    images, names = np.concatenate(images), np.concatenate(names)
    known = set(fine_names.tolist())
    splits = {split: select_classes(images, names, dataset.split_classes[split], known, meta_label,
                                    f"{dataset.name} {split}")
              for split in SPLITS}
    return splits, notes


# -- MetaOptNet's pickles ---------------------------------------------------------------


def _metaoptnet(prefix: str):
    files = {split: f"{prefix}_{split}.pickle" for split in SPLITS}

    def read(dataset, folder: Path, out_dir: Path):
        splits = {}
        for split, file in files.items():
            label = folder / file
            data = load_pickle(label, label)
            require_keys(data, ["data", "labels"], label)
            images = as_images(data["data"], 32, label)
            names = np.asarray(FINE_NAMES)[_in_range(as_labels(data["labels"], len(images), label), 100, label, "labels")]
            wanted = dataset.split_classes[split]
            extra = sorted(set(names.tolist()) - set(wanted))
            if extra:
                raise HarnessError(f"{label}: holds classes the {dataset.name} {split} split list does not name "
                                   f"({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}): "
                                   f"a file of another dataset or split?")
            splits[split] = select_classes(images, names, wanted, set(names.tolist()), label, f"{dataset.name} {split}")
        return splits, ["MetaOptNet pickles: 'labels' read as CIFAR-100 fine label ids"]

    return folder_with(files), read


# -- learn2learn's zip of PNG folders ---------------------------------------------------


def _locate_zip(path: Path):
    if path.is_file():
        return path if path.suffix == ".zip" else None
    return path / "cifar100.zip" if (path / "cifar100.zip").is_file() else None


def _read_zip(dataset, located: Path, out_dir: Path):
    wanted = {name for split in SPLITS for name in dataset.split_classes[split]}
    images, names, known = [], [], set()
    with reading(located), zipfile.ZipFile(located) as archive:
        for member in sorted(archive.namelist()):
            if not member.lower().endswith(".png"):
                continue
            name = PurePosixPath(member).parent.name
            known.add(name)
            if name in wanted:
                images.append(decode_image(archive.read(member), f"{located}:{member}", 32))
                names.append(name)
    if not known:
        raise HarnessError(f"{located}: no PNG images (expected cifar100/data/<class>/<image>.png)")
    images = np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)
    names = np.asarray(names)
    splits = {split: select_classes(images, names, dataset.split_classes[split], known, located,
                                    f"{dataset.name} {split}")
              for split in SPLITS}
    return splits, ["learn2learn zip: class = the PNG's folder name"]
