"""RunSpec: one run of a suite, named by a hash of everything that changes its result.

A run id hashes its identity (``identity``):

- the family's name and version;
- the resolved config, WITHOUT the keys at their default: adding a key whose default
  keeps the old behaviour leaves every existing id as it was (changing a key's default
  is a change of behaviour: bump the family's version);
- the name and version of every component the config names (method, dataset, backbone,
  head, optimizer, model...), and of the components those say they use when their key
  is null (``uses=``); bumping one component's version makes only its runs pending;
- the dataset's content fingerprint.

Not the harness version: upgrading the package keeps finished runs. Each record also
keeps a digest of each component's source, to warn when code changed under an
unchanged version (``harness.staleness``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from harness import families, plugins
from harness.api import Family
from harness.keys import REQUIRED
from harness.suite import Suite


@dataclass(frozen=True)
class RunSpec:
    suite: str
    run_id: str
    config: dict
    family: str = families.DEFAULT
    plugins: tuple = ()  # the suite's plugins, resolved (absolute .py paths, module names)

    def __hash__(self):
        return hash(self.run_id)

    def label(self) -> str:
        return families.get(self.family).run_label(self.config)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def identity_config(family: Family, config: dict) -> dict:
    """The config without the keys at their default (and without keys the family no longer has)."""
    keys = family.keys
    return {name: value for name, value in config.items()
            if name in keys and (keys[name].default is REQUIRED or value != keys[name].default)}


def used_components(family: Family, config: dict) -> dict[str, str]:
    """config key -> the component name a run uses: the config's value, else (for a null
    key) what a named component says it uses (``uses=``)."""
    registries = family.registries
    used = {key: config[key] for key in registries if config.get(key) is not None}
    for key, name in list(used.items()):
        for other, value in registries[key].uses(name).items():
            if other in registries and other not in used and config.get(other) is None and value is not None:
                used[other] = value
    return used


@lru_cache(maxsize=None)
def dataset_fingerprint(family_name: str, name: str) -> str | None:
    """The dataset's content fingerprint, when it offers one (its module is imported)."""
    dataset = families.get(family_name).datasets.get(name)
    fingerprint = getattr(dataset, "fingerprint", None)
    return fingerprint() if callable(fingerprint) else None


def identity(family: Family, config: dict, memo: dict | None = None) -> dict:
    """What a run id hashes. ``memo`` (one per expansion) keeps the components' part per
    distinct choice of components: a grid names few, its runs many."""
    named = tuple(config.get(key) for key in family.registries)
    parts = memo.get(named) if memo is not None else None
    if parts is None:
        parts = ({key: [name, family.registries[key].version(name)]
                  for key, name in sorted(used_components(family, config).items())},
                 dataset_fingerprint(family.name, config["dataset"]))
        if memo is not None:
            memo[named] = parts
    return {"family": [family.name, family.version], "config": identity_config(family, config),
            "components": parts[0], "data": parts[1]}


def run_id(config: dict, family: Family | str = families.DEFAULT, memo: dict | None = None) -> str:
    """12 hex digits of the sha256 of the run's identity."""
    family = families.get(family) if isinstance(family, str) else family
    return hashlib.sha256(canonical_json(identity(family, config, memo)).encode()).hexdigest()[:12]


def components(family: Family, config: dict) -> dict:
    """What a record keeps of the code behind it: for the family and each component used,
    its name, version, origin and source digest (files read now, nothing imported)."""
    found = {"family": {"name": family.name, "version": family.version, "origin": plugins.origin(family.name),
                        "digest": plugins.family_digest(family)}}
    for key, name in sorted(used_components(family, config).items()):
        registry = family.registries[key]
        entry = registry.entry(name)
        found[key] = {"name": name, "version": entry.version, "origin": entry.origin, "digest": registry.digest(name),
                      "file": entry.source.module or entry.source.path.name}
    return found


def expand(suite: Suite) -> Iterator[RunSpec]:
    """The suite's runs, lazily; configs that resolve identically are yielded once."""
    family = families.get(suite.family)
    seen, memo = set(), {}
    for config in suite.configs():
        rid = run_id(config, family, memo)
        if rid not in seen:
            seen.add(rid)
            yield RunSpec(suite=suite.name, run_id=rid, config=config, family=suite.family, plugins=suite.plugins)


def select(specs: Iterable[RunSpec], filters: dict[str, list]) -> Iterator[RunSpec]:
    """Keep runs whose config matches every filter key (any of its values)."""
    for spec in specs:
        if all(spec.config.get(key) in values for key, values in filters.items()):
            yield spec
