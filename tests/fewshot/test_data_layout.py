"""The prepared layout: bad sources rejected in one line with nothing written, atomic writes,
verify catching damage, require_prepared's command, the data root, no torch."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data_helpers import PARTIAL, assert_nothing_written, raises_one_line, write_py2_pickle

import harness.fewshot.datasets._layout as layout
from harness import HarnessError, data
from harness.fewshot.datasets import DATASETS

SPLITS = ("train", "val", "test")
COMMAND = "harness data prepare cifar_fs --source PATH/TO/cifar-100-python.tar.gz"


@pytest.fixture
def relaxed(monkeypatch):
    """cifar_fs without the 600-per-class rule, so the partial CIFAR-100 prepares."""
    cifar_fs = DATASETS.get("cifar_fs")
    monkeypatch.setattr(cifar_fs, "facts", replace(cifar_fs.facts, per_class=None))
    return cifar_fs


@pytest.fixture
def prepared(relaxed, tmp_path):
    root = tmp_path / "root"
    data.prepare("cifar_fs", PARTIAL, root)
    return root


def metaoptnet_folder(folder: Path, **change) -> Path:
    """CIFAR_FS_{split}.pickle with 2 images of each listed class; `change` alters the train file's dict."""
    folder.mkdir(exist_ok=True)
    cifar_fs = DATASETS.get("cifar_fs")
    from harness.fewshot.datasets._cifar import FINE_NAMES
    for split in SPLITS:
        ids = [FINE_NAMES.index(name) for name in cifar_fs.split_classes[split] for _ in range(2)]
        content = {"data": np.zeros((len(ids), 32, 32, 3), np.uint8), "labels": ids}
        if split == "train":
            content.update(change)
            content = {k: v for k, v in content.items() if v is not None}
        write_py2_pickle(folder / f"CIFAR_FS_{split}.pickle", content)
    return folder


def truncated(path: Path, out: Path) -> Path:
    out.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return out


# -- bad sources --------------------------------------------------------------------------

def no_such_path(tmp):
    return tmp / "nowhere", ["no such file or folder"]


def unknown_folder(tmp):
    (tmp / "src").mkdir()
    (tmp / "src" / "readme.txt").write_text("hello")
    return tmp / "src", ["not a source this dataset reads", "cifar-100-python", "CIFAR_FS_{train,val,test}.pickle",
                         "cifar100.zip"]


def missing_file(tmp):
    folder = metaoptnet_folder(tmp / "src")
    (folder / "CIFAR_FS_test.pickle").unlink()
    return folder, ["CIFAR_FS_test.pickle: missing"]


def truncated_pickle(tmp):
    folder = shutil.copytree(PARTIAL, tmp / "src")
    truncated(PARTIAL / "train", folder / "train")
    return folder, [f"{folder / 'train'}: cannot read", "truncated or corrupt"]


def truncated_archive(tmp):
    whole = tmp / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as archive:
        archive.add(PARTIAL, arcname="cifar-100-python")
    return truncated(whole, tmp / "cifar-100-python.tar.gz"), ["cifar-100-python.tar.gz: cannot read"]


def archive_without_test(tmp):
    path = tmp / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for part in ("meta", "train"):
            archive.add(PARTIAL / part, arcname=f"cifar-100-python/{part}")
    return path, ["lacks cifar-100-python/test"]


def corrupt_zip(tmp):
    (tmp / "cifar100.zip").write_bytes(b"PK\x03\x04 this is not really a zip file")
    return tmp / "cifar100.zip", ["cifar100.zip: cannot read"]


def wrong_keys(tmp):
    return metaoptnet_folder(tmp / "src", data=None, images=np.zeros((1, 32, 32, 3), np.uint8)), \
        ["CIFAR_FS_train.pickle: wrong keys: lacks ['data']"]


def wrong_shape(tmp):
    return metaoptnet_folder(tmp / "src", data=np.zeros((128, 28, 28, 3), np.uint8)), \
        ["CIFAR_FS_train.pickle: images are uint8 (128, 28, 28, 3), expected uint8 (N, 32, 32, 3)"]


def wrong_label_count(tmp):
    return metaoptnet_folder(tmp / "src", labels=[0, 1, 2]), ["'labels' must be 128 integers (one per image)"]


