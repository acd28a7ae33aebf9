"""RunSpec: one run of a suite, named by a hash of everything that changes its result."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

import harness
from harness.fewshot.datasets import DATASETS
from harness.suite import Suite


@dataclass(frozen=True)
class RunSpec:
    suite: str
    run_id: str
    config: dict

    def __hash__(self):
        return hash(self.run_id)

    def label(self) -> str:
        c = self.config
        return f"{c['dataset']} {c['ways']}-way {c['shots']}-shot {c['method']} seed {c['seed']}"


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@lru_cache(maxsize=None)
def dataset_fingerprint(name: str) -> str:
    return DATASETS.get(name).fingerprint()


def run_id(config: dict) -> str:
    """Short hash of the resolved config, the harness version and the dataset's content."""
    identity = {
        "config": config,
        "harness": harness.__version__,
        "data": dataset_fingerprint(config["dataset"]),
    }
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]


def expand(suite: Suite) -> Iterator[RunSpec]:
    """The suite's runs, lazily; configs that resolve identically are yielded once."""
    seen = set()
    for config in suite.configs():
        rid = run_id(config)
        if rid not in seen:
            seen.add(rid)
            yield RunSpec(suite=suite.name, run_id=rid, config=config)


def select(specs: Iterable[RunSpec], filters: dict[str, list]) -> Iterator[RunSpec]:
    """Keep runs whose config matches every filter key (any of its values)."""
    for spec in specs:
        if all(spec.config.get(key) in values for key, values in filters.items()):
            yield spec
