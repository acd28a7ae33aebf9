"""mini- and tiered-ImageNet readers on tiny files in the exact real layouts (a few classes of
a few 84x84 images), with the facts overridden to match the tiny sizes."""
from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from test_data_helpers import assert_nothing_written, png_bytes, raises_one_line, same_splits, write_py2_pickle

from harness import data
from harness.fewshot.datasets import DATASETS

SPLITS = ("train", "val", "test")
WNIDS = {"train": ["n01532829", "n01558993", "n01704323"], "val": ["n01855672", "n02091244"],
         "test": ["n01930112", "n01981276"]}
PER_CLASS = 4


@pytest.fixture(scope="module")
def source():
    """Per split: images (N, 84, 84, 3) and each one's wnid, classes interleaved as in real files."""
    rng = np.random.default_rng(0)
    out = {}
    for split, wnids in WNIDS.items():
        names = np.array([wnid for _ in range(PER_CLASS) for wnid in wnids])
        out[split] = (rng.integers(0, 256, (len(names), 84, 84, 3), dtype=np.uint8), names)
    return out


@pytest.fixture
def mini(monkeypatch):
    dataset = DATASETS.get("mini_imagenet")
    facts = replace(dataset.facts, classes={s: len(w) for s, w in WNIDS.items()}, per_class=PER_CLASS,
                    mean_tolerance=1.0)
    monkeypatch.setattr(dataset, "facts", facts)
    return dataset


def check_against_source(splits, source):
    for split in SPLITS:
        images, names = source[split]
        got = splits[split]
        assert got.classes == tuple(sorted(WNIDS[split]))  # label order: sorted wnids
        for label, wnid in enumerate(got.classes):
            ours = sorted(image.tobytes() for image in got.images[got.labels == label])
            assert ours == sorted(image.tobytes() for image in images[names == wnid])


def write_cache(folder, source):
    folder.mkdir(exist_ok=True)
    for split, file in zip(SPLITS, ("train", "validation", "test")):
        images, names = source[split]
        class_dict = {wnid: np.flatnonzero(names == wnid).tolist() for wnid in WNIDS[split]}
        write_py2_pickle(folder / f"mini-imagenet-cache-{file}.pkl", {"image_data": images, "class_dict": class_dict})
    return folder


def test_mini_cache_pickles_prepare_and_verify(mini, source, tmp_path):
    root = tmp_path / "root"
    manifest = data.prepare("mini_imagenet", write_cache(tmp_path / "src", source), root)
    assert manifest["source"]["kind"] == "mini-imagenet-cache"
    assert [manifest["splits"][s]["counts"] for s in SPLITS] == [[4, 4, 4], [4, 4], [4, 4]]
    assert "mini_imagenet in" in data.verify("mini_imagenet", root)
    check_against_source({s: mini.load(s, root) for s in SPLITS}, source)


def test_mini_metaoptnet_pickles_give_the_same_arrays_as_the_cache(mini, source, tmp_path):
    _, from_cache, _ = mini.build(write_cache(tmp_path / "cache", source), tmp_path)
    folder = tmp_path / "metaoptnet"
    folder.mkdir()
    first = 0
    for split, file in zip(SPLITS, ("train_phase_train", "val", "test")):
        images, names = source[split]
        catname2label = {wnid: first + i for i, wnid in enumerate(WNIDS[split])}  # ids run on across splits
        first += len(WNIDS[split])
        order = np.random.default_rng(1).permutation(len(names))
        write_py2_pickle(folder / f"miniImageNet_category_split_{file}.pickle",
                         {"data": images[order], "labels": [catname2label[n] for n in names[order]],
                          "catname2label": catname2label})
    kind, splits, _ = mini.build(folder, tmp_path)
    assert kind == "metaoptnet-pickles"
    same_splits(splits, from_cache)