def another_datasets_file(tmp):
    folder = metaoptnet_folder(tmp / "src")
    shutil.copy(folder / "CIFAR_FS_val.pickle", folder / "CIFAR_FS_train.pickle")
    return folder, ["CIFAR_FS_train.pickle: holds classes the cifar_fs train split list does not name"]


def too_few_images(tmp):
    return metaoptnet_folder(tmp / "src"), ["train: 64 of 64 classes do not have 600 images (found dolphin 2/600"]


def unsafe_pickle(tmp):
    folder = metaoptnet_folder(tmp / "src")
    (folder / "CIFAR_FS_train.pickle").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    return folder, ["CIFAR_FS_train.pickle: refers to os.system", "refused (unpickling it could run code)"]


@pytest.mark.parametrize("make", [no_such_path, unknown_folder, missing_file, truncated_pickle, truncated_archive,
                                  archive_without_test, corrupt_zip, wrong_keys, wrong_shape, wrong_label_count,
                                  another_datasets_file, too_few_images, unsafe_pickle])
def test_bad_sources_fail_in_one_line_and_write_nothing(make, tmp_path):
    source, fragments = make(tmp_path)
    root = tmp_path / "root"
    raises_one_line(lambda: data.prepare("cifar_fs", source, root), *fragments)
    assert_nothing_written(root)


def test_a_split_list_class_the_source_lacks(monkeypatch, tmp_path):
    cifar_fs = DATASETS.get("cifar_fs")
    lists = dict(cifar_fs.split_classes, val=cifar_fs.split_classes["val"] + ("unicorn",))
    monkeypatch.setattr(cifar_fs, "split_classes", lists)
    raises_one_line(lambda: data.prepare("cifar_fs", PARTIAL, tmp_path / "root"),
                    f"{PARTIAL / 'meta'} has no class 'unicorn' (named by the cifar_fs val split list)")
    assert_nothing_written(tmp_path / "root")


def ctrl_c():
    raise KeyboardInterrupt


def sigterm():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler interrupts this


@pytest.mark.parametrize("stop, raised", [(ctrl_c, KeyboardInterrupt), (sigterm, SystemExit)])
def test_an_interrupted_prepare_leaves_nothing(stop, raised, relaxed, tmp_path, monkeypatch):
    saved, save = [], np.save

    def save_then_stop(*args, **kwargs):  # stop after the first array is written
        if saved:
            stop()
        saved.append(save(*args, **kwargs))

    root = tmp_path / "root"
    root.mkdir()
    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(layout.np, "save", save_then_stop)
    with pytest.raises(raised):
        data.prepare("cifar_fs", PARTIAL, root)
    assert_nothing_written(root)
    assert signal.getsignal(signal.SIGTERM) is handler


# -- prepared layout ----------------------------------------------------------------------

def test_prepare_writes_arrays_and_a_manifest_that_match(prepared):
    folder = prepared / "cifar_fs"
    assert sorted(p.name for p in prepared.iterdir()) == ["cifar_fs"]  # no temp folder left
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json"] + [f"{s}_{k}.npy" for s in SPLITS for k in ("images", "labels")])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["dataset"] == "cifar_fs" and manifest["format"] == layout.FORMAT_VERSION
    assert manifest["source"] == {"kind": "cifar-100-python", "path": str(PARTIAL)}
    assert manifest["definition"] == DATASETS.get("cifar_fs").fingerprint()
    assert {"harness", "created", "notes", "order"} <= set(manifest)
    for split in SPLITS:
        images, labels = np.load(folder / f"{split}_images.npy"), np.load(folder / f"{split}_labels.npy")
        entry = manifest["splits"][split]
        assert images.dtype == np.uint8 and images.shape == (entry["images"], 32, 32, 3)
        assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < len(entry["classes"])
        assert entry["counts"] == np.bincount(labels, minlength=len(entry["classes"])).tolist()
        assert entry["images_sha256"] == hashlib.sha256(images.tobytes()).hexdigest()
        assert entry["labels_sha256"] == hashlib.sha256(labels.tobytes()).hexdigest()
    report = data.verify("cifar_fs", prepared)
    assert report.startswith(f"cifar_fs in {folder}: OK") and "64 classes" in report


