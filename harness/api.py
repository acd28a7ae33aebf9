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

Extension points (``typing.Protocol``s below, called exactly so; a family names each by
a "module:attribute" string, checked from its module's text where the family is loaded:
a target that is missing or not callable is a one-line PluginError):

- ``Family.trainer``, a ``TrainerFactory``: ``Trainer(config, checkpoint=..., log=...)``
  with ``config: dict`` (every key of the family's schema), ``checkpoint: Path | None``,
  ``log: Log``; the result is a ``Trainer``. ``trainer.stop_requested`` is set to True on
  a preemption or termination signal: save a checkpoint at the next step boundary and
  raise ``StopRequested``; a new Trainer with the same config and checkpoint path resumes
  from it. ``trainer.run()`` returns ``{"metrics": {...}, "timing": {...}, "details":
  {...}}`` and optionally ``"curve"``: ``metrics`` holds every declared metric (a finite
  number) and each metric's ``samples`` list; ``timing`` should give ``train_seconds``
  and ``eval_seconds``; ``details`` may give ``device`` ("cpu", "cuda:0") and
  ``peak_gpu_bytes``; ``curve`` is the validation curve, a list of ``{"step": int,
  "<figure>": value, ...}``. ``log(line)`` writes to the run's log;
  ``log.progress(step, total=None, **figures)``, where the trainer has it
  (``getattr(log, "progress", None)``), shows the step and the latest validation figures
  of a running run in ``harness status``. A worker has ``OMP_NUM_THREADS`` (and the other
  thread-pool variables) set to the run's ``resources.cpus``.
- ``Family.report``, a ``ReportBuilder``: ``build(suite, store, fmt, options) -> (text,
  warnings)`` for each ``fmt`` of ``Family.report_formats``; ``options`` is a dict
  (``specs``: the runs already expanded; ``plots``, ``baseline``, ``per_task`` from the
  command line) or None. None: the generic report (``harness.report.build``), which
  writes markdown, csv, latex and json.
- ``Family.check``, a ``Check``: ``check(config, cluster, gpus) -> str | None``, called by
  ``harness run`` in the launcher for every run before anything is dispatched
  (``cluster``: "local", "debug" or "slurm"; ``gpus``: the run's ``resources.gpus``); a
  text stops the launch with that line.

Components: every component is what its registry's ``get(name)`` returns; the family's
trainer decides what it must offer. A dataset component (the ``dataset`` key's registry)
is imported when planning, so keep torch out of its module; it may offer
``fingerprint()`` (a short text hashed into run ids: the data's content),
``require_prepared(root=None)`` (raise HarnessError with the command to type when the
data is missing), ``prepare(source, root=None)``, ``verify(root=None)`` and ``sources()``
for ``harness data``.

Component keys. A component may add config keys to its family in its register call;
the key spec is a dict of literals::

    @register("multitask.method", "my_cagrad", version="2", keys={
        "my_cagrad_c": {"type": "float", "default": 0.5, "minimum": 0.0, "arg": "c",
                        "help": "my_cagrad: radius c of the conflict-averse ball"},
        "my_cagrad_solver": {"type": "str", "default": "exact", "choices": ["exact", "official"],
                             "versions": {"official": "1"},
                             "help": "my_cagrad: the exact QP, or the official code's approximation"}})
    class MyCAGrad:
        def __init__(self, num_tasks, c=0.5, my_cagrad_solver="exact"): ...

- ``type`` ("int", "float", "bool", "str") and ``default`` are required; ``help``,
  ``minimum``, ``exclusive``, ``choices``, ``nullable`` mean what they mean for ``Key``;
- ``arg``: the keyword argument the value is passed to the component as (default: the
  key's name); ``registry.options(name, config)`` gives ``{arg: config[key]}`` for the
  keys that component declares (``{"c": 0.5, "my_cagrad_solver": "exact"}`` here), so a
  trainer builds any component alike: ``OPTIMIZERS.get(m)(tasks, **OPTIMIZERS.options(m, config))``;
- ``versions`` (with ``choices``): the key selects a variant of the component, and
  gives the version of every choice but the default (the default's version is the
  component's own). A run at the default keeps the id it always had; a run of another
  variant adds ``{key: [choice, version]}`` to its component's part of the identity
  (``["my_cagrad", "2", {"my_cagrad_solver": ["official", "1"]}]``), so bumping one
  variant's version makes only that variant's runs pending. ``harness list`` shows each
  component's variants; a run's variant is a config value (``harness plan --format json``).

A component key counts in a run's identity only where a component the run uses declares
it: ``my_cagrad_c: 0.4`` set for a whole grid leaves the ids of the grid's pcgrad runs
alone (``plan`` and ``run`` print one warning line per such key, with how many runs
ignore it and which methods they are). Keys of the same name declared by two
components must agree on type, default, bounds and choices.

A family may declare a key a component declares too. Without more, it is the family's
own key: the family's default and help, the same type required, and it counts in every
run's identity (a plugin's component reading the family's ``lr`` changes no id). With
``Key(..., overrides_component=True)`` the family only gives the component's key its own
default and help (rl's ``mgda_normalization``, "l2" where multitask's is "loss+"): it
still counts only where a used component declares it.
"""
from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness import HarnessError
from harness.keys import REQUIRED, Key, key_problems
from harness.registry import REGISTRIES, Registry, register
from harness.schema import Schema, merge
from harness.sources import PluginError, import_problem, target_problem

__all__ = [
    "DIRECTIONS",
    "REPORT_FORMATS",
    "REQUIRED",
    "Check",
    "Family",
    "HarnessError",
    "Key",
    "Log",
    "Metric",
    "PluginError",
    "Registry",
    "ReportBuilder",
    "StopRequested",
    "Trainer",
    "TrainerFactory",
    "family_keys",
    "register",
]

DIRECTIONS = ("higher", "lower")
REPORT_FORMATS = ("markdown", "csv", "latex", "json")  # what a report can be written as (REPORT.md, report.csv...)
GENERIC_REPORT_FORMATS = REPORT_FORMATS  # what the generic report writes
OWN_REPORT_FORMATS = ("markdown", "csv")  # a family's own report, unless it says more
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
ALWAYS_REQUIRED = ("dataset", "method", "seed")


class StopRequested(Exception):
    """Raised by a trainer after it saved its checkpoint because a stop was requested."""


# ---------------------------------------------------------------- extension points


@runtime_checkable
class Log(Protocol):
    """What a trainer writes its log with; ``progress(step, total=None, **figures)`` may be there too."""

    def __call__(self, line: str) -> None: ...


@runtime_checkable
class Trainer(Protocol):
    stop_requested: bool

    def run(self) -> dict: ...


class TrainerFactory(Protocol):
    """``Family.trainer``: usually the trainer class itself."""

    def __call__(self, config: dict, checkpoint: Path | None, log: Log) -> Trainer: ...


class ReportBuilder(Protocol):
    """``Family.report``: the report text in format ``fmt`` and the warnings to print."""

    def __call__(self, suite: Any, store: Any, fmt: str, options: dict | None) -> tuple[str, list[str]]: ...


class Check(Protocol):
    """``Family.check``: why one run cannot go where it is sent, or None."""

    def __call__(self, config: dict, cluster: str, gpus: int) -> str | None: ...


TARGETS = {"trainer": TrainerFactory, "report": ReportBuilder, "check": Check}  # Family field -> its protocol


# ---------------------------------------------------------------- declarations


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
    declaration raises PluginError naming the family and the problem.

    ``keys`` is given as the family's own keys; read back, it is the family's full schema:
    those and the keys its components declare (``declared_keys`` are the family's own)."""

    name: str
    version: str
    help: str
    keys: dict
    trainer: str  # "module:Class", a TrainerFactory
    metrics: tuple
    axes_required: tuple = ALWAYS_REQUIRED
    plan_columns: tuple = ()  # config keys `harness plan` always shows (default: axes_required)
    label: str | Callable | None = None  # "{dataset} {method} seed {seed}", or config -> str
    report: str | None = None  # "module:function", a ReportBuilder; None = the generic report
    sources: tuple = ()  # more modules whose files count in the family's source digest
    check: str | None = None  # "module:function", a Check, run for every run before dispatch
    # Validation metrics a finished run records in ``metrics[name]`` (direction included):
    # what model selection (a suite's ``select:``) may choose by; never the test metrics.
    validation: tuple = ()
    # Config keys that, with the seed, fix what runs of one seed share (their data order,
    # their environments' goals): runs equal on these and on the seed are compared paired.
    # None: seeds share nothing but what a metric's ``shared_by`` says (its test units).
    paired_by: tuple | None = None
    # The formats ``report`` writes (of REPORT_FORMATS); None: all four for the generic
    # report, markdown and csv for a family's own.
    report_formats: tuple | None = None
    module: str | None = field(default=None, compare=False)  # where it is declared (``declared_in``)

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
        formats = self.report_formats or (GENERIC_REPORT_FORMATS if self.report is None else OWN_REPORT_FORMATS)
        object.__setattr__(self, "report_formats", tuple(formats))

    # -- what the core asks a family ------------------------------------

    @property
    def declared_keys(self) -> dict:
        """The keys the family itself declares (``Family(keys=...)``)."""
        return self.__dict__["declared_keys"]

    @property
    def schema(self) -> Schema:
        """The family's keys merged with its components' (``harness.schema``), computed again
        only when some registry's entries changed since."""
        known = self.__dict__
        if known.get("_schema_revision") != REGISTRIES.revision:
            revision = REGISTRIES.revision
            known["_schema"] = merge(self.name, self.declared_keys, self.registries)
            known["_schema_revision"] = revision
        return known["_schema"]

    @property
    def registries(self) -> dict[str, Registry]:
        """config key -> the registry its values come from (computed once: planning asks
        for it for every run, and component keys never name components)."""
        found = self.__dict__.get("_registries")
        if found is None:
            found = {name: key.choices for name, key in self.declared_keys.items() if key.names_component}
            self.__dict__["_registries"] = found
        return found

    @property
    def datasets(self) -> Registry:
        return self.declared_keys["dataset"].choices

    @property
    def methods(self) -> Registry:
        return self.declared_keys["method"].choices

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

    # -- where it comes from ----------------------------------------------

    def declared_in(self, module: str) -> None:
        """Record the module (or .py path) that declares the family (the plugin loader does)."""
        object.__setattr__(self, "module", module)

    def target_problems(self):
        """'trainer 'm:T': <problem>' for each target whose module text shows it missing or not
        callable (read, not imported: a trainer's module imports torch)."""
        for what in TARGETS:
            target = getattr(self, what)
            problem = target_problem(target) if target else None
            if problem:
                yield f"{what} {target!r}: {problem}"

    def load(self, what: str):
        """The object the target ``what`` ("trainer", "report", "check") names, imported now;
        PluginError (one line) when it cannot be imported or called."""
        target = getattr(self, what)
        try:
            obj = load_target(target)
        except HarnessError:
            raise
        except Exception as error:
            raise PluginError(f"family {self.name}: {what} {target!r}: "
                              f"{import_problem(target.partition(':')[0], error)}") from error
        if not callable(obj):
            raise PluginError(f"family {self.name}: {what} {target!r} is not callable ({type(obj).__name__})")
        return obj


def _full_keys(self) -> dict:
    return self.schema.keys


def _declare_keys(self, keys) -> None:
    self.__dict__["declared_keys"] = getattr(keys, "declared", keys)


# ``keys`` is a dataclass field (the constructor's argument, the family's own keys) and, read
# back, the full schema: core code validates and hashes configs against ``family.keys``.
Family.keys = property(_full_keys, _declare_keys)


def family_keys(name: str, declared: dict) -> dict:
    """The full schema of a family that declares ``declared`` (what ``Family.keys`` gives),
    without the Family: for a trainer that resolves its config from its own keys table."""
    registries = {key: spec.choices for key, spec in declared.items() if isinstance(spec, Key) and spec.names_component}
    return merge(name, declared, registries).keys


def load_target(target: str):
    """The object a "module:attr" string names (imported now)."""
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
    keys = family.declared_keys
    if not isinstance(keys, dict) or not keys:
        yield "keys must be a non-empty dict of name -> harness.api.Key"
        return
    for name, key in keys.items():
        yield from key_problems(name, key)
    for name in ALWAYS_REQUIRED:
        if name not in keys:
            yield f"keys must include {name!r} (every family has dataset, method and seed)"
    for name in ("dataset", "method"):
        if name in keys and not keys[name].names_component:
            yield f"key {name!r} must take its choices from a harness.api.Registry"
    for what in ("axes_required", "plan_columns"):
        for name in getattr(family, what) or ():
            if name not in keys:
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
    for metrics in (family.validation, family.metrics):
        for metric in metrics:
            if isinstance(metric, Metric) and metric.bounds is not None and not _bounds_ok(metric.bounds):
                yield f"metric {metric.name!r}: bounds must be (low, high) numbers with low < high, got {metric.bounds!r}"
    if not isinstance(family.validation, (tuple, list)) or not all(isinstance(m, Metric) for m in family.validation):
        yield "validation must be a tuple of harness.api.Metric (the validation metrics a run records)"
    elif {m.name for m in family.validation} & {m.name for m in family.metrics}:
        yield "a validation metric cannot also be a test metric (give it its own name, e.g. val_accuracy)"
    for name in family.paired_by or ():
        if name not in keys:
            yield f"paired_by names unknown key {name!r}"
    for what in TARGETS:
        value = getattr(family, what)
        if (value is not None or what == "trainer") and not (isinstance(value, str) and TARGET.match(value)):
            yield f"{what} must be a 'module:attribute' string, got {value!r}"
    formats = family.report_formats
    if formats is not None and (not isinstance(formats, (tuple, list)) or not formats
                                or any(fmt not in REPORT_FORMATS for fmt in formats)):
        yield f"report_formats must be a non-empty tuple of {', '.join(REPORT_FORMATS)}, got {formats!r}"
    if isinstance(family.label, str):
        fields = {f for _, f, _, _ in string.Formatter().parse(family.label) if f}
        for name in sorted(fields - set(keys)):
            yield f"label names unknown key {name!r}"
    elif family.label is not None and not callable(family.label):
        yield "label must be a format string or a function of the config"


def _bounds_ok(bounds) -> bool:
    return (isinstance(bounds, (tuple, list)) and len(bounds) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) and bounds[0] < bounds[1])
