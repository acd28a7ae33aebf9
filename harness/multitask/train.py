"""Train one multi-task run (Kurin et al. 2022 protocol): epochs of shuffled batches, one
multi-task optimizer step per batch, validation after every epoch, test whenever the
validation improves; return metrics, timing and details.

Contract (as the few-shot Trainer): ``Trainer(config, checkpoint=Path|None, log=print)``,
``.run() -> {"metrics", "timing", "details"}``. ``stop_requested`` is checked at every
step boundary: the checkpoint is saved atomically and ``StopRequested`` raised. The
whole state (model, optimisers, lr schedule, the multi-task optimizer's state such as
DWA's loss history and learnable loss scales, the epoch's batch order and position,
model-selection bookkeeping, every random generator, clocks) is saved every
``CHECKPOINT_SECONDS`` and on a stop; a new Trainer for the same run resumes from it,
and on the CPU gives exactly the metrics of an uninterrupted run.

Model selection (as the official code): after every epoch the validation split is
scored; when its ``average`` is at least the best so far, the test split is scored and
kept. ``average`` is the mean of the higher-is-better metrics (``tasks.score``): mean
accuracy over the tasks for Multi-MNIST and CelebA (the paper's), the mean of mIoU and
pixel accuracy for Cityscapes. Datasets with ``selection = "per_metric"`` (Cityscapes)
also keep each metric at the epoch where its own validation value is best (lower is
better for the depth errors), as the official code saves a model per metric.

``metrics``:

- ``average``: test average at ``best_epoch``; ``tasks``: {metric: test value}, at
  ``best_epoch`` or, for per-metric selection, each at ``best_epochs[metric]``;
- ``example_scores`` (classification-only datasets: Multi-MNIST, CelebA): each test image's
  share of tasks predicted right (%) at ``best_epoch``, in test-split order; their mean is
  ``average`` (the samples the report's per-run intervals use);
- ``val_average``, ``val_tasks``: validation at ``best_epoch``; ``best_epoch`` (1-based);
- ``epochs``: epochs trained (fewer than configured after early stopping);
- per-metric selection only: ``best_epochs``, ``tasks_at_best_epoch`` (test at ``best_epoch``).

Accuracies, mIoU and pixel accuracy are in %; directions are in ``details["directions"]``.

``curve``: the validation average after every epoch (``step``, ``epoch``, ``val_average``).

``timing``: ``load_seconds``; ``train_seconds`` (training steps and validation);
``eval_seconds`` (test scoring); ``steps``; ``seconds_per_step`` and ``epoch_seconds``
(training steps only, each epoch's wall-clock without validation, the paper's timing
protocol; device synchronised); ``images_seen``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from harness.multitask import step as steps
from harness.multitask.batches import DeviceSplit
from harness.multitask.config import optimizer_options, resolved
from harness.multitask.datasets import DATASETS
from harness.multitask.models import MODELS
from harness.multitask.optimizers import OPTIMIZERS
from harness.multitask.tasks import HIGHER, Meter, metric_directions, score
from harness.training import (
    CHECKPOINT_SECONDS,
    Resumable,
    StopRequested,
    derived_seed,
    load_rng_state,
    make_optimizer,
    pick_device,
    rng_state,
    synchronize,
)

__all__ = ["Trainer", "StopRequested", "CHECKPOINT_SECONDS"]


class Trainer(Resumable):
    def __init__(self, config: dict, checkpoint: Path | None = None, log: Callable[[str], None] = print):
        self.config = config = resolved(config)
        self.log = log
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.stop_requested = False
        self.device = device = pick_device(config["device"])
        started = time.perf_counter()
        torch.manual_seed(config["seed"])

        self.dataset = dataset = DATASETS.get(config["dataset"])
        dataset.require_prepared()
        self.data = {split: DeviceSplit(dataset.load(split), dataset, device,
                                        config["train_images"] if split == "train" else None)
                     for split in ("train", "val", "test")}
        self.model = MODELS.get(config["model"] or dataset.model)(dataset.tasks, dropout=config["dropout"]).to(device)
        self.mtl = OPTIMIZERS.get(config["method"])(len(dataset.tasks), **optimizer_options(config)).to(device)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config["lr_decay"])
        self.mtl_optimizer = torch.optim.Adam(self.mtl.parameters(), lr=config["lr"]) if self.mtl.learnable else None
        self.shuffle = torch.Generator().manual_seed(derived_seed(config["seed"], "shuffle"))
        self.generator = torch.Generator(device=device).manual_seed(derived_seed(config["seed"], "optimizer"))
        self.directions = metric_directions(dataset.tasks)

        tasks = len(dataset.tasks)
        self.epoch, self.position, self.order = 0, 0, None
        self.loss_sums, self.loss_batches = torch.zeros(tasks, dtype=torch.float64, device=device), 0
        self.step, self.images_seen = 0, 0
        self.train_seconds, self.eval_seconds, self.epoch_elapsed = 0.0, 0.0, 0.0
        self.epoch_seconds: list[float] = []
        self.history: list[dict] = []
        self.best = {"average": {"val": -math.inf, "epoch": 0, "val_metrics": None, "test": None,
                                 "example_scores": None}}
        self.scored_examples: list[float] | None = None  # per test image, of the last test scoring
        if dataset.selection == "per_metric":
            self.best.update({name: {"val": -math.inf if d == HIGHER else math.inf, "epoch": 0, "test": None}
                              for name, d in self.directions.items()})
        self.stale, self.finished = 0, False
        synchronize(device)
        self.load_seconds = time.perf_counter() - started
        self.resumed_from = self.resume()

    # -- checkpoints ----------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "mtl": self.mtl.state_dict(),
            "mtl_optimizer": self.mtl_optimizer.state_dict() if self.mtl_optimizer else None,
            "epoch": self.epoch, "position": self.position, "order": self.order,
            "loss_sums": self.loss_sums, "loss_batches": self.loss_batches,
            "step": self.step, "images_seen": self.images_seen, "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds, "epoch_elapsed": self.epoch_elapsed,
            "epoch_seconds": self.epoch_seconds, "history": self.history,
            "best": self.best, "stale": self.stale, "finished": self.finished,
            **rng_state(self.device, self.generators()),
        }

    def generators(self) -> dict:
        return {"shuffle": self.shuffle, "optimizer": self.generator}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.mtl.load_state_dict(state["mtl"])
        if self.mtl_optimizer:
            self.mtl_optimizer.load_state_dict(state["mtl_optimizer"])
        for name in ("epoch", "position", "order", "loss_sums", "loss_batches", "step", "images_seen",
                     "train_seconds", "eval_seconds", "epoch_elapsed", "epoch_seconds", "history", "best",
                     "stale", "finished"):
            setattr(self, name, state[name])
        self.loss_sums = self.loss_sums.to(self.device)
        load_rng_state(state, self.device, self.generators())

    def where(self) -> str:
        return f"step {self.step} (epoch {self.epoch + 1}, batch {self.position})"

    # -- training -------------------------------------------------------

    def train_step(self, indices: torch.Tensor) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if self.mtl_optimizer:
            self.mtl_optimizer.zero_grad(set_to_none=True)
        x, targets = self.data["train"].batch(indices)
        raw = steps.backward(self.model, self.mtl, x, targets, self.generator)
        self.optimizer.step()
        if self.mtl_optimizer:
            self.mtl_optimizer.step()
        self.loss_sums += raw.double()
        self.loss_batches += 1
        self.images_seen += len(indices)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """The split's metrics; scoring "test" also sets ``scored_examples``."""
        self.model.eval()
        meter = Meter(self.dataset.tasks, per_example=split == "test")
        data = self.data[split]
        for indices in data.ordered_batches(self.config["batch_size"]):
            x, targets = data.batch(indices)
            meter.update(self.model(x)[1], targets)
        if split == "test":
            self.scored_examples = meter.example_scores()
        return meter.result()

    def end_epoch(self) -> None:
        """Schedule, DWA's history, validation, selection, test when improved, early stopping."""
        config = self.config
        mean_losses = (self.loss_sums / max(self.loss_batches, 1)).float()
        self.scheduler.step()
        self.mtl.end_epoch(mean_losses)
        val = self.evaluate("val")
        val_average = score(val, self.directions)
        epoch, previous_best = self.epoch + 1, self.best["average"]["val"]
        improved = [name for name, best in self.best.items() if self._improves(name, val, val_average, best["val"])]
        if improved:
            started = time.perf_counter()
            test = self.evaluate("test")
            synchronize(self.device)
            self.eval_seconds += time.perf_counter() - started
            for name in improved:
                value = val_average if name == "average" else val[name]
                self.best[name].update({"val": value, "epoch": epoch, "test": test if name == "average" else test[name]})
            if "average" in improved:
                self.best["average"].update({"val_metrics": val, "example_scores": self.scored_examples})
        self.stale = 0 if val_average > previous_best else self.stale + 1
        self.history.append({"epoch": epoch, "step": self.step, "train_losses": mean_losses.tolist(), "val": val,
                             "val_average": val_average})
        progress = getattr(self.log, "progress", None)
        if progress:
            progress(self.step, None, epoch=epoch, val_average=val_average)
        losses = " ".join(f"{v:.4f}" for v in mean_losses.tolist()[:4]) + (" ..." if len(mean_losses) > 4 else "")
        self.log(f"epoch {epoch}/{config['epochs']}  train loss {losses}  val average {val_average:.2f}"
                 + ("  (best)" if "average" in improved else ""))
        self.epoch, self.position, self.order = epoch, 0, None
        self.loss_sums.zero_()
        self.loss_batches = 0
        if config["patience"] is not None and self.stale >= config["patience"]:
            self.log(f"early stop after epoch {epoch}: no better validation average for {self.stale} epochs")
            self.finished = True
        self.finished = self.finished or self.epoch >= config["epochs"]

    def _improves(self, name: str, val: dict, val_average: float, best: float) -> bool:
        if name == "average":
            return val_average >= best
        return val[name] >= best if self.directions[name] == HIGHER else val[name] <= best

    def train(self) -> None:
        batch_size = self.config["batch_size"]
        last_save = time.perf_counter()
        while not self.finished:
            if self.order is None:
                self.order = torch.randperm(len(self.data["train"]), generator=self.shuffle)
            batches = self.order.split(batch_size)
            clock = time.perf_counter()
            while self.position < len(batches):
                self.train_step(batches[self.position].to(self.device))
                self.position += 1
                self.step += 1
                due = time.perf_counter() - last_save >= CHECKPOINT_SECONDS
                if self.stop_requested or (due and self.position < len(batches)):
                    self._flush_clock(clock)
                    self.save_or_stop()
                    clock = last_save = time.perf_counter()  # saving is not training time
            self._flush_clock(clock)
            self.epoch_seconds.append(self.epoch_elapsed)
            self.epoch_elapsed = 0.0
            started, tested = time.perf_counter(), self.eval_seconds
            self.end_epoch()
            synchronize(self.device)
            self.train_seconds += time.perf_counter() - started - (self.eval_seconds - tested)  # test time apart
            if self.stop_requested or (time.perf_counter() - last_save >= CHECKPOINT_SECONDS and not self.finished):
                self.save_or_stop()
                last_save = time.perf_counter()

    def _flush_clock(self, clock: float) -> None:
        """Add the training-step time since ``clock`` (device synchronised) to the clocks."""
        synchronize(self.device)
        elapsed = time.perf_counter() - clock
        self.epoch_elapsed += elapsed
        self.train_seconds += elapsed

    # -- result ---------------------------------------------------------

    def run(self) -> dict:
        """Train (or finish training) and return metrics, timing and details."""
        self.train()
        if self.best["average"]["test"] is None:  # validation never gave a number (diverged): test the last state
            self.best["average"].update({"test": self.evaluate("test"), "epoch": self.epoch,
                                         "val_metrics": self.history[-1]["val"], "val": self.history[-1]["val_average"],
                                         "example_scores": self.scored_examples})
        average = self.best["average"]
        metrics = {
            "average": score(average["test"], self.directions),
            "tasks": dict(average["test"]),
            "val_average": average["val"],
            "val_tasks": average["val_metrics"],
            "best_epoch": average["epoch"],
            "epochs": self.epoch,
        }
        if average.get("example_scores") is not None:
            metrics["example_scores"] = average["example_scores"]
        if self.dataset.selection == "per_metric":
            metrics["tasks_at_best_epoch"] = metrics["tasks"]
            metrics["tasks"] = {name: self.best[name]["test"] for name in self.directions}
            metrics["best_epochs"] = {name: self.best[name]["epoch"] for name in self.directions}
        self.log(f"test average {metrics['average']:.2f} at epoch {metrics['best_epoch']} "
                 f"(val {metrics['val_average']:.2f})")
        step_seconds = sum(self.epoch_seconds)
        return {
            "metrics": metrics,
            "curve": [{"step": h.get("step"), "epoch": h["epoch"], "val_average": h["val_average"]} for h in self.history],
            "timing": {
                "load_seconds": self.load_seconds,
                "train_seconds": self.train_seconds,
                "eval_seconds": self.eval_seconds,
                "steps": self.step,
                "seconds_per_step": step_seconds / max(self.step, 1),
                "epoch_seconds": list(self.epoch_seconds),
                "images_seen": self.images_seen,
            },
            "details": {
                "device": str(self.device),
                "model": self.config["model"] or self.dataset.model,
                "dropout": self.model.dropout,
                "space": self.mtl.space,
                "tasks": self.dataset.task_names(),
                "directions": self.directions,
                "selection": self.dataset.selection,
                "train_images": len(self.data["train"]),
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "shared_parameters": sum(p.numel() for p in self.model.shared_parameters()),
                "history": self.history,
                "resumed_from_step": self.resumed_from,
            },
        }