def test_load_reads_the_prepared_arrays(prepared):
    cifar_fs = DATASETS.get("cifar_fs")
    split = cifar_fs.load("val", prepared)
    manifest = json.loads((prepared / "cifar_fs" / "manifest.json").read_text())
    assert split.classes == tuple(cifar_fs.split_classes["val"]) == tuple(manifest["splits"]["val"]["classes"])
    assert isinstance(split.images, np.memmap) and split.images.shape[1:] == (32, 32, 3)


def test_preparing_again_replaces_the_folder_whole(prepared):
    before = json.loads((prepared / "cifar_fs" / "manifest.json").read_text())
    after = data.prepare("cifar_fs", PARTIAL, prepared)
    assert sorted(p.name for p in prepared.iterdir()) == ["cifar_fs"]
    assert after["splits"] == before["splits"]


def test_verify_reports_a_flipped_byte(prepared):
    path = prepared / "cifar_fs" / "train_images.npy"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    raises_one_line(lambda: data.verify("cifar_fs", prepared), "verify cifar_fs", "train_images.npy: sha256",
                    "changed since preparation", f"To rebuild: {COMMAND}")
    data.require_prepared("cifar_fs", prepared)  # the cheap check does not hash: still fine


def test_verify_and_require_prepared_name_a_deleted_file(prepared):
    (prepared / "cifar_fs" / "val_labels.npy").unlink()
    raises_one_line(lambda: data.verify("cifar_fs", prepared), "val_labels.npy is missing")
    raises_one_line(lambda: data.require_prepared("cifar_fs", prepared), "val_labels.npy: missing", COMMAND)
    with pytest.raises(HarnessError, match="val_labels.npy"):
        DATASETS.get("cifar_fs").load("train", prepared)


def test_verify_catches_a_manifest_that_breaks_the_facts(prepared):
    path = prepared / "cifar_fs" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["splits"]["test"]["counts"][0] += 1
    path.write_text(json.dumps(manifest))
    raises_one_line(lambda: data.verify("cifar_fs", prepared), "test: counts per class differ from the manifest")


def test_a_changed_definition_needs_preparing_again(prepared, monkeypatch):
    cifar_fs = DATASETS.get("cifar_fs")
    monkeypatch.setattr(cifar_fs, "facts", replace(cifar_fs.facts, mean_tolerance=0.04))
    raises_one_line(lambda: data.require_prepared("cifar_fs", prepared), "another definition", COMMAND)


def test_require_prepared_gives_the_exact_command(tmp_path, monkeypatch):
    root = tmp_path / "data root"
    message = raises_one_line(lambda: data.require_prepared("cifar_fs", root))
    assert message == f"dataset cifar_fs is not prepared in {root}: run  {COMMAND} --root '{root}'"
    monkeypatch.setenv("HARNESS_DATA", str(root))
    message = raises_one_line(lambda: data.require_prepared("cifar_fs"))
    assert message == f"dataset cifar_fs is not prepared in {root}: run  {COMMAND}"
    raises_one_line(lambda: DATASETS.get("cifar_fs").load("train"), COMMAND)  # what a run hits
    for name in ("fc100", "mini_imagenet", "tiered_imagenet"):
        raises_one_line(lambda: data.require_prepared(name), f"dataset {name} is not prepared in {root}: run  "
                        f"harness data prepare {name} --source PATH/TO/")


def test_the_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "harness" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.data_root() == tmp_path / ".cache" / "harness" / "data"
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_the_data_commands_never_import_torch():
    code = ("import sys, harness.data as d\n"
            "for name in d.names():\n"
            "    d.sources(name); d.dataset(name).fingerprint()\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(sorted(d.names()))")
    env = {**os.environ, "HARNESS_DISABLE_PLUGIN_AUTOLOAD": "1"}  # harness's own datasets only
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert {"celeba", "cifar_fs", "cityscapes", "fc100", "mini_imagenet", "multi_mnist", "omniglot",
            "tiered_imagenet"} <= set(eval(out))


def test_every_dataset_states_its_interface():
    for name in DATASETS.names():
        dataset = DATASETS.get(name)
        assert dataset.name == name
        assert (dataset.channels, dataset.image_size) in {(3, 32), (3, 84), (1, 28)}
        assert dataset.crop_padding == {32: 4, 84: 8, 28: 0}[dataset.image_size]
        assert len(dataset.mean) == len(dataset.std) == dataset.channels
        assert dataset.sources() and all(kind and text for kind, text in dataset.sources())
        assert len(dataset.fingerprint()) == 16
