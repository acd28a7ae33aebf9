"""Multi-task datasets: Multi-MNIST from the shipped MNIST test set, the idx parser, and the
CelebA / Cityscapes readers on tiny files in their exact real formats."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import HarnessError
from harness.multitask.datasets import DATASETS
from harness.multitask.datasets import multi_mnist as mm
from harness.multitask.datasets._idx import parse_idx, read_idx
from harness.multitask.datasets.celeba import ATTRIBUTES

CELEBA = Path(__file__).parents[1] / "data" / "multitask" / "celeba"
SPLITS = ("train", "val", "test")


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_registry_lists_without_importing_torch():
    code = ("import sys; from harness.multitask.datasets import DATASETS; from harness.multitask.models import MODELS; "
            "import harness.multitask.config; "
            "assert DATASETS.names() == ['celeba', 'cityscapes', 'multi_mnist'], DATASETS.names(); "
            "assert MODELS.names() == ['multilenet', 'resnet18_celeba', 'resnet50_dilated_deeplab']; "
            "DATASETS.get('multi_mnist'); DATASETS.get('celeba'); DATASETS.get('cityscapes'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- idx + MNIST

def test_idx_parser_reads_the_shipped_mnist_test_set():
    images = read_idx(Path(str(mm.ASSETS)) / mm.IMAGES)
    labels = read_idx(Path(str(mm.ASSETS)) / mm.LABELS)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0 and labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_idx_parser_types_and_errors(tmp_path):
    values = np.arange(6, dtype=">i4").reshape(2, 3)
    raw = bytes([0, 0, 0x0C, 2]) + np.array([2, 3], ">u4").tobytes() + values.tobytes()
    assert parse_idx(raw).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(HarnessError, match="truncated") as error:
        parse_idx(raw[:-1], "x.idx")
    assert one_line(error).startswith("x.idx:")
    with pytest.raises(HarnessError, match="not an idx file"):
        parse_idx(b"\x01\x02\x08\x01", "y.idx")
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(raw)[:-5])
    with pytest.raises(HarnessError, match="broken.gz") as error:
        read_idx(path)
    one_line(error)
    with pytest.raises(HarnessError, match="missing"):
        read_idx(tmp_path / "absent.gz")


# ---------------------------------------------------------------- Multi-MNIST

def test_canvas_geometry_on_hand_made_digits():
    left = np.zeros((1, 28, 28), np.uint8)
    right = np.zeros((1, 28, 28), np.uint8)
    left[0, :, :] = 100
    right[0, :, :] = 50
    right[0, 0:10, 0:10] = 200  # lands at canvas [6:16, 6:16], inside the overlap
    canvas = mm.canvas(left, right)[0]
    assert canvas.shape == (36, 36)
    assert (canvas[0:6, 0:28] == 100).all() and (canvas[0:28, 0:6] == 100).all()  # left only
    assert (canvas[28:34, 6:34] == 50).all() and (canvas[6:34, 28:34] == 50).all()  # right only
    assert (canvas[6:16, 6:16] == 200).all()  # max: right wins
    assert (canvas[16:28, 16:28] == 100).all()  # max: left wins over 50
    assert (canvas[34:, :] == 0).all() and (canvas[:, 34:] == 0).all()
    assert (canvas[0:6, 28:] == 0).all() and (canvas[28:, 0:6] == 0).all()
    # the resize is PIL's nearest neighbour, as the official code
    pil = np.asarray(Image.fromarray(canvas).resize((28, 28), Image.NEAREST))
    assert (mm.compose(left, right)[0] == pil).all()
    random = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for composed, image in zip(mm.compose(random, random[::-1]), mm.canvas(random, random[::-1])):
        assert (composed == np.asarray(Image.fromarray(image).resize((28, 28), Image.NEAREST))).all()


def test_split_is_fixed_disjoint_and_right_digits_stay_in_their_split():
    first, again = mm.split_indices(), mm.split_indices()
    members = {}
    for split in SPLITS:
        left, right = first[split]
        assert (left == again[split][0]).all() and (right == again[split][1]).all()
        assert len(left) == {"train": 8000, "val": 1000, "test": 1000}[split] == len(set(left.tolist()))
        assert set(right.tolist()) <= set(left.tolist())
        members[split] = set(left.tolist())
    assert not members["train"] & members["val"] and not members["train"] & members["test"]
    assert not members["val"] & members["test"]
    assert members["train"] | members["val"] | members["test"] == set(range(10000))


def test_built_images_and_labels_match_their_sources_and_are_pinned():
    images, labels = mm.read_mnist()
    dataset = DATASETS.get("multi_mnist")
    pinned = {"train": "956baebca6defee0", "val": "31450fc49a0d15c3", "test": "6ece80a800d952f9"}
    for split in SPLITS:
        data = dataset.load(split)
        left, right = mm.split_indices()[split]
        assert data.inputs.shape == (len(left), 28, 28, 1) and data.inputs.dtype == np.uint8
        assert (data.targets["left"] == labels[left]).all() and (data.targets["right"] == labels[right]).all()
        assert (data.inputs[:50, ..., 0] == mm.compose(images[left[:50]], images[right[:50]])).all()
        assert hashlib.sha256(data.inputs.tobytes()).hexdigest()[:16] == pinned[split]
    assert dataset.fingerprint() == mm._fingerprint() and len(dataset.fingerprint()) == 16
    assert "OK" in dataset.verify()


# ---------------------------------------------------------------- CelebA

@pytest.fixture
def celeba(monkeypatch):
    dataset = DATASETS.get("celeba")
    monkeypatch.setattr(dataset, "counts", {"train": 4, "val": 2, "test": 2})
    return dataset


def copy_celeba(tmp_path, flat=False) -> Path:
    folder = tmp_path / "celeba-src"
    if not flat:
        shutil.copytree(CELEBA, folder)
        return folder
    folder.mkdir()
    shutil.copy(CELEBA / "Anno" / "list_attr_celeba.txt", folder)
    shutil.copy(CELEBA / "Eval" / "list_eval_partition.txt", folder)
    shutil.copytree(CELEBA / "Img" / "img_align_celeba", folder / "img_align_celeba")
    return folder


def test_celeba_prepares_from_the_official_layout(celeba, tmp_path):
    root = tmp_path / "root"
    manifest = celeba.prepare(CELEBA, root)
    assert [manifest["splits"][s]["count"] for s in SPLITS] == [4, 2, 2]
    lines = (CELEBA / "Anno" / "list_attr_celeba.txt").read_text().splitlines()[2:]
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines}
    partition = dict(line.split() for line in (CELEBA / "Eval" / "list_eval_partition.txt").read_text().splitlines())
    for index, split in enumerate(SPLITS):
        data = celeba.load(split, root)
        names = sorted(name for name, p in partition.items() if p == str(index))
        assert data.inputs.shape == (len(names), 64, 64, 3) and data.inputs.dtype == np.uint8
        for row, name in enumerate(names):
            with Image.open(CELEBA / "Img" / "img_align_celeba" / name) as image:
                expected = np.asarray(image.convert("RGB").resize((64, 64), Image.NEAREST))
            assert (data.inputs[row] == expected).all()
            attributes = [int(data.targets[a][row]) for a in ATTRIBUTES]
            assert attributes == [1 if v == 1 else 0 for v in rows[name]]
    assert list(data.targets) == list(ATTRIBUTES)
    assert celeba.require_prepared(root) == root / "celeba"
    assert "OK" in celeba.verify(root)
    # the flat layout gives the same arrays
    same = celeba.prepare(copy_celeba(tmp_path, flat=True), tmp_path / "root2")
    assert same["splits"] == manifest["splits"]


def test_celeba_needs_preparing_first(tmp_path):
    with pytest.raises(HarnessError, match="harness data prepare celeba") as error:
        DATASETS.get("celeba").load("train", tmp_path)
    one_line(error)


def rewrite(path: Path, line: int, text: str | None) -> None:
    lines = path.read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


ATTR = "list_attr_celeba.txt"
PART = "list_eval_partition.txt"


def _attr_line(path, n):
    return path.read_text().splitlines()[n - 1]


@pytest.mark.parametrize("case, expected", [
    ("header", r"list_attr_celeba.txt:1: expected the number of images"),
    ("names", r"list_attr_celeba.txt:2: expected CelebA's 40 attribute names"),
    ("columns", r"list_attr_celeba.txt:5: expected a file name and 40 values, found 40 columns"),
    ("value", r"list_attr_celeba.txt:4: attribute value '0' is not -1 or 1"),
    ("count", r"list_attr_celeba.txt:1: the header says 9 images, the file lists 8"),
    ("duplicate", r"list_attr_celeba.txt:4: 000001.jpg is listed twice"),
    ("partition", r"list_eval_partition.txt:3: partition '3' is not 0, 1 or 2"),
    ("partition_columns", r"list_eval_partition.txt:2: expected '<file name> <partition>'"),
    ("mismatch", r"list_eval_partition.txt: the image lists differ \(1 missing, 0 extra\): 000008.jpg"),
    ("extra", r"list_eval_partition.txt: the image lists differ \(0 missing, 1 extra\): it lists 000009.jpg"),
    ("image", r"img_align_celeba/000003.jpg: missing"),
    ("corrupt", r"img_align_celeba/000002.jpg: cannot read"),
    ("no_images", r"no image folder"),
    ("counts", r"train: 4 images, expected 5"),
])
def test_celeba_bad_files_are_one_line_errors(case, expected, celeba, tmp_path, monkeypatch):
    src = copy_celeba(tmp_path, flat=True)
    attr, part, images = src / ATTR, src / PART, src / "img_align_celeba"
    if case == "header":
        rewrite(attr, 1, "eight")
    elif case == "names":
        rewrite(attr, 2, " ".join(ATTRIBUTES[:39]))
    elif case == "columns":
        rewrite(attr, 5, " ".join(_attr_line(attr, 5).split()[:-1]))
    elif case == "value":
        fields = _attr_line(attr, 4).split()
        rewrite(attr, 4, " ".join([fields[0], "0"] + fields[2:]))
    elif case == "count":
        rewrite(attr, 1, "9")
    elif case == "duplicate":
        rewrite(attr, 4, _attr_line(attr, 3))
    elif case == "partition":
        rewrite(part, 3, "000003.jpg 3")
    elif case == "partition_columns":
        rewrite(part, 2, "000002.jpg 0 1")
    elif case == "mismatch":
        rewrite(part, 8, None)
    elif case == "extra":
        part.write_text(part.read_text() + "000009.jpg 2\n")
    elif case == "image":
        (images / "000003.jpg").unlink()
    elif case == "corrupt":
        (images / "000002.jpg").write_bytes((images / "000002.jpg").read_bytes()[:300])
    elif case == "no_images":
        shutil.rmtree(images)
    elif case == "counts":
        monkeypatch.setattr(celeba, "counts", {"train": 5, "val": 2, "test": 2})
    root = tmp_path / "root"
    with pytest.raises(HarnessError, match=expected) as error:
        celeba.prepare(src, root)
    one_line(error)
    assert not root.exists() or not any(root.iterdir())  # nothing left behind


def test_celeba_not_a_celeba_folder(celeba, tmp_path):
    with pytest.raises(HarnessError, match="not a CelebA folder") as error:
        celeba.prepare(tmp_path, tmp_path / "root")
    one_line(error)


# ---------------------------------------------------------------- Cityscapes

@pytest.fixture
def cityscapes(monkeypatch):
    dataset = DATASETS.get("cityscapes")
    monkeypatch.setattr(dataset, "counts", {"train": 4, "val": 1, "test": 2})
    return dataset


def write_cityscapes(folder: Path, sizes=(("train", 5), ("val", 2)), seed=0) -> dict:
    """The preprocessed release's layout: float32 image (128,256,3), label_7 (128,256) float with -1,
    depth (128,256,1) float32 with zeros where unmeasured."""
    rng = np.random.default_rng(seed)
    written = {}
    for part, count in sizes:
        for sub in ("image", "label_7", "depth"):
            (folder / part / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.random((128, 256, 3), dtype=np.float32)
            label = rng.integers(-1, 7, (128, 256)).astype(np.float32)
            depth = (rng.random((128, 256, 1), dtype=np.float32) * 80) * (rng.random((128, 256, 1)) > 0.2)
            np.save(folder / part / "image" / f"{i}.npy", image)
            np.save(folder / part / "label_7" / f"{i}.npy", label)
            np.save(folder / part / "depth" / f"{i}.npy", depth.astype(np.float32))
            written[(part, i)] = (image, label, depth[..., 0])
    return written


def test_cityscapes_prepares_the_npy_release(cityscapes, tmp_path):
    written = write_cityscapes(tmp_path / "src")
    root = tmp_path / "root"
    manifest = cityscapes.prepare(tmp_path / "src", root)
    assert [manifest["splits"][s]["count"] for s in SPLITS] == [4, 1, 2]
    sources = {"train": [("train", i) for i in range(4)], "val": [("train", 4)], "test": [("val", 0), ("val", 1)]}
    for split in SPLITS:
        data = cityscapes.load(split, root)
        assert data.inputs.dtype == np.float32 and data.inputs.shape[1:] == (128, 256, 3)
        assert data.targets["segmentation"].dtype == np.int8 and data.targets["depth"].dtype == np.float32
        for row, key in enumerate(sources[split]):
            image, label, depth = written[key]
            assert (data.inputs[row] == image).all()
            assert (data.targets["segmentation"][row] == label).all()
            assert (data.targets["depth"][row] == depth).all()
    assert "OK" in cityscapes.verify(root)


@pytest.mark.parametrize("case, expected", [
    ("gap", r"val/depth: expected files 0.npy .. 1.npy, 1.npy is missing"),
    ("stray", r"train/image: expected files 0.npy .. 5.npy, found x.npy"),
    ("counts", r"image/, label_7/ and depth/ hold different numbers of files \(image 6, label_7 5, depth 5\)"),
    ("shape", r"train/image/2.npy: float32 \(64, 256, 3\), expected numbers of shape \(128, 256, 3\)"),
    ("fraction", r"train/label_7/1.npy: labels must be integers in \[-1, 6\]"),
    ("range", r"val/label_7/0.npy: labels must be integers in \[-1, 6\], found values in \[-1, 7\]"),
    ("nan", r"train/image/3.npy: holds NaN"),
    ("negative", r"train/depth/0.npy: negative depth"),
    ("truncated", r"train/depth/4.npy: cannot read"),
    ("pickle", r"val/image/1.npy: cannot read"),
    ("missing_folder", r"val/depth: missing"),
    ("not_release", r"not the preprocessed release"),
    ("facts", r"train: 4 images, expected 3"),
])
def test_cityscapes_bad_files_are_one_line_errors(case, expected, cityscapes, tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_cityscapes(src)
    if case == "gap":
        (src / "val" / "depth" / "1.npy").rename(src / "val" / "depth" / "2.npy")
    elif case == "stray":
        np.save(src / "train" / "image" / "x.npy", np.zeros(1))
    elif case == "counts":
        np.save(src / "train" / "image" / "5.npy", np.zeros((128, 256, 3), np.float32))
    elif case == "shape":
        np.save(src / "train" / "image" / "2.npy", np.zeros((64, 256, 3), np.float32))
    elif case == "fraction":
        np.save(src / "train" / "label_7" / "1.npy", np.full((128, 256), 0.5, np.float32))
    elif case == "range":
        label = np.zeros((128, 256), np.float32)
        label[0, 0], label[0, 1] = 7, -1
        np.save(src / "val" / "label_7" / "0.npy", label)
    elif case == "nan":
        image = np.zeros((128, 256, 3), np.float32)
        image[5, 5, 1] = np.nan
        np.save(src / "train" / "image" / "3.npy", image)
    elif case == "negative":
        np.save(src / "train" / "depth" / "0.npy", np.full((128, 256, 1), -1.0, np.float32))
    elif case == "truncated":
        path = src / "train" / "depth" / "4.npy"
        path.write_bytes(path.read_bytes()[:1000])
    elif case == "pickle":
        np.save(src / "val" / "image" / "1.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "missing_folder":
        shutil.rmtree(src / "val" / "depth")
    elif case == "not_release":
        shutil.rmtree(src / "val")
    elif case == "facts":
        monkeypatch.setattr(cityscapes, "counts", {"train": 3, "val": 1, "test": 2})
    root = tmp_path / "root"
    with pytest.raises(HarnessError, match=expected) as error:
        cityscapes.prepare(src, root)
    one_line(error)
    assert not (root / "cityscapes").exists()
    assert not root.exists() or not any(root.iterdir())
