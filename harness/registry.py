"""Registries of components (methods, datasets, backbones, heads, optimizers, models):
names that can be listed, versioned and fingerprinted without importing any of them.

A registry has an id, ``<family>.<config key>`` (``fewshot.method``). It is a container:

- the entries of its own package folder (``Registry("fewshot.method",
  package="harness.fewshot.methods")``): every module not starting with ``_`` is READ
  (``harness.sources``), never imported, and each call ``register("mtl", version="1")``
  in it declares one entry (once per process);
- the entries it is given (``add``): what the plugin loader (``harness.plugins``) read
  in plugin modules, ``register("fewshot.method", "simpleshot", version="1")``;
- the objects registered when a component's module is imported (its decorator).

The arguments of a declaration must be literals. ``version`` is required: bump it when
the component's results change (it is part of every run id that uses it). Other
keywords are kept as metadata: ``uses={"eval_head": "centroid"}`` says which component
a run uses when that config key is null; ``keys={...}`` declares config keys (see
``harness.api``, "Component keys").

``get(name)`` imports the one module that declares ``name``; executing its decorator
hands the object over. A component's ``digest`` is a hash of its file and of the files
of its own folder that it imports (directly or through each other).

``REGISTRIES`` knows every registry of the process by id: the qualified decorator
``register(id, name, ...)`` finds its registry there (an object registered before its
registry exists waits for it).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import HarnessError
from harness.keys import ComponentKey, component_key
from harness.sources import (
    PluginError,
    Source,
    digest_of,
    import_problem,
    import_source,
    local_closure,
    read_declarations,
)

BUILT_IN = "built in"


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    source: Source
    line: int
    meta: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict, compare=False)  # config key -> ComponentKey (``keys=`` in meta)

    @property
    def origin(self) -> str:
        return self.source.origin

    @property
    def where(self) -> str:
        return self.source.where(self.line)


def make_entry(name: str, version: str, source: Source, line: int, meta: dict) -> Entry:
    """An entry, its ``keys=`` checked: PluginError naming the file and line of a bad one."""
    declared = meta.get("keys") or {}
    where = f"{source.where(line)}: {name!r}"
    if not isinstance(declared, dict):
        raise PluginError(f"{where}: keys must be a dict of key name -> spec")
    keys: dict[str, ComponentKey] = {}
    for key_name, spec in declared.items():
        parsed, problem = component_key(key_name, spec, name)
        if problem:
            raise PluginError(f"{where}: key {key_name!r}: {problem}")
        keys[key_name] = parsed
    return Entry(name, version, source, line, meta, keys)


class Registries:
    """Every registry of this process by id, and objects registered for one not created yet.
    ``revision`` counts changes of any registry's entries (the families' schemas follow it)."""

    def __init__(self):
        self._by_id: dict[str, Registry] = {}
        self._waiting: dict[str, dict[str, Any]] = {}  # id -> {name: object}
        self.revision = 0
        self.broken_note = ""  # "; <plugin>: <problem>" for every broken installed plugin

    def add(self, registry: Registry) -> dict[str, Any]:
        """Record a new registry; returns the objects registered for it before it existed."""
        if registry.id in self._by_id:
            raise PluginError(f"registry {registry.id!r} is created twice (a module that creates it is imported "
                              "twice, under two names?)")
        self._by_id[registry.id] = registry
        self.changed()
        return self._waiting.pop(registry.id, {})

    def get(self, id: str) -> Registry | None:
        return self._by_id.get(id)

    def ids(self) -> list[str]:
        return list(self._by_id)

    def forget(self, id: str) -> None:
        """Drop a registry (its module is gone: a later import creates it anew)."""
        self._by_id.pop(id, None)
        self._waiting.pop(id, None)
        self.changed()

    def wait(self, id: str, name: str, obj: Any) -> None:
        self._waiting.setdefault(id, {})[name] = obj

    def changed(self) -> None:
        self.revision += 1


REGISTRIES = Registries()


class Registry:
    """The named components of one config key of one family (see the module docstring)."""

    def __init__(self, id: str, package: str | None = None):
        self.id = id
        self.kind = id.rpartition(".")[2].replace("_", " ")  # "method", "eval head"
        self.package = package
        self.origin = BUILT_IN  # of the package's entries: the plugin that declared its family
        self._scanned: dict[str, Entry] | None = None  # the package's entries, read once
        self._added: list[Entry] = []
        self._entries: dict[str, Entry] | None = None
        self._objects: dict[str, Any] = {}
        self._objects.update(REGISTRIES.add(self))

    def __repr__(self) -> str:
        return f"Registry({self.id!r})"

    # -- declarations ---------------------------------------------------

    def folder(self) -> Path | None:
        if self.package is None:
            return None
        spec = importlib.util.find_spec(self.package)
        return Path(next(iter(spec.submodule_search_locations)))

    def _scan_package(self) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        folder = self.folder()
        if folder is None:
            return entries
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            source = Source(path, f"{self.package}.{path.stem}", self.origin)
            for declaration in read_declarations(path):
                if declaration.registry not in (None, self.id):
                    continue
                if declaration.name in entries:
                    first = entries[declaration.name]
                    raise PluginError(f"{source.where(declaration.line)}: {self.kind} {declaration.name!r} is declared "
                                      f"twice (first at {first.where})")
                entries[declaration.name] = make_entry(declaration.name, declaration.version, source, declaration.line,
                                                       declaration.meta)
        return entries

    def entries(self) -> dict[str, Entry]:
        """name -> Entry: the package's own entries and those added, as of now."""
        if self._entries is None:
            if self._scanned is None:
                self._scanned = self._scan_package()
            entries = dict(self._scanned)
            for entry in self._added:
                self._check_new(entries, entry)
                entries[entry.name] = entry
            self._entries = entries
        return self._entries

    def _check_new(self, entries: dict[str, Entry], entry: Entry) -> None:
        old = entries.get(entry.name)
        if old is None:
            return
        if old.origin == BUILT_IN or old.source.path.parent == Path(self.folder() or "/nowhere"):
            whose = "the built-in one" if old.origin == BUILT_IN else f"the one of {old.origin}"
            raise PluginError(f"{entry.origin}: {self.id} {entry.name!r} clashes with {whose} ({old.where}); "
                              "choose another name")
        raise PluginError(f"{entry.origin}: {self.id} {entry.name!r} is registered twice "
                          f"({entry.where}, and by {old.origin} at {old.where})")

    def add(self, entries: list[Entry]) -> None:
        """Add a plugin's declarations, all or none (a clash raises PluginError)."""
        current = dict(self.entries())
        for entry in entries:
            self._check_new(current, entry)
            current[entry.name] = entry
        self._entries = current
        self._added.extend(entries)
        REGISTRIES.changed()

    def withdraw(self, entries: list[Entry]) -> None:
        """Take back entries given by ``add`` (a plugin that turned out broken)."""
        self._added = [entry for entry in self._added if entry not in entries]
        self._entries = None
        REGISTRIES.changed()

    def remove_added(self, modules: set[str] = frozenset()) -> None:
        """Forget every entry given by ``add``, and the objects registered by ``modules``."""
        self._added = []
        self._entries = None
        self._objects = {name: obj for name, obj in self._objects.items()
                         if getattr(obj, "__module__", None) not in modules}
        REGISTRIES.changed()

    def set_origin(self, origin: str) -> None:
        """Whose the package's entries are (the plugin that declared the registry's family)."""
        if origin != self.origin:
            self.origin = origin
            self._scanned = self._entries = None
            REGISTRIES.changed()

    def missing_note(self) -> str:
        """What to add to 'unknown <kind>': the installed plugins that failed to load."""
        return REGISTRIES.broken_note

    def names(self) -> list[str]:
        return sorted(self.entries())

    def entry(self, name: str) -> Entry:
        entries = self.entries()
        if name not in entries:
            raise HarnessError(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(entries))})")
        return entries[name]

    def version(self, name: str) -> str:
        return self.entry(name).version

    def uses(self, name: str) -> dict:
        """The components this one uses when their config keys are null (its ``uses=``)."""
        return dict(self.entry(name).meta.get("uses") or {})

    def digest(self, name: str) -> str:
        source = self.entry(name).source
        return digest_of(local_closure(source.path, source.module))

    # -- component keys -------------------------------------------------

    def keys(self, name: str) -> dict[str, ComponentKey]:
        """The config keys the component declares (``keys=`` in its register call)."""
        return self.entry(name).keys

    def options(self, name: str, config: dict) -> dict:
        """``{arg: config[key]}`` for every key the component declares: the keyword arguments
        it is built with. ``config`` is resolved (every key of the family's schema)."""
        missing = [key for key in self.keys(name) if key not in config]
        if missing:
            raise HarnessError(f"{self.id} {name!r}: the config has no {', '.join(missing)} (resolve it with the "
                               "family's defaults first)")
        return {spec.arg: config[key] for key, spec in self.keys(name).items()}

    def variants(self, name: str, config: dict) -> dict:
        """``{key: [choice, version]}`` for each variant selector of the component whose value
        in ``config`` is not its default: what a run id adds to the component's version."""
        found = {}
        for key, spec in self.keys(name).items():
            variant = spec.variant(config.get(key, spec.key.default))
            if variant is not None:
                found[key] = variant
        return found

    # -- objects --------------------------------------------------------

    def register(self, name: str, version: str | int | None = None, **meta) -> Callable[[Any], Any]:
        """Decorator: ``@METHODS.register("mtl", version="1")``. What it decorates is what
        ``get("mtl")`` returns; the arguments are read from the source by ``entries``."""

        def decorate(obj: Any) -> Any:
            if name in self._objects and self._objects[name] is not obj:
                raise PluginError(f"{self.id} {name!r} is registered twice at import time")
            self._objects[name] = obj
            return obj

        return decorate

    def get(self, name: str) -> Any:
        entry = self.entry(name)
        if name not in self._objects:
            try:
                import_source(entry.source)
            except HarnessError:
                raise
            except Exception as error:
                what = str(entry.source.module or entry.source.path)
                problem = import_problem(what, error)
                if what in entry.origin:
                    problem = problem.replace(f"importing {what} failed", "import failed", 1)
                raise PluginError(f"{entry.origin}: {problem}") from error
            if name not in self._objects:
                raise PluginError(f"{entry.where} declares {self.id} {name!r}, but importing it did not register it")
        return self._objects[name]


def register(registry_id: str, name: str, version: str | int | None = None, **meta) -> Callable[[Any], Any]:
    """The qualified decorator for plugins: ``@register("fewshot.method", "simpleshot", version="1")``."""

    def decorate(obj: Any) -> Any:
        target = REGISTRIES.get(registry_id)
        if target is not None:
            return target.register(name, version, **meta)(obj)
        REGISTRIES.wait(registry_id, name, obj)
        return obj

    return decorate
