"""RunSpec: one run of a suite, named by a hash of everything that changes its result."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

import harness
from harness import families
from harness.suite import Suite


@dataclass(frozen=True)
class RunSpec:
    suite: str
    run_id: str
    config: dict
    family: str = families.DEFAULT

    def __hash__(self):
        return hash(self.run_id)

    def label(self) -> str:
        return families.get(self.family).label(self.config)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@lru_cache(maxsize=None)
def dataset_fingerprint(name: str) -> str:
    return families.dataset_family(name).datasets.get(name).fingerprint()


def run_id(config: dict) -> str:
    """Short hash of the resolved config, the harness version and the dataset's content.

    The family is not hashed: dataset names are unique across families, and each
    family's config has its own keys, so two families never give the same identity."""
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
            yield RunSpec(suite=suite.name, run_id=rid, config=config, family=suite.family)


def select(specs: Iterable[RunSpec], filters: dict[str, list]) -> Iterator[RunSpec]:
    """Keep runs whose config matches every filter key (any of its values)."""
    for spec in specs:
        if all(spec.config.get(key) in values for key, values in filters.items()):
            yield spec
