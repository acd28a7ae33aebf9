"""RunSpec: one run of a suite, named by a hash of everything that changes its result.

A run id hashes its identity (``identity``):

- the family's name and version;
- the resolved config, WITHOUT the keys at their default: adding a key whose default
  keeps the old behaviour leaves every existing id as it was (changing a key's default
  is a change of behaviour: bump the family's version); and without the keys components
  declare that no component of the run declares (``harness.api``, "Component keys"):
  they cannot change its result;
- the name and version of every component the config names (method, dataset, backbone,
  head, optimizer, model...), and of the components those say they use when their key
  is null (``uses=``); bumping one component's version makes only its runs pending; a
  component run as a variant other than its default adds ``{key: [variant, version]}``;
- the dataset's content fingerprint.

Not the harness version: upgrading the package keeps finished runs. Each record also
keeps a digest of each component's source, to warn when code changed under an
unchanged version (``harness.staleness``).
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

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
        if self.plugins:  # a worker may ask before it loaded them: the family may be one of theirs
            plugins.activate(self.plugins)
        return families.get(self.family).run_label(self.config)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def identity_config(family: Family, config: dict, ignored: frozenset | None = None) -> dict:
    """The config without the keys at their default, without keys the family no longer has,
    and without the component keys no component the run uses declares (``ignored``:
    computed from the config when not given)."""
    if ignored is None:
        ignored = family.schema.ignored(used_components(family, config))
    return _without_defaults(family.keys, config, ignored)


def _without_defaults(keys: dict, config: dict, ignored: frozenset) -> dict:
    if ignored:
        return {name: value for name, value in config.items() if name in keys and name not in ignored
                and (keys[name].default is REQUIRED or value != keys[name].default)}
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


@cache
def dataset_fingerprint(family_name: str, name: str) -> str | None:
    """The dataset's content fingerprint, when it offers one (its module is imported)."""
    dataset = families.get(family_name).datasets.get(name)
    fingerprint = getattr(dataset, "fingerprint", None)
    return fingerprint() if callable(fingerprint) else None


def identity(family: Family, config: dict, memo: dict | None = None) -> dict:
    """What a run id hashes. ``memo`` (one per expansion) keeps the components' part per
    distinct choice of components and variants: a grid names few, its runs many."""
    schema = family.schema
    named = tuple(config.get(key) for key in family.registries)
    if schema.selectors:
        named += tuple(config.get(key) for key in schema.selectors)
    parts = memo.get(named) if memo is not None else None
    if parts is None:
        used = used_components(family, config)
        parts = ({key: component_part(family.registries[key], name, config) for key, name in sorted(used.items())},
                 dataset_fingerprint(family.name, config["dataset"]), schema.ignored(used))
        if memo is not None:
            memo[named] = parts
    return {"family": [family.name, family.version], "config": _without_defaults(schema.keys, config, parts[2]),
            "components": parts[0], "data": parts[1]}


def component_part(registry, name: str, config: dict) -> list:
    """[name, version], and the variants the run selects when they are not the defaults."""
    variants = registry.variants(name, config)
    return [name, registry.version(name), variants] if variants else [name, registry.version(name)]


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
        variants = registry.variants(name, config)
        if variants:
            found[key]["variants"] = variants
    return found


def expand(suite: Suite, extra: Iterable[dict] = ()) -> Iterator[RunSpec]:
    """The suite's runs, lazily; configs that resolve identically are yielded once.
    ``extra``: more resolved configs after the grid's (the seeds rounds of sequential
    seeds added, ``harness.rounds``), planned runs of the suite like the grid's."""
    family = families.get(suite.family)
    seen, memo = set(), {}
    for config in itertools.chain(suite.configs(), extra):
        rid = run_id(config, family, memo)
        if rid not in seen:
            seen.add(rid)
            yield RunSpec(suite=suite.name, run_id=rid, config=config, family=suite.family, plugins=suite.plugins)


def select(specs: Iterable[RunSpec], filters: dict[str, list]) -> Iterator[RunSpec]:
    """Keep runs whose config matches every filter key (any of its values)."""
    for spec in specs:
        if all(spec.config.get(key) in values for key, values in filters.items()):
            yield spec


def ignored_key_warnings(family: Family, specs) -> list[str]:
    """One line per component key that runs set (to a value other than its default) while
    no component they use declares it: how many runs, and their methods."""
    schema = family.schema
    if not schema.owners:
        return []
    keys = family.keys
    ignoring: dict[str, list] = {}
    memo: dict[tuple, frozenset] = {}
    for spec in specs:
        named = tuple(spec.config.get(key) for key in family.registries)
        if named not in memo:
            memo[named] = schema.ignored(used_components(family, spec.config))
        for key in memo[named]:
            if key in spec.config and spec.config[key] != keys[key].default:
                ignoring.setdefault(key, []).append(spec.config["method"])
    lines = []
    for key, methods in sorted(ignoring.items(), key=lambda item: list(keys).index(item[0])):
        owners = ", ".join(sorted(name for _, name in schema.owners[key]))
        lines.append(f"{key}: set on {len(methods)} run{'s' * (len(methods) != 1)} whose components do not use it "
                     f"(methods {', '.join(sorted(set(methods)))}; only {owners} declare{'s' * (',' not in owners)} it): "
                     "left out of their run ids")
    return lines
