"""The run configuration schema: every key a suite may set, its type, default and meaning.

Pure Python (no torch): the suite validator checks every value against this table,
and a run's resolved config holds every key below, so its run id pins them all.
A default of None for a method-specific key means "the method's own default".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.datasets import DATASETS
from harness.fewshot.heads import HEADS
from harness.fewshot.methods import METHODS

REQUIRED = object()  # marker: the suite must set this key (in defaults or the grid)


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    minimum: float | None = None  # lower bound for numbers
    exclusive: bool = False  # the bound itself is not allowed
    choices: Any = None  # a Registry, or a tuple of allowed strings
    nullable: bool = False


KEYS: dict[str, Key] = {
    # what is run
    "dataset": Key(str, REQUIRED, "dataset name (`harness list`)", choices=DATASETS),
    "method": Key(str, REQUIRED, "method name (`harness list`)", choices=METHODS),
    "shots": Key(int, REQUIRED, "labelled images per class in each task", minimum=1),
    "seed": Key(int, REQUIRED, "training seed", minimum=0),
    "ways": Key(int, 5, "classes per task", minimum=2),
    "queries": Key(int, 15, "query images per class in each training task (MTL: images per class = shots + queries)", minimum=1),
    "backbone": Key(str, "conv4", "feature extractor", choices=BACKBONES),
    # training
    "steps": Key(int, 1000, "optimiser steps", minimum=1),
    "meta_batch": Key(int, 1, "tasks whose mean loss makes one optimiser step", minimum=1),
    "optimizer": Key(str, "adam", "optimiser", choices=("adam", "radam", "sgd")),
    "lr": Key(float, 1e-3, "learning rate", minimum=0.0, exclusive=True),
    "weight_decay": Key(float, 0.0, "weight decay", minimum=0.0),
    "feature_norm": Key(bool, False, "L2-normalise features before the training head (mtl)"),
    "augment": Key(bool, False, "training augmentation: random crop with padding, colour jitter 0.4, horizontal flip"),
    "lr_patience": Key(int, None, "ReduceLROnPlateau on validation accuracy: validations without gain before the lr drops; null = constant lr", minimum=0, nullable=True),
    "lr_factor": Key(float, 0.1, "ReduceLROnPlateau factor", minimum=0.0, exclusive=True),
    # validation and model selection
    "val_every": Key(int, 100, "steps between validations", minimum=1),
    "val_episodes": Key(int, 100, "validation episodes (a fixed set)", minimum=1),
    "patience": Key(int, None, "early stopping: validations without improvement; null = never stop early", minimum=1, nullable=True),
    # evaluation
    "test_episodes": Key(int, 2000, "test episodes (a fixed set shared by all methods and seeds)", minimum=1),
    "test_queries": Key(int, 15, "query images per class in validation and test episodes", minimum=1),
    "eval_seed": Key(int, 0, "seed of the fixed validation and test episodes", minimum=0),
    "eval_head": Key(str, None, "evaluation head; null = the method's own", choices=HEADS, nullable=True),
    "logreg_C": Key(float, 3.0, "inverse L2 penalty of the logistic-regression head", minimum=0.0, exclusive=True),
    "logreg_iters": Key(int, 100, "maximum Newton iterations of the logistic-regression head", minimum=1),
    "finetune_steps": Key(int, 100, "SGD steps of the finetune head on the support features", minimum=1),
    "finetune_lr": Key(float, 0.01, "learning rate of the finetune head", minimum=0.0, exclusive=True),
    "svm_C": Key(float, 0.1, "cost C of the Crammer-Singer SVM (metaoptnet_svm, svm head)", minimum=0.0, exclusive=True),
    "svm_ridge": Key(float, 1.0, "identity added to the SVM dual's quadratic term, as MetaOptNet does", minimum=0.0, exclusive=True),
    "ridge_lambda": Key(float, 50.0, "per-example ridge penalty (r2d2, ridge head)", minimum=0.0, exclusive=True),
    # gradient-based meta-learning
    "inner_steps": Key(int, 5, "inner-loop steps on the support set per task (maml, fomaml, anil)", minimum=1),
    "inner_lr": Key(float, 0.01, "inner-loop learning rate (maml, fomaml, anil)", minimum=0.0, exclusive=True),
    "test_inner_steps": Key(int, None, "inner-loop steps at validation and test; null = inner_steps", minimum=1, nullable=True),
    # where
    "device": Key(str, "auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda")),
    "precision": Key(str, "auto", "bf16 autocast or fp32; auto = bf16 on a GPU that supports it, else fp32", choices=("auto", "bf16", "fp32")),
    "channels_last": Key(str, "auto", "channels-last memory format for convolutions; auto = on for GPUs", choices=("auto", "on", "off")),
}

AXES_REQUIRED = ("dataset", "shots", "method", "seed")
FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def choices_of(key: Key) -> tuple[str, ...] | None:
    if key.choices is None:
        return None
    if isinstance(key.choices, tuple):
        return key.choices
    return tuple(key.choices.names())


def check_value(name: str, value: Any, keys: dict | None = None) -> tuple[Any, str | None]:
    """Return (normalised value, error message or None) for one config value of ``keys``
    (a family's schema; default: the few-shot one)."""
    key = (keys or KEYS)[name]
    if value is None:
        return (None, None) if key.nullable else (None, "must not be null")
    if key.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key.type is float and isinstance(value, str) and FLOAT_TEXT.match(value):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as text
    if isinstance(value, bool) and key.type is not bool or not isinstance(value, key.type):
        return value, f"must be {_type_name(key)}, got {type(value).__name__} {value!r}"
    if key.type is float and not math.isfinite(value):
        return value, f"must be a finite number, got {value!r}"
    if key.minimum is not None and (value < key.minimum or (key.exclusive and value == key.minimum)):
        bound = f"> {key.minimum:g}" if key.exclusive else f">= {key.minimum:g}"
        return value, f"must be {bound}, got {value!r}"
    allowed = choices_of(key)
    if allowed is not None and value not in allowed:
        return value, f"unknown {name} {value!r} (known: {', '.join(allowed)})"
    return value, None


def _type_name(key: Key) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names[key.type] + (" or null" if key.nullable else "")


def parse_text(name: str, text: str, keys: dict | None = None) -> Any:
    """Parse a command-line value (``--filter shots=5``) to the key's type."""
    key = (keys or KEYS)[name]
    if text.lower() in ("null", "none") and key.nullable:
        return None
    if key.type is bool:
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(f"{name} must be true or false, got {text!r}")
    try:
        return key.type(text)
    except ValueError:
        raise ValueError(f"{name} must be {_type_name(key)}, got {text!r}") from None
