"""A family's full config schema: the keys it declares and the keys its components declare
(``keys=`` in their register calls), merged by the rules of ``harness.api`` ("Component
keys"). Pure Python: the components' files are read, never imported.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.keys import Key
from harness.sources import PluginError


class Keys(dict):
    """name -> Key, the full schema; ``declared`` is the family's own part (so a copy of a
    family made from its ``keys``, ``dataclasses.replace``, declares what it declared)."""

    declared: dict


@dataclass(frozen=True)
class Schema:
    keys: dict  # name -> Key: the family's own keys first, then its components'
    # key -> frozenset of (config key, component name) declaring it, for the keys that count
    # in a run's identity only where a component the run uses declares them
    owners: dict
    selectors: tuple  # the keys that select a variant of some component

    def ignored(self, used: dict) -> frozenset:
        """The component keys no component of ``used`` (config key -> name) declares."""
        pairs = set(used.items())
        return frozenset(key for key, owners in self.owners.items() if not owners & pairs)


def merge(family: str, declared: dict, registries: dict) -> Schema:
    """The schema of ``family`` from its ``declared`` keys and the components of its
    ``registries`` (config key -> Registry). PluginError naming the file and line of a
    component whose key contradicts another declaration."""
    added: dict[str, Key] = {}
    first: dict[str, str] = {}  # key -> where it was first declared by a component
    owners: dict[str, set] = {}
    selectors = []
    for config_key, registry in registries.items():
        for entry in registry.entries().values():
            for name, spec in entry.keys.items():
                where = f"{entry.where}: {registry.id} {entry.name!r}: key {name!r}"
                own = declared.get(name)
                if own is not None:
                    if own.type is not spec.key.type:
                        raise PluginError(f"{where}: family {family} declares {name!r} as {own.type.__name__}, "
                                          f"the component as {spec.key.type.__name__}: use another name")
                    if spec.versions and own.choices != spec.key.choices:
                        raise PluginError(f"{where}: family {family} declares the variant selector {name!r} "
                                          "with other choices than the component's")
                    if not own.overrides_component:
                        continue  # the family's own key: it counts for every run
                elif name in added and not added[name].same_meaning(spec.key):
                    raise PluginError(f"{where}: declared with another type, default, bounds or choices at {first[name]}")
                else:
                    added.setdefault(name, spec.key)
                    first.setdefault(name, entry.where)
                owners.setdefault(name, set()).add((config_key, entry.name))
                if spec.versions and name not in selectors:
                    selectors.append(name)
    for name, key in declared.items():
        if key.overrides_component and name not in owners:
            raise PluginError(f"family {family!r}: key {name!r} says it overrides a component's key "
                              "(overrides_component=True), but no component of the family declares it")
    keys = Keys(declared)
    keys.declared = declared
    for name, key in added.items():
        keys.setdefault(name, key)
    return Schema(keys, {name: frozenset(pairs) for name, pairs in owners.items()}, tuple(selectors))
