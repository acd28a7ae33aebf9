"""The Trainer end to end on the tiny CelebA and Cityscapes files prepared into a temp data root,
with the real networks: every metric of the record, per-metric selection on Cityscapes."""
from __future__ import annotations

import pytest
from conftest import quiet
from test_multitask_data import CELEBA, write_cityscapes

from harness.multitask.datasets import DATASETS
from harness.multitask.train import Trainer

pytestmark = [pytest.mark.filterwarnings("ignore:Detected call of"), pytest.mark.usefixtures("one_torch_thread")]


def test_celeba_with_imtl_over_40_tasks(tmp_path, monkeypatch):
    dataset = DATASETS.get("celeba")
    monkeypatch.setattr(dataset, "counts", {"train": 4, "val": 2, "test": 2})
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    dataset.prepare(CELEBA)
    config = {"dataset": "celeba", "method": "imtl", "seed": 0, "epochs": 2, "batch_size": 2, "dropout": True,
              "weight_decay": 1e-3, "lr_decay": 0.95, "device": "cpu"}
    result = Trainer(config, log=quiet).run()
    metrics = result["metrics"]
    assert result["timing"]["steps"] == 4 and result["details"]["model"] == "resnet18_celeba"
    assert len(metrics["tasks"]) == 40 and all(v in (0.0, 50.0, 100.0) for v in metrics["tasks"].values())
    assert metrics["average"] == pytest.approx(sum(metrics["tasks"].values()) / 40)


def test_cityscapes_with_mgda_ub_selects_each_metric_at_its_best_epoch(tmp_path, monkeypatch):
    dataset = DATASETS.get("cityscapes")
    monkeypatch.setattr(dataset, "counts", {"train": 2, "val": 1, "test": 1})
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "root"))
    write_cityscapes(tmp_path / "src", sizes=(("train", 3), ("val", 1)))
    dataset.prepare(tmp_path / "src")
    config = {"dataset": "cityscapes", "method": "mgda_ub", "seed": 0, "epochs": 2, "batch_size": 2, "device": "cpu"}
    result = Trainer(config, log=quiet).run()
    metrics = result["metrics"]
    names = ["segmentation_miou", "segmentation_pixel_accuracy", "depth_abs_error", "depth_rel_error"]
    assert list(metrics["tasks"]) == names and list(metrics["best_epochs"]) == names
    assert set(metrics) == {"average", "tasks", "val_average", "val_tasks", "best_epoch", "epochs",
                            "best_epochs", "tasks_at_best_epoch"}
    assert metrics["average"] == pytest.approx((metrics["tasks_at_best_epoch"]["segmentation_miou"]
                                                + metrics["tasks_at_best_epoch"]["segmentation_pixel_accuracy"]) / 2)
    assert result["details"]["directions"]["depth_abs_error"] == "lower"
    history = result["details"]["history"]
    best_depth = min(history, key=lambda h: (h["val"]["depth_abs_error"], -h["epoch"]))["epoch"]
    assert metrics["best_epochs"]["depth_abs_error"] == best_depth
