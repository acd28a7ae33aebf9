"""The public API for experiment families and plugins. Pure Python: importing it imports
no torch.

A family is what a suite's ``family:`` key selects: the schema of a run's config, the
registries of its components, the trainer a worker runs, and the metrics a run
records. The built-in families (``harness/fewshot/family.py``,
``harness/multitask/family.py``, ``harness/rl/family.py``) are declared with exactly
this API and found the same way as a third party's: through the ``harness.plugins``
entry point group (see ``harness.plugins``).

Declaring a family (in a module that does not import torch: it is imported to plan)::

    from harness.api import REQUIRED, Family, Key, Metric, Registry

    METHODS = Registry("digits.method", package="my_pkg.methods")   # one file per method
    DATASETS = Registry("digits.dataset", package="my_pkg.datasets")
    FAMILY = Family(
        name="digits", version="1", help="...",
        keys={"dataset": Key(str, REQUIRED, "...", choices=DATASETS),
              "method": Key(str, REQUIRED, "...", choices=METHODS),
              "seed": Key(int, REQUIRED, "...", minimum=0),
              "lr": Key(float, 0.1, "...", minimum=0.0, exclusive=True)},
        trainer="my_pkg.train:Trainer",
        metrics=(Metric("accuracy", "higher", "%", samples="correct"),),
    )

Declaring a component (in any file; read as text to plan, imported only by the worker
that runs it)::

    from harness.api import register

    @register("fewshot.method", "simpleshot", version="1", uses={"eval_head": "centroid"})
    class SimpleShot(...): ...

The trainer contract: ``Trainer(config: dict, checkpoint: Path | None, log)``;
``trainer.stop_requested`` is set to True on a preemption or termination signal: save a
checkpoint at the next step boundary and raise ``StopRequested``; a new Trainer with the
same config and checkpoint path resumes from it. ``trainer.run()`` returns
``{"metrics": {...}, "timing": {...}, "details": {...}}`` and optionally ``"curve"``:
``metrics`` holds every declared metric (a finite number) and each metric's ``samples``
list; ``timing`` should give ``train_seconds`` and ``eval_seconds``; ``details`` may give
``device`` ("cpu", "cuda:0") and ``peak_gpu_bytes``; ``curve`` is the validation curve,
a list of ``{"step": int, "<figure>": value, ...}``. ``log(line)`` writes to the run's
log; ``log.progress(step, total=None, **figures)``, where the trainer has it
(``getattr(log, "progress", None)``), shows the step and the latest validation figures of
a running run in ``harness status``. A worker has ``OMP_NUM_THREADS`` (and the other
thread-pool variables) set to the run's ``resources.cpus``.

Components: every component is what its registry's ``get(name)`` returns; the family's
trainer decides what it must offer. A dataset component (the ``dataset`` key's registry)
is imported when planning, so keep torch out of its module; it may offer
``fingerprint()`` (a short text hashed into run ids: the data's content),
``require_prepared(root=None)`` (raise HarnessError with the command to type when the
data is missing), ``prepare(source, root=None)``, ``verify(root=None)`` and ``sources()``
for ``harness data``. A component may add config keys to its family:
``keys={"knn_k": {"type": "int", "default": 5, "help": "neighbours", "minimum": 1}}``
in its register call.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Callable

from harness import HarnessError
from harness.keys import REQUIRED, TYPES, Key
from harness.registry import PluginError, Registry, register

__all__ = ["REQUIRED", "Key", "Metric", "Family", "Registry", "register", "StopRequested", "PluginError",
           "HarnessError", "DIRECTIONS"]

DIRECTIONS = ("higher", "lower")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
ALWAYS_REQUIRED = ("dataset", "method", "seed")


class StopRequested(Exception):
    """Raised by a trainer after it saved its checkpoint because a stop was requested."""


@dataclass(frozen=True)
class Metric:
    """One number every finished run records in ``metrics[name]``.

    ``samples`` names a list in ``metrics`` holding the per-unit values the number is the
    mean of (per-episode accuracies, per-image correctness): the report then gives each
    run its own interval over them. ``samples_name`` says what a unit is ("episodes").
    ``shared_by`` names the config keys that fix the units: runs equal on them were
    scored on the same units (the same test episodes), so the report compares them paired.
    ``bounds`` is the range every value lies in (``(0, 100)`` for a success rate in %):
    no interval, mean or bootstrap the report gives leaves it. ``samples_required=False``
    lets a run record the metric without samples where it is no mean over units (mIoU).
    """

    name: str
    direction: str = "higher"  # "higher" or "lower" is better
    unit: str = ""
    samples: str | None = None
    samples_name: str = "samples"
    help: str = ""
    shared_by: tuple | None = None  # config keys that, when equal, mean two runs' samples are the same units
    bounds: tuple | None = None  # (low, high): every value lies within; no interval the report gives leaves it
    samples_required: bool = True  # False: a run may record no samples (the metric is no mean over units there)

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower"


@dataclass(frozen=True)
class Family:
    """An experiment family (see the module docstring). Checked when created: a malformed
    declaration raises PluginError naming the family and the problem."""

    name: str
    version: str
    help: str
    keys: dict
    trainer: str  # "module:Class"
    metrics: tuple
    axes_required: tuple = ALWAYS_REQUIRED
    plan_columns: tuple = ()  # config keys `harness plan` always shows (default: axes_required)
    label: str | Callable | None = None  # "{dataset} {method} seed {seed}", or config -> str
    report: str | None = None  # "module:function" build(suite, store, fmt) -> (text, warnings); None = generic
    sources: tuple = ()  # more modules whose files count in the family's source digest
    check: str | None = None  # "module:function" (config) -> problem text or None, before dispatch
    # Validation metrics a finished run records in ``metrics[name]`` (direction included):
    # what model selection (a suite's ``select:``) may choose by; never the test metrics.
    validation: tuple = ()
    # Config keys that, with the seed, fix what runs of one seed share (their data order,
    # their environments' goals): runs equal on these and on the seed are compared paired.
    # None: seeds share nothing but what a metric's ``shared_by`` says (its test units).
    paired_by: tuple | None = None
    module: str | None = field(default=None, compare=False)  # set by the plugin loader

    def __post_init__(self):
        problems = list(_family_problems(self))
        if problems:
            raise PluginError(f"family {self.name!r}: {problems[0]}")
        object.__setattr__(self, "version", str(self.version))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "axes_required", tuple(self.axes_required))
        object.__setattr__(self, "plan_columns", tuple(self.plan_columns or self.axes_required))
        object.__setattr__(self, "validation", tuple(self.validation))
        if self.paired_by is not None:
            object.__setattr__(self, "paired_by", tuple(self.paired_by))

    # -- what the core asks a family ------------------------------------

    @property
    def registries(self) -> dict[str, Registry]:
        """config key -> the registry its values come from (computed once: planning asks
        for it for every run, and keys added later never name components)."""
        found = self.__dict__.get("_registries")
        if found is None:
            found = {name: key.choices for name, key in self.keys.items() if key.names_component}
            object.__setattr__(self, "_registries", found)
        return found

    @property
    def datasets(self) -> Registry:
        return self.keys["dataset"].choices

    @property
    def methods(self) -> Registry:
        return self.keys["method"].choices

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    @property
    def headline(self) -> Metric:
        """The first metric: the one tables and agreement use by default."""
        return self.metrics[0]

    def run_label(self, config: dict) -> str:
        if callable(self.label):
            return self.label(config)
        template = self.label or " ".join(f"{{{k}}}" if k != "seed" else "seed {seed}" for k in self.axes_required)
        return template.format(**config)

    def metrics_problem(self, metrics) -> str | None:
        """Why a done record's ``metrics`` cannot be reported, or None."""
        if not isinstance(metrics, dict):
            return "done but without metrics"
        for metric in self.metrics:
            value = metrics.get(metric.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"done but without metrics.{metric.name}"
            samples = metrics.get(metric.samples) if metric.samples else None
            if metric.samples and metric.samples_required and not (isinstance(samples, list) or hasattr(samples, "dtype")):
                return f"done but without metrics.{metric.samples}"  # a list (or the store's read-only array of it)
        return None


def load_target(target: str):
    """The object a "module:attr" string names (imported now)."""
    import importlib

    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _family_problems(family: Family):
    if not isinstance(family.name, str) or not NAME.match(family.name):
        yield f"name must be lower-case letters, digits and '_', got {family.name!r}"
    if isinstance(family.version, bool) or not isinstance(family.version, (str, int)) or not str(family.version).strip():
        yield f"version must be a non-empty string or an integer, got {family.version!r}"
    if not isinstance(family.help, str):
        yield "help must be a string"
    if not isinstance(family.keys, dict) or not family.keys:
        yield "keys must be a non-empty dict of name -> harness.api.Key"
        return
    for name, key in family.keys.items():
        yield from _key_problems(name, key)
    for name in ALWAYS_REQUIRED:
        if name not in family.keys:
            yield f"keys must include {name!r} (every family has dataset, method and seed)"
    for name in ("dataset", "method"):
        if name in family.keys and not family.keys[name].names_component:
            yield f"key {name!r} must take its choices from a harness.api.Registry"
    for what in ("axes_required", "plan_columns"):
        for name in getattr(family, what) or ():
            if name not in family.keys:
                yield f"{what} names unknown key {name!r}"
    for name in ALWAYS_REQUIRED:
        if name not in family.axes_required:
            yield f"axes_required must include {name!r}"
    if not isinstance(family.metrics, (tuple, list)) or not family.metrics:
        yield "metrics must be a non-empty tuple of harness.api.Metric"
        return
    seen = set()
    for metric in family.metrics:
        if not isinstance(metric, Metric):
            yield f"metrics must be harness.api.Metric objects, got {type(metric).__name__}"
            continue
        if metric.name in seen:
            yield f"metric {metric.name!r} is declared twice"
        seen.add(metric.name)
        if metric.direction not in DIRECTIONS:
            yield f"metric {metric.name!r}: direction must be 'higher' or 'lower', got {metric.direction!r}"
    for what, metrics in (("validation", family.validation), ("metrics", family.metrics)):
        for metric in metrics:
            if isinstance(metric, Metric) and metric.bounds is not None and not _bounds_ok(metric.bounds):
                yield f"metric {metric.name!r}: bounds must be (low, high) numbers with low < high, got {metric.bounds!r}"
    if not isinstance(family.validation, (tuple, list)) or not all(isinstance(m, Metric) for m in family.validation):
        yield "validation must be a tuple of harness.api.Metric (the validation metrics a run records)"
    elif {m.name for m in family.validation} & {m.name for m in family.metrics}:
        yield "a validation metric cannot also be a test metric (give it its own name, e.g. val_accuracy)"
    for name in family.paired_by or ():
        if name not in family.keys:
            yield f"paired_by names unknown key {name!r}"
    for what in ("trainer", "report", "check"):
        value = getattr(family, what)
        if (value is not None or what == "trainer") and not (isinstance(value, str) and TARGET.match(value)):
            yield f"{what} must be a 'module:attribute' string, got {value!r}"
    if isinstance(family.label, str):
        fields = {f for _, f, _, _ in string.Formatter().parse(family.label) if f}
        for name in sorted(fields - set(family.keys)):
            yield f"label names unknown key {name!r}"
    elif family.label is not None and not callable(family.label):
        yield "label must be a format string or a function of the config"


def _bounds_ok(bounds) -> bool:
    return (isinstance(bounds, (tuple, list)) and len(bounds) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) and bounds[0] < bounds[1])


def _key_problems(name, key):
    if not isinstance(name, str) or not KEY_NAME.match(name):
        yield f"key name {name!r} must be letters, digits and '_', starting with a letter"
        return
    if not isinstance(key, Key):
        yield f"key {name!r} must be a harness.api.Key, got {type(key).__name__}"
        return
    if key.type not in TYPES:
        yield f"key {name!r}: type must be one of int, float, bool, str, got {getattr(key.type, '__name__', key.type)!r}"
        return
    if key.default is REQUIRED:
        return
    if key.default is None:
        if not key.nullable:
            yield f"key {name!r}: default None needs nullable=True"
        return
    ok = isinstance(key.default, key.type) and not (isinstance(key.default, bool) and key.type is not bool)
    if key.type is float and isinstance(key.default, int) and not isinstance(key.default, bool):
        ok = True
    if not ok:
        yield f"key {name!r}: default {key.default!r} is not of its type {key.type.__name__}"
    if key.choices is not None and not isinstance(key.choices, (tuple, Registry)):
        yield f"key {name!r}: choices must be a tuple of values or a harness.api.Registry"
    elif isinstance(key.choices, tuple) and key.default not in key.choices:
        yield f"key {name!r}: default {key.default!r} is not one of its choices"