def test_mini_jpegs_with_split_csvs_are_read_and_resized(mini, tmp_path):
    """Flat-colour JPEGs (which JPEG keeps nearly exact), some 84x84, some larger, some in class folders."""
    folder = tmp_path / "mini"
    (folder / "images").mkdir(parents=True)
    colours = {}
    for split in SPLITS:
        with open(folder / f"{split}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["filename", "label"])
            for i, wnid in enumerate(w for w in WNIDS[split] for _ in range(PER_CLASS)):
                filename = f"{wnid}{i:08d}.jpg"
                colour = tuple(int(v) for v in np.random.default_rng(len(colours)).integers(20, 236, 3))
                colours.setdefault((split, wnid), []).append(colour)
                size = (84, 84) if i % 2 else (120, 100)
                target = folder / "images" / (filename if i % 3 else f"{wnid}/{filename}")
                target.parent.mkdir(exist_ok=True)
                Image.new("RGB", size, colour).save(target, quality=95)
                writer.writerow([filename, wnid])
    kind, splits, notes = mini.build(folder, tmp_path)
    assert kind == "jpeg-csv" and "resized to 84x84" in notes[0]
    for split in SPLITS:
        got = splits[split]
        assert got.classes == tuple(sorted(WNIDS[split])) and got.images.shape[1:] == (84, 84, 3)
        for label, wnid in enumerate(got.classes):
            means = sorted(tuple(image.reshape(-1, 3).mean(0)) for image in got.images[got.labels == label])
            assert np.allclose(means, sorted(colours[(split, wnid)]), atol=3)


def test_mini_jpeg_csv_naming_a_missing_image_fails_in_one_line(mini, tmp_path):
    folder = tmp_path / "mini"
    (folder / "images").mkdir(parents=True)
    for split in SPLITS:
        (folder / f"{split}.csv").write_text("filename,label\nn0153282900000001.jpg,n01532829\n")
    raises_one_line(lambda: data.prepare("mini_imagenet", folder, tmp_path / "root"),
                    "images/n0153282900000001.jpg: missing (named by train.csv)")
    assert_nothing_written(tmp_path / "root")


def test_mini_against_the_real_facts_fails_in_one_line(source, tmp_path):
    raises_one_line(lambda: data.prepare("mini_imagenet", write_cache(tmp_path / "src", source), tmp_path / "root"),
                    "train: 3 classes, expected 64", "train: 3 of 3 classes do not have 600 images",
                    "val: 2 classes, expected 16")
    assert_nothing_written(tmp_path / "root")


# -- tiered-ImageNet ----------------------------------------------------------------------

TIERED_COUNTS = {"train": [3, 5, 2], "val": [2, 3], "test": [4, 1]}


@pytest.fixture(scope="module")
def tiered_source(tmp_path_factory):
    """The real file pair per split: PNG bytes as uint8 arrays (what cv2.imencode gives) and a labels dict."""
    folder = tmp_path_factory.mktemp("tiered")
    rng = np.random.default_rng(2)
    expected = {}
    for split, counts in TIERED_COUNTS.items():
        labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        images = rng.integers(0, 256, (len(labels), 84, 84, 3), dtype=np.uint8)
        names = [f"n0{split}{i:04d}" for i in range(len(counts))]
        write_py2_pickle(folder / f"{split}_images_png.pkl", [np.frombuffer(png_bytes(im), np.uint8) for im in images])
        write_py2_pickle(folder / f"{split}_labels.pkl", {
            "label_specific": labels, "label_general": labels // 2,
            "label_specific_str": names, "label_general_str": ["a", "b", "c"]})
        expected[split] = (images, labels, names)
    return folder, expected


@pytest.fixture
def tiered(monkeypatch):
    dataset = DATASETS.get("tiered_imagenet")
    facts = replace(dataset.facts, classes={s: len(c) for s, c in TIERED_COUNTS.items()},
                    totals={s: sum(c) for s, c in TIERED_COUNTS.items()}, mean_tolerance=1.0)
    monkeypatch.setattr(dataset, "facts", facts)
    return dataset


def test_tiered_png_pickles_prepare_and_verify(tiered, tiered_source, tmp_path):
    folder, expected = tiered_source
    root = tmp_path / "root"
    manifest = data.prepare("tiered_imagenet", folder / "train_labels.pkl", root)
    assert manifest["source"] == {"kind": "tiered-png-pickles", "path": str(folder)}
    assert "tiered_imagenet in" in data.verify("tiered_imagenet", root)
    for split in SPLITS:
        images, labels, names = expected[split]
        got = tiered.load(split, root)
        assert got.classes == tuple(names) and manifest["splits"][split]["counts"] == TIERED_COUNTS[split]
        for label in range(len(names)):  # grouped by class, source order kept within a class
            assert np.array_equal(got.images[got.labels == label], images[labels == label])


def test_tiered_streams_into_memory_mapped_files(tiered, tiered_source, tmp_path):
    _, splits, _ = tiered.build(tiered_source[0], tmp_path)
    for split in SPLITS:
        assert isinstance(splits[split].images, np.memmap)
        assert str(splits[split].images.filename) == str(tmp_path / f"{split}_images.npy")


def test_tiered_images_and_labels_that_disagree_fail_in_one_line(tiered, tiered_source, tmp_path):
    folder = tmp_path / "tiered"
    folder.mkdir()
    for path in tiered_source[0].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    write_py2_pickle(folder / "val_images_png.pkl", [np.frombuffer(png_bytes(np.zeros((84, 84, 3), np.uint8)), np.uint8)])
    raises_one_line(lambda: data.prepare("tiered_imagenet", folder, tmp_path / "root"),
                    "val_images_png.pkl: expected a list of 5 PNG images (one per label of val_labels.pkl), found 1 images")
    assert_nothing_written(tmp_path / "root")


def test_tiered_against_the_real_totals_fails_in_one_line(tiered_source, tmp_path):
    raises_one_line(lambda: data.prepare("tiered_imagenet", tiered_source[0], tmp_path / "root"),
                    "train: 3 classes, expected 351", "train: 10 images, expected 448,695")
    assert_nothing_written(tmp_path / "root")
