"""CIFAR-FS and FC100 from the real official files (partial CIFAR-100), and from MetaOptNet
pickles, learn2learn's PNG zip and the .tar.gz written from the same images."""
from __future__ import annotations

import json
import pickle
import shutil
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data_helpers import PARTIAL, assert_nothing_written, png_bytes, raises_one_line, same_splits, write_py2_pickle

from harness import data
from harness.fewshot.datasets import DATASETS
from harness.fewshot.datasets._cifar import FINE_NAMES, SUPERCLASS

SPLIT_LISTS = Path(__file__).parents[2] / "harness" / "assets" / "splits"
PREFIX = {"cifar_fs": "CIFAR_FS", "fc100": "FC100"}


@pytest.fixture(scope="module")
def raw():
    """The partial files read with plain pickle: fine names, images (N, 32, 32, 3), fine and coarse labels."""
    meta = pickle.loads((PARTIAL / "meta").read_bytes(), encoding="latin1")
    parts = [pickle.loads((PARTIAL / part).read_bytes(), encoding="latin1") for part in ("train", "test")]
    images = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    fine = np.concatenate([p["fine_labels"] for p in parts])
    coarse = np.concatenate([p["coarse_labels"] for p in parts])
    return meta, images, fine, coarse


def expected_classes(name: str, raw) -> dict:
    """Each split's classes in label order, straight from the shipped lists and the raw meta."""
    meta, _, fine, coarse = raw
    lists = {split: json.loads((SPLIT_LISTS / name.replace("_", "-") / f"{split}.json").read_text())
             for split in ("train", "val", "test")}
    if name == "cifar_fs":
        return {split: tuple(c for _, c in pairs) for split, pairs in lists.items()}
    superclass_of = {meta["fine_label_names"][f]: meta["coarse_label_names"][c] for f, c in zip(fine, coarse)}
    return {split: tuple(c for s in supers for c in sorted(n for n, t in superclass_of.items() if t == s))
            for split, supers in lists.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both datasets built (no facts check) from the partial official folder."""
    out = tmp_path_factory.mktemp("built")
    return {name: DATASETS.get(name).build(PARTIAL, out) for name in PREFIX}


def test_class_names_and_superclasses_are_those_of_the_official_meta(raw):
    meta, _, fine, coarse = raw
    assert FINE_NAMES == tuple(meta["fine_label_names"])
    for f, c in zip(fine, coarse):
        assert SUPERCLASS[meta["fine_label_names"][f]] == meta["coarse_label_names"][c]


@pytest.mark.parametrize("name, classes", [("cifar_fs", (64, 16, 20)), ("fc100", (60, 20, 20))])
def test_official_files_give_exactly_the_listed_classes_and_all_their_images(name, classes, raw, built):
    meta, images, fine, _ = raw
    kind, splits, notes = built[name]
    assert kind == "cifar-100-python"
    assert "md5 of meta matches the official file" in notes
    expected = expected_classes(name, raw)
    assert tuple(len(expected[s]) for s in ("train", "val", "test")) == classes
    for split, want in expected.items():
        got = splits[split]
        assert got.classes == want
        assert got.images.shape[1:] == (32, 32, 3) and got.labels.dtype == np.int64
        assert np.all(np.diff(got.labels) >= 0)  # grouped by class
        for label, class_name in enumerate(want):
            ours = sorted(image.tobytes() for image in got.images[got.labels == label])
            theirs = sorted(image.tobytes() for image in images[fine == meta["fine_label_names"].index(class_name)])
            assert ours == theirs, (split, class_name)
    assert sum(len(s.labels) for s in splits.values()) == len(images) == 486 + 916  # every image, once


def test_prepare_rejects_the_partial_download_naming_the_short_classes(raw, tmp_path):
    meta, _, fine, _ = raw
    root = tmp_path / "root"
    found = {name: int((fine == meta["fine_label_names"].index(name)).sum()) for name in ("dolphin", "beaver")}
    train_total = sum(int((fine == meta["fine_label_names"].index(c)).sum()) for c in expected_classes("cifar_fs", raw)["train"])
    message = raises_one_line(lambda: data.prepare("cifar_fs", PARTIAL, root),
                              "cifar_fs", "train: 64 of 64 classes do not have 600 images",
                              f"dolphin {found['dolphin']}/600", f"{train_total} of 38,400 images in all",
                              f"val: 16 of 16 classes do not have 600 images (found beaver {found['beaver']}/600",
                              "test: 20 of 20 classes")
    assert str(PARTIAL) in message
    assert_nothing_written(root)


@pytest.mark.parametrize("name", PREFIX)
def test_metaoptnet_pickles_in_any_order_give_identical_arrays(name, built, tmp_path):
    _, official, _ = built[name]
    rng = np.random.default_rng(0)
    for split, part in official.items():
        order = rng.permutation(len(part.labels))  # files keep their own order: the output must not
        fine_ids = [FINE_NAMES.index(part.classes[label]) for label in part.labels[order]]
        write_py2_pickle(tmp_path / f"{PREFIX[name]}_{split}.pickle",
                         {"data": part.images[order], "labels": fine_ids})
    kind, splits, _ = DATASETS.get(name).build(tmp_path / f"{PREFIX[name]}_train.pickle", tmp_path)
    assert kind == "metaoptnet-pickles"
    same_splits(splits, official)


def test_learn2learn_zip_gives_identical_arrays(built, tmp_path):
    _, official, _ = built["cifar_fs"]
    path = tmp_path / "cifar100.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for split, part in official.items():
            archive.writestr(f"cifar100/splits/bertinetto/{split}.txt", "\n".join(part.classes))
            for i, (image, label) in enumerate(zip(part.images, part.labels)):
                class_name = part.classes[label]
                archive.writestr(f"cifar100/data/{class_name}/{class_name}_s_{i:06d}.png", png_bytes(image))
    kind, splits, _ = DATASETS.get("cifar_fs").build(tmp_path, tmp_path)  # the folder holding cifar100.zip
    assert kind == "learn2learn-zip"
    same_splits(splits, official)


def test_official_archive_gives_identical_arrays_and_notes_its_md5(built, tmp_path):
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(PARTIAL, arcname="cifar-100-python")
    kind, splits, notes = DATASETS.get("fc100").build(path, tmp_path)
    assert kind == "cifar-100-python"
    same_splits(splits, built["fc100"][1])
    assert any("not the official eb9058c3a382ffc7106e4002c42a8d85: content checked instead" in n for n in notes)


def test_swapped_colour_channels_are_caught_by_the_mean(built, tmp_path, monkeypatch):
    cifar_fs = DATASETS.get("cifar_fs")
    monkeypatch.setattr(cifar_fs, "facts", replace(cifar_fs.facts, per_class=None))
    for split, part in built["cifar_fs"][1].items():
        fine_ids = [FINE_NAMES.index(part.classes[label]) for label in part.labels]
        write_py2_pickle(tmp_path / f"CIFAR_FS_{split}.pickle", {"data": part.images[..., ::-1], "labels": fine_ids})
    raises_one_line(lambda: cifar_fs.prepare(tmp_path, tmp_path / "root"), "swapped colour channels")
    assert_nothing_written(tmp_path / "root")


def test_partial_prepares_and_verifies_when_only_the_count_is_relaxed(built, tmp_path, monkeypatch):
    fc100 = DATASETS.get("fc100")
    monkeypatch.setattr(fc100, "facts", replace(fc100.facts, per_class=None))
    copy = shutil.copytree(PARTIAL, tmp_path / "cifar-100-python")
    manifest = data.prepare("fc100", tmp_path, tmp_path / "root")  # the folder holding cifar-100-python/
    assert manifest["source"] == {"kind": "cifar-100-python", "path": str(copy)}
    assert [len(manifest["splits"][s]["classes"]) for s in ("train", "val", "test")] == [60, 20, 20]
    assert "fc100 in" in data.verify("fc100", tmp_path / "root")
    same_splits({s: fc100.load(s, tmp_path / "root") for s in ("train", "val", "test")}, built["fc100"][1])
