"""Omniglot: works with no preparation; `prepare` from the small zips writes the same arrays."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_data_helpers import assert_nothing_written, raises_one_line, same_splits

from harness import data
from harness.fewshot.datasets import DATASETS

SPLITS = ("train", "val", "test")
ASSETS = Path(__file__).parents[2] / "harness" / "assets" / "omniglot"


@pytest.fixture(scope="module")
def omniglot():
    return DATASETS.get("omniglot")


def test_the_fingerprint_is_unchanged_by_the_prepared_layout(omniglot):
    # Same arrays as before the prepared layout existed, so the same run ids.
    assert omniglot.fingerprint() == "38bcc9300306b3c3"


def test_without_preparation_runs_read_the_shipped_zips(omniglot, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "empty"))
    data.require_prepared("omniglot")
    splits = {split: omniglot.load(split) for split in SPLITS}
    assert [len(s.classes) for s in splits.values()] == [175, 17, 50]
    assert all(s.images.shape[1:] == (28, 28, 1) and len(s.labels) == 20 * len(s.classes) for s in splits.values())
    report = data.verify("omniglot")
    assert "not prepared" in report and "OK" in report
    assert_nothing_written(tmp_path / "empty")


def test_prepare_from_the_small_zips_gives_the_shipped_arrays(omniglot, tmp_path):
    root = tmp_path / "root"
    manifest = data.prepare("omniglot", ASSETS, root)
    assert manifest["source"]["kind"] == "omniglot-small-zips"
    assert [len(manifest["splits"][s]["classes"]) for s in SPLITS] == [175, 17, 50]
    assert "omniglot in" in data.verify("omniglot", root)
    prepared = {split: omniglot.load(split, root) for split in SPLITS}
    assert isinstance(prepared["train"].images, np.memmap)
    same_splits(prepared, {split: omniglot.load(split, tmp_path / "nothing here") for split in SPLITS})


def test_prepare_without_both_zips_fails_in_one_line(tmp_path):
    folder = tmp_path / "zips"
    folder.mkdir()
    shutil.copy(ASSETS / "images_background_small1.zip", folder)
    raises_one_line(lambda: data.prepare("omniglot", folder, tmp_path / "root"), "images_background_small2.zip: missing")
    assert_nothing_written(tmp_path / "root")
