"""The multi-task Trainer on Multi-MNIST: it learns, every optimizer runs, model selection and
early stopping follow the protocol, and a stopped or killed run resumes to identical metrics."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import kill_after_a_checkpoint, quiet

from harness.multitask import train as train_module
from harness.multitask.datasets import DATASETS
from harness.multitask.optimizers import OPTIMIZERS
from harness.multitask.train import StopRequested, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = {"dataset": "multi_mnist", "seed": 0, "device": "cpu", "lr": 0.01, "lr_decay": 0.9,
         "batch_size": 128, "train_images": 1024}


def test_short_training_with_unitary_beats_chance_on_both_digits():
    config = {**QUICK, "method": "unitary", "batch_size": 64, "train_images": 4000, "epochs": 4, "lr": 0.003}
    result = Trainer(config, log=quiet).run()
    metrics, timing = result["metrics"], result["timing"]
    assert timing["steps"] == 4 * 63 and timing["images_seen"] == 4 * 4000
    assert metrics["tasks"]["left"] > 60 and metrics["tasks"]["right"] > 60  # chance is 10%
    assert metrics["average"] == pytest.approx((metrics["tasks"]["left"] + metrics["tasks"]["right"]) / 2)
    assert 1 <= metrics["best_epoch"] <= 4 and metrics["epochs"] == 4
    assert set(metrics) == {"average", "tasks", "val_average", "val_tasks", "best_epoch", "epochs", "example_scores"}
    # each test image's share of digits right, in test order: their mean is the average
    scores = metrics["example_scores"]
    assert len(scores) == 1000 and set(scores) <= {0.0, 50.0, 100.0} and 0.0 in scores and 100.0 in scores
    assert math.fsum(scores) / len(scores) == pytest.approx(metrics["average"], rel=1e-12)
    assert "cpu_peak_rss_bytes" not in result["details"] and "peak_gpu_bytes" not in result["details"]  # the worker's
    assert len(timing["epoch_seconds"]) == 4
    assert timing["seconds_per_step"] == pytest.approx(sum(timing["epoch_seconds"]) / timing["steps"])
    assert result["details"]["directions"] == {"left": "higher", "right": "higher"}


@pytest.mark.parametrize("method", OPTIMIZERS.names())
def test_every_optimizer_completes_an_epoch(method):
    result = Trainer({**QUICK, "train_images": 512, "method": method, "epochs": 1}, log=quiet).run()
    metrics = result["metrics"]
    assert result["timing"]["steps"] == 4 and metrics["best_epoch"] == 1
    assert all(math.isfinite(v) and 0 <= v <= 100 for v in metrics["tasks"].values())
    assert result["details"]["space"] == OPTIMIZERS.get(method).space


def test_lr_decays_per_epoch_and_learnable_weights_have_their_own_adam():
    trainer = Trainer({**QUICK, "train_images": 256, "method": "uncertainty", "epochs": 3}, log=quiet)
    trainer.run()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.9**3)
    assert trainer.mtl_optimizer.param_groups[0]["lr"] == 0.01
    assert not torch.equal(trainer.mtl.log_variances.detach(), torch.zeros(2))


SCRIPTED = pytest.mark.filterwarnings("ignore:Detected call of")


def scripted(trainer, monkeypatch, val, test):
    """Replace evaluation by fixed per-epoch metrics (val[i], test[i] for epoch i + 1) and skip training."""
    calls = {"val": iter(val), "test": iter(test)}
    monkeypatch.setattr(trainer, "evaluate", lambda split: next(calls[split]))
    monkeypatch.setattr(trainer, "train_step", lambda indices: None)


@SCRIPTED
def test_selection_takes_test_at_the_best_validation_average_and_stops_early(monkeypatch):
    trainer = Trainer({**QUICK, "train_images": 128, "method": "unitary", "epochs": 10, "patience": 2}, log=quiet)
    val = [{"left": 50, "right": 50}, {"left": 70, "right": 60}, {"left": 60, "right": 70},
           {"left": 60, "right": 60}, {"left": 90, "right": 90}]
    test = [{"left": 1, "right": 1}, {"left": 2, "right": 2}, {"left": 3, "right": 3}]
    scripted(trainer, monkeypatch, val, test)
    metrics = trainer.run()["metrics"]
    # epoch 3 ties epoch 2 (65): the later one is kept (>=, as the official code); epoch 4 is worse
    # and epoch 3 was not strictly better, so patience 2 stops after epoch 4
    assert metrics["best_epoch"] == 3 and metrics["tasks"] == {"left": 3, "right": 3}
    assert metrics["val_average"] == 65 and metrics["epochs"] == 4 and metrics["average"] == 3


@SCRIPTED
def test_per_metric_selection_keeps_each_metric_at_its_own_best_epoch(monkeypatch):
    monkeypatch.setattr(DATASETS.get("multi_mnist"), "selection", "per_metric")
    monkeypatch.setattr(train_module, "metric_directions", lambda tasks: {"left": "higher", "right": "lower"})
    trainer = Trainer({**QUICK, "train_images": 128, "method": "unitary", "epochs": 3}, log=quiet)
    val = [{"left": 50, "right": 5}, {"left": 40, "right": 1}, {"left": 60, "right": 3}]
    test = [{"left": 10, "right": 10}, {"left": 20, "right": 20}, {"left": 30, "right": 30}]
    scripted(trainer, monkeypatch, val, test)
    metrics = trainer.run()["metrics"]
    assert metrics["best_epochs"] == {"left": 3, "right": 2}
    assert metrics["tasks"] == {"left": 30, "right": 20}  # each at its own best validation epoch
    assert metrics["best_epoch"] == 3 and metrics["tasks_at_best_epoch"] == {"left": 30, "right": 30}
    assert metrics["average"] == 30  # the mean of the higher-is-better metrics only


RESUMABLE = {**QUICK, "epochs": 3}


@pytest.mark.parametrize("method, stop_at", [("imtl", 5), ("dwa", 16), ("graddrop", 19)])
def test_stop_at_a_step_boundary_and_resume_gives_identical_metrics(method, stop_at, tmp_path, monkeypatch):
    config = {**RESUMABLE, "method": method}
    reference = Trainer(config, log=quiet).run()
    checkpoint = tmp_path / "checkpoint.pt"
    trainer = Trainer(config, checkpoint=checkpoint, log=quiet)
    original = trainer.train_step

    def stepping(indices):
        original(indices)
        trainer.stop_requested = trainer.step + 1 == stop_at

    monkeypatch.setattr(trainer, "train_step", stepping)
    with pytest.raises(StopRequested):
        trainer.run()
    assert checkpoint.exists() and trainer.step == stop_at
    resumed = Trainer(config, checkpoint=checkpoint, log=quiet)
    assert resumed.resumed_from == stop_at
    result = resumed.run()
    assert result["metrics"] == reference["metrics"]
    assert result["details"]["history"] == reference["details"]["history"]


WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from harness.multitask.train import Trainer
config, checkpoint, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
result = Trainer(config, checkpoint=checkpoint, log=lambda line: None).run()
json.dump({"metrics": result["metrics"], "resumed": result["details"]["resumed_from_step"]}, open(out, "w"))
"""


def test_killed_at_a_random_point_and_resumed_gives_the_same_metrics(tmp_path):
    config = {**RESUMABLE, "method": "pcgrad", "train_images": 2048, "epochs": 4}
    checkpoint, out = tmp_path / "checkpoint.pt", tmp_path / "result.json"
    command = [sys.executable, "-c", WORKER, json.dumps(config), str(checkpoint), str(out)]
    env = {**os.environ, "HARNESS_CHECKPOINT_SECONDS": "0"}
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_a_checkpoint(worker, checkpoint, out)
    subprocess.run(command, env=env, check=True)  # the same run again: resumes from the checkpoint
    resumed = json.loads(out.read_text())
    assert resumed["resumed"] >= 1
    reference = Trainer(config, log=quiet).run()
    assert resumed["metrics"] == json.loads(json.dumps(reference["metrics"]))
