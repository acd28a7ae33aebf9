"""Experiment families: what a suite's top-level `family` key selects.

A family is the schema of a run's config (its keys, the grid axes a suite must give),
its dataset registry (for run ids and `harness data`), the module whose ``Trainer``
a worker runs, and the module that reports it. Pure Python: no torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from harness import HarnessError
from harness.registry import Registry


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    keys: dict  # config key -> harness.config.Key
    axes_required: tuple
    datasets: Registry
    trainer: str  # module that defines Trainer(config, checkpoint, log)
    report: str  # module that defines build(suite, store, fmt) -> (text, warnings)
    plan_columns: tuple  # config keys `harness plan` always shows
    label: Callable[[dict], str]  # one line naming a run, for logs and status
    headline: tuple  # (metric, its type): what every done record's metrics must hold

    def trainer_class(self):
        return importlib.import_module(self.trainer).Trainer

    def report_module(self):
        return importlib.import_module(self.report)

    def metrics_problem(self, metrics) -> str | None:
        """Why a done record's ``metrics`` cannot be reported, or None."""
        name, kind = self.headline
        if not isinstance(metrics, dict) or not isinstance(metrics.get(name), kind) or isinstance(metrics.get(name), bool):
            return f"done but without metrics.{name}"
        return None


def _fewshot() -> Family:
    from harness import config
    from harness.fewshot.datasets import DATASETS

    return Family(
        name="fewshot", help="few-shot classification (Wang et al. 2021): episodes of N-way K-shot tasks",
        keys=config.KEYS, axes_required=config.AXES_REQUIRED, datasets=DATASETS,
        trainer="harness.fewshot.train", report="harness.report",
        plan_columns=("dataset", "ways", "shots", "method", "backbone", "seed"),
        label=lambda c: f"{c['dataset']} {c['ways']}-way {c['shots']}-shot {c['method']} seed {c['seed']}",
        headline=("episode_accuracies", list),
    )


def _multitask() -> Family:
    from harness.multitask import config
    from harness.multitask.datasets import DATASETS

    return Family(
        name="multitask", help="multi-task learning (Kurin et al. 2022): one network, several tasks, an optimizer combining them",
        keys=config.KEYS, axes_required=config.AXES_REQUIRED, datasets=DATASETS,
        trainer="harness.multitask.train", report="harness.report_multitask",
        plan_columns=("dataset", "method", "seed"),
        label=lambda c: f"{c['dataset']} {c['method']} seed {c['seed']}",
        headline=("average", (int, float)),
    )


_BUILDERS = {"fewshot": _fewshot, "multitask": _multitask}
DEFAULT = "fewshot"  # a suite without a `family` key
NAMES = tuple(_BUILDERS)
_cache: dict[str, Family] = {}


def get(name: str) -> Family:
    if name not in _BUILDERS:
        raise HarnessError(f"unknown family {name!r} (known: {', '.join(NAMES)})")
    if name not in _cache:
        _cache[name] = _BUILDERS[name]()
    return _cache[name]


def all_families() -> list[Family]:
    return [get(name) for name in NAMES]


def dataset_family(name: str) -> Family:
    """The family whose registry has dataset ``name`` (dataset names are unique across families)."""
    for family in all_families():
        if name in family.datasets.names():
            return family
    known = ", ".join(n for family in all_families() for n in family.datasets.names())
    raise HarnessError(f"unknown dataset {name!r} (known: {known})")
