"""CelebA (Liu et al., ICCV 2015) as 40 binary attribute tasks at 64x64, as in Kurin et al. (2022).

Accepted source: the folder of the official release, holding (directly, or under
``Anno/``, ``Eval/`` and ``Img/`` as in the Google Drive layout)

- ``list_attr_celeba.txt``: line 1 the number of images N, line 2 the 40 attribute
  names, then N lines ``<file name> <40 values of -1 or 1>`` (whitespace separated);
- ``list_eval_partition.txt``: lines ``<file name> <0|1|2>`` (train, val, test);
- ``img_align_celeba/`` with the aligned ``*.jpg`` images (or ``img_align_celeba_png/``
  with the ``*.png`` release, which the official code reads: same names, ``.png``).

Both lists must name the same images, each once, and every image must exist.
Preparing writes ``<split>_images.npy`` (N, 64, 64, 3) uint8 RGB and
``<split>_attributes.npy`` (N, 40) uint8 (1 where the file says 1, 0 where it says -1),
images in file-name order within each split, streamed into memory-mapped files.

Resize: the WHOLE aligned image (178x218) is resized to 64x64 by PIL nearest
neighbour, aspect ratio not kept and nothing cropped, exactly as the official loader
of Sener & Koltun (2018) reused by Kurin et al. Inputs are normalised as there:
(x - mean) / 255 with their per-channel mean (given in BGR order there, because that
loader flips the channels; here the images stay RGB and the mean is reordered, which
for a network trained from scratch is the same up to a permutation of its first layer).

Splits: the official partition, 162,770 / 19,867 / 19,962 images. Each attribute is a
2-class task (log-softmax + NLL per attribute, as the official code).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from harness import HarnessError
from harness.datadir import reading
from harness.multitask.datasets import register
from harness.multitask.datasets._base import SPLITS, MultiTaskDataset, Task, TaskSplit
from harness.multitask.datasets._layout import PreparedMultiTaskDataset, create_array

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
ATTR_FILE, PARTITION_FILE = "list_attr_celeba.txt", "list_eval_partition.txt"
IMAGE_FOLDERS = (("img_align_celeba", ".jpg"), ("img_align_celeba_png", ".png"))
SUBFOLDERS = ("", "Anno", "Eval", "Img", "celeba")
IMAGE_SIZE = 64
MEAN_BGR = (73.15835921, 82.90891754, 72.39239876)  # the official loader's constants (0-255)


def find(root: Path, name: str) -> Path | None:
    for sub in SUBFOLDERS:
        if (root / sub / name).exists():
            return root / sub / name
    return None


def parse_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """(file names, (N, 40) uint8 0/1) from list_attr_celeba.txt; one-line errors with file:line."""
    with reading(path):
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    if not lines or not lines[0].strip().isdigit():
        raise HarnessError(f"{path}:1: expected the number of images, found {lines[0][:40] if lines else 'an empty file'!r}")
    declared = int(lines[0])
    names = lines[1].split() if len(lines) > 1 else []
    if tuple(names) != ATTRIBUTES:
        detail = (f"{len(names)} names" if len(names) != len(ATTRIBUTES) else
                  f"{next(n for n, a in zip(names, ATTRIBUTES) if n != a)!r} where CelebA has "
                  f"{next(a for n, a in zip(names, ATTRIBUTES) if n != a)!r}")
        raise HarnessError(f"{path}:2: expected CelebA's 40 attribute names in order, found {detail}")
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1 + len(ATTRIBUTES):
            raise HarnessError(f"{path}:{number}: expected a file name and 40 values, found {len(fields)} columns")
        values = fields[1:]
        bad = next((v for v in values if v not in ("-1", "1")), None)
        if bad is not None:
            raise HarnessError(f"{path}:{number}: attribute value {bad!r} is not -1 or 1")
        files.append(fields[0])
        rows.append([v == "1" for v in values])
    if len(files) != declared:
        raise HarnessError(f"{path}:1: the header says {declared} images, the file lists {len(files)}")
    _no_duplicates(files, path)
    return files, np.array(rows, dtype=np.uint8).reshape(-1, len(ATTRIBUTES))


def parse_partition(path: Path) -> dict[str, int]:
    """file name -> 0 (train), 1 (val) or 2 (test), from list_eval_partition.txt."""
    with reading(path):
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    out: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise HarnessError(f"{path}:{number}: expected '<file name> <partition>', found {len(fields)} columns")
        if fields[1] not in ("0", "1", "2"):
            raise HarnessError(f"{path}:{number}: partition {fields[1]!r} is not 0, 1 or 2")
        if fields[0] in out:
            raise HarnessError(f"{path}:{number}: {fields[0]} is listed twice")
        out[fields[0]] = int(fields[1])
    return out


def _no_duplicates(files: list[str], path: Path) -> None:
    seen: set[str] = set()
    for number, name in enumerate(files, start=3):
        if name in seen:
            raise HarnessError(f"{path}:{number}: {name} is listed twice")
        seen.add(name)


def decode(path: Path) -> np.ndarray:
    with reading(path):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.NEAREST), dtype=np.uint8)


@register("celeba", version="1", uses={"model": "resnet18_celeba"})
class CelebA(PreparedMultiTaskDataset, MultiTaskDataset):
    name = "celeba"
    tasks = tuple(Task(name, "classification", 2) for name in ATTRIBUTES)
    model = "resnet18_celeba"
    input_kind = "uint8"
    mean, std = tuple(m / 255 for m in reversed(MEAN_BGR)), (1.0, 1.0, 1.0)
    arrays = ("images", "attributes")
    counts = {"train": 162770, "val": 19867, "test": 19962}
    source_hint = "CELEBA_FOLDER"

    @classmethod
    def definition(cls) -> dict:
        return {"name": cls.name, "attributes": ATTRIBUTES, "size": IMAGE_SIZE, "resize": "whole image, PIL nearest",
                "order": "file name", "counts": cls.counts}

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [("celeba-folder", f"a folder with {ATTR_FILE}, {PARTITION_FILE} and img_align_celeba/*.jpg "
                                  "(or img_align_celeba_png/*.png), directly or under Anno/, Eval/, Img/")]

    @classmethod
    def locate(cls, path: Path) -> Path:
        root = path.parent if path.is_file() else path
        if root.name in SUBFOLDERS[1:4] and find(root, ATTR_FILE) is None:
            root = root.parent
        if not root.is_dir() or find(root, ATTR_FILE) is None:
            raise HarnessError(f"celeba: {path}: not a CelebA folder (expected {cls.sources()[0][1]})")
        return root

    @classmethod
    def read(cls, root: Path, out_dir: Path) -> tuple[str, list]:
        files, attributes = parse_attributes(find(root, ATTR_FILE))
        partition_path = find(root, PARTITION_FILE)
        if partition_path is None:
            raise HarnessError(f"celeba: {root}: {PARTITION_FILE} is missing")
        partition = parse_partition(partition_path)
        unlisted = [name for name in files if name not in partition]
        extra = sorted(set(partition) - set(files))
        if unlisted or extra:
            which = (f"{unlisted[0]} is in {ATTR_FILE} but not in it" if unlisted
                     else f"it lists {extra[0]}, which {ATTR_FILE} lacks")
            raise HarnessError(f"{partition_path}: the image lists differ ({len(unlisted)} missing, "
                               f"{len(extra)} extra): {which}")
        folder, suffix = next(((find(root, f), s) for f, s in IMAGE_FOLDERS if find(root, f) is not None), (None, None))
        if folder is None:
            raise HarnessError(f"celeba: {root}: no image folder ({' or '.join(f for f, _ in IMAGE_FOLDERS)})")
        row = {name: i for i, name in enumerate(files)}
        for index, split in enumerate(SPLITS):
            names = sorted(name for name in files if partition[name] == index)
            images = create_array(out_dir, split, "images", np.uint8, (len(names), IMAGE_SIZE, IMAGE_SIZE, 3))
            for i, name in enumerate(names):
                images[i] = decode(folder / (Path(name).stem + suffix))
            images.flush()
            labels = create_array(out_dir, split, "attributes", np.uint8, (len(names), len(ATTRIBUTES)))
            labels[:] = attributes[[row[name] for name in names]]
            labels.flush()
            del images, labels
        return f"celeba-{folder.name}", [f"images from {folder.name}/ ({suffix[1:]})"]

    @classmethod
    def split_from(cls, arrays: dict) -> TaskSplit:
        attributes = arrays["attributes"]
        return TaskSplit(inputs=arrays["images"],
                         targets={name: attributes[:, j] for j, name in enumerate(ATTRIBUTES)})
