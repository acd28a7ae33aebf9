"""Train one few-shot method, select by validation, score the fixed test episodes.

Training is resumable: the whole state (model, optimiser, scheduler, early-stopping
bookkeeping, every random generator, the step counter, elapsed time) is saved
atomically at step boundaries every ``checkpoint_seconds`` and when a stop is
requested (a termination or preemption signal), and a new Trainer for the same
run continues from it: the result is the same as a run never interrupted.

Recipe knobs the trainer owns (see ``config.py`` for each key): training tasks of
``train_ways`` x (``train_shots`` + ``queries``) images; a method with ``batched_tasks``
gets all ``meta_batch`` tasks of a step at once, support and queries gathered apart;
the fixed learning-rate schedules (``lr_schedule``, epochs of ``val_every`` steps) or
ReduceLROnPlateau (``lr_patience``); validation on ``val_episodes`` episodes of
``val_shots`` + ``val_queries`` images per class, a fixed set or a fresh one each time
(``val_resample``), after which the DropBlock ramp advances by the passes the
reference code makes in validation (episodes x ``method.validation_passes``). The weights
tested are the best validation's, or with ``tested_checkpoint: final`` the last ones.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.backbones._dropblock import count_passes
from harness.fewshot.config import schema
from harness.fewshot.datasets import DATASETS
from harness.fewshot.engine import SplitTensor
from harness.fewshot.episodes import EpisodeSampler, episode_seed, fixed_episodes
from harness.fewshot.evaluate import evaluate
from harness.fewshot.heads import HEADS
from harness.fewshot.methods import METHODS
from harness.training import (
    CHECKPOINT_SECONDS,
    Resumable,
    load_rng_state,
    make_optimizer,
    pick_device,
    rng_state,
    synchronize,
)


def use_bf16(config: dict, device: torch.device) -> bool:
    if config["precision"] == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return config["precision"] == "bf16"


def use_channels_last(config: dict, device: torch.device) -> bool:
    return config["channels_last"] == "on" or (config["channels_last"] == "auto" and device.type == "cuda")


# family keys -> the backbone factory's keyword argument: a backbone without the argument refuses them
BACKBONE_OPTIONS = {"backbone_width": "width", "global_pool": "global_pool"}


def backbone_options(config: dict) -> dict:
    """The backbone's keyword arguments: the family's backbone keys not at their default (so a
    backbone that takes none of them is built as it always was), and the keys the backbone
    itself declares (resnet12's DropBlock variants; another backbone ignores them)."""
    keys = schema()
    options = {arg: config[key] for key, arg in BACKBONE_OPTIONS.items()
               if config.get(key, keys[key].default) != keys[key].default}
    for key, spec in BACKBONES.keys(config["backbone"]).items():
        value = config.get(key, spec.key.default)
        if value != spec.key.default:
            options[spec.arg] = value
    return options


def build_backbone(config: dict, in_channels: int, image_size: int):
    """The config's backbone with its options (``backbone_options``)."""
    options = backbone_options(config)
    try:
        return BACKBONES.get(config["backbone"])(in_channels, image_size, **options)
    except TypeError as error:
        if not options:
            raise
        named = [key for key, arg in BACKBONE_OPTIONS.items() if arg in options]
        if not named:  # only the backbone's own declared keys: its own error
            raise
        raise ValueError(f"backbone {config['backbone']!r} does not take {', '.join(named)} ({error})") from None


def lr_multiplier(config: dict, step: int) -> float:
    """Factor on ``lr`` at (1-indexed) optimiser step ``step`` under ``lr_schedule``: epochs of
    ``val_every`` steps, counted from 1, so step s is in epoch ceil(s / val_every)."""
    schedule = config.get("lr_schedule", "constant")
    if schedule == "constant":
        return 1.0
    epoch = -(-step // config["val_every"])
    if schedule == "metaoptnet":  # kjunelee/MetaOptNet train.py: LambdaLR stepped at the start of epoch 1, 2, ...
        return 1.0 if epoch < 20 else 0.06 if epoch < 40 else 0.012 if epoch < 50 else 0.0024
    if schedule == "step":  # StepLR stepped at each epoch's start (bertinetto/r2d2 scripts/train/train.py)
        return config["lr_step_gamma"] ** (epoch // config["lr_step_epochs"])
    raise ValueError(f"unknown lr_schedule {schedule!r}")


def eval_head_name(config: dict) -> str:
    """The config's head, else the one the method declares (``uses``), else logreg."""
    return config["eval_head"] or METHODS.uses(config["method"]).get("eval_head") or "logreg"


class Trainer(Resumable):
    def __init__(self, config: dict, checkpoint: Path | None = None, log: Callable[[str], None] = print):
        self.config, self.log = config, log
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.stop_requested = False
        self.device = device = pick_device(config["device"])
        seed, ways, shots = config["seed"], config["ways"], config["shots"]
        torch.manual_seed(seed)
        started = time.perf_counter()

        dataset = DATASETS.get(config["dataset"])
        splits = {name: dataset.load(name) for name in ("train", "val", "test")}
        self.bf16 = use_bf16(config, device)
        memory_format = torch.channels_last if use_channels_last(config, device) else torch.contiguous_format
        self.splits = {name: SplitTensor(split, dataset, device, memory_format) for name, split in splits.items()}
        backbone = build_backbone(config, dataset.channels, dataset.image_size)
        self.method = METHODS.get(config["method"])(backbone, config, splits["train"].num_classes)
        self.method.to(device, memory_format=memory_format)
        self.method.bf16 = self.bf16
        self.head_name = "adapt" if self.method.adapts_at_test else eval_head_name(config)
        self.head = None if self.method.adapts_at_test else HEADS.get(self.head_name)
        self.optimizer = make_optimizer(config, self.method.parameters())
        self.scheduler = None
        if config["lr_patience"] is not None:
            if config.get("lr_schedule", "constant") != "constant":
                raise ValueError(f"lr_patience (ReduceLROnPlateau) and lr_schedule {config['lr_schedule']!r} "
                                 "both set the learning rate: choose one")
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="max", factor=config["lr_factor"], patience=config["lr_patience"])
        self.train_ways = config.get("train_ways") or ways
        self.train_shots = config.get("train_shots") or shots
        self.sampler = EpisodeSampler(splits["train"].labels, self.train_ways, self.train_shots + config["queries"])
        self.rng = np.random.default_rng(seed)
        self.augmentation = None
        if config["augment"]:
            self.augmentation = torch.Generator(device=device)
            self.augmentation.manual_seed(episode_seed("augment", seed))
        self.val_shots = config.get("val_shots") or shots
        self.val_queries = config.get("val_queries") or config["test_queries"]
        self.val_episodes = None
        if not config.get("val_resample"):
            self.val_episodes = fixed_episodes("val", splits["val"].labels, ways, self.val_shots, self.val_queries,
                                               config["val_episodes"], config["eval_seed"])
        self.step, self.images_seen, self.train_seconds = 0, 0, 0.0
        self.best = {"accuracy": -1.0, "step": 0, "state": None}
        self.curve: list[dict] = []  # one entry per validation
        self.stale, self.finished_training = 0, False
        synchronize(device)
        self.load_seconds = time.perf_counter() - started
        self.resumed_from = self.resume()

    # -- checkpoints ----------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "step": self.step, "images_seen": self.images_seen, "train_seconds": self.train_seconds,
            "best": self.best, "stale": self.stale, "finished_training": self.finished_training, "curve": self.curve,
            **rng_state(self.device, self.generators()),
        }

    def generators(self) -> dict:
        return {"numpy": self.rng, "augmentation": self.augmentation}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.images_seen, self.train_seconds = state["step"], state["images_seen"], state["train_seconds"]
        self.best, self.stale, self.finished_training = state["best"], state["stale"], state["finished_training"]
        self.curve = state.get("curve", [])
        load_rng_state(state, self.device, self.generators())

    # -- training -------------------------------------------------------

    def set_lr(self) -> None:
        """The lr of this step under a fixed schedule (a function of the step: nothing to checkpoint)."""
        if self.config.get("lr_schedule", "constant") == "constant":
            return
        lr = self.config["lr"] * lr_multiplier(self.config, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_step(self) -> float:
        config = self.config
        self.method.train()
        self.set_lr()
        self.optimizer.zero_grad(set_to_none=True)
        indices, classes = self.sampler.sample(self.rng, config["meta_batch"])
        shots, train = self.train_shots, self.splits["train"]
        if self.method.batched_tasks:  # every task of the step at once: support images, then query images
            support = train.gather(indices[:, :, :shots], self.augmentation)
            query = train.gather(indices[:, :, shots:], self.augmentation)
            with self.method.autocast():
                loss, _ = self.method.batch_loss(support, query, torch.as_tensor(classes, device=self.device), shots)
            loss.backward()
            self.images_seen += indices.size
            self.optimizer.step()
            return loss.item()
        total = 0.0
        for task_indices, task_classes in zip(indices, classes):
            images = train.gather(task_indices, self.augmentation)
            with self.method.autocast():
                loss, _ = self.method.task_loss(images, torch.as_tensor(task_classes, device=self.device), shots)
            (loss / config["meta_batch"]).backward()
            total += loss.item() / config["meta_batch"]
            self.images_seen += task_indices.size
        self.optimizer.step()
        return total

    def validation_episodes(self) -> np.ndarray:
        """The fixed validation set, or with ``val_resample`` a fresh one for this step."""
        if self.val_episodes is not None:
            return self.val_episodes
        config = self.config
        rng = np.random.default_rng(episode_seed("val-resample", config["seed"], config["eval_seed"], self.step))
        sampler = EpisodeSampler(self.splits["val"].labels, config["ways"], self.val_shots + self.val_queries)
        return sampler.sample(rng, config["val_episodes"])[0]

    def validate(self, loss: float) -> bool:
        """Validate, keep the best state; return False when early stopping says stop."""
        config = self.config
        episodes = self.validation_episodes()
        accuracy = float(evaluate(self.method, self.splits["val"], episodes, self.val_shots, self.head, config).mean())
        count_passes(self.method, len(episodes) * self.method.validation_passes)  # the reference's DropBlock ramp
        self.log(f"step {self.step}/{config['steps']}  loss {loss:.4f}  val {accuracy:.2f}%")
        self.curve.append({"step": self.step, "loss": loss, "val_accuracy": accuracy})
        progress = getattr(self.log, "progress", None)
        if progress:
            progress(self.step, config["steps"], val_accuracy=accuracy)
        if self.scheduler:
            self.scheduler.step(accuracy)
        if accuracy > self.best["accuracy"]:
            self.best = {"accuracy": accuracy, "step": self.step, "state": copy.deepcopy(self.method.state_dict())}
            self.stale = 0
            return True
        self.stale += 1
        if config["patience"] is not None and self.stale >= config["patience"]:
            self.log(f"early stop at step {self.step}: no validation gain for {self.stale} validations")
            return False
        return True

    def train(self) -> None:
        config = self.config
        last_save = time.perf_counter()
        progress = getattr(self.log, "progress", None)
        while not self.finished_training:
            started = time.perf_counter()
            self.step += 1
            loss = self.train_step()
            if progress:
                progress(self.step, config["steps"])  # throttled by the log
            keep_going = True
            if self.step % config["val_every"] == 0 or self.step == config["steps"]:
                keep_going = self.validate(loss)
            self.finished_training = not keep_going or self.step >= config["steps"]
            synchronize(self.device)
            self.train_seconds += time.perf_counter() - started
            due = time.perf_counter() - last_save >= CHECKPOINT_SECONDS and not self.finished_training
            if self.stop_requested or due:
                self.save_or_stop()
                last_save = time.perf_counter()

    def run(self) -> dict:
        """Train (or finish training) and test; return metrics, timing and details."""
        self.train()
        if self.config.get("tested_checkpoint", "best") == "best":
            self.method.load_state_dict(self.best["state"])
        config = self.config
        eval_started = time.perf_counter()
        test = self.splits["test"]
        episodes = fixed_episodes("test", test.labels, config["ways"], config["shots"], config["test_queries"],
                                  config["test_episodes"], config["eval_seed"])
        accuracies = evaluate(self.method, test, episodes, config["shots"], self.head, config)
        synchronize(self.device)
        eval_seconds = time.perf_counter() - eval_started
        self.log(f"test accuracy {accuracies.mean():.2f}% over {len(accuracies)} episodes")
        return {
            "curve": list(self.curve),
            "metrics": {
                "accuracy": float(accuracies.mean()),
                "episode_accuracies": [float(a) for a in accuracies],
                "val_accuracy": self.best["accuracy"],
                "best_step": self.best["step"],
            },
            "timing": {
                "load_seconds": self.load_seconds,
                "train_seconds": self.train_seconds,
                "eval_seconds": eval_seconds,
                "steps": self.step,
                "seconds_per_step": self.train_seconds / max(self.step, 1),
                "images_seen": self.images_seen,
            },
            "details": {
                "device": str(self.device),
                "eval_head": self.head_name,
                "parameters": sum(p.numel() for p in self.method.parameters()),
                "resumed_from_step": self.resumed_from,
                "train_split_on_device": self.splits["train"].on_device,
                "bf16": self.bf16,
            },
        }
