"""Finding families and components: installed packages through entry points, and a
suite's own ``plugins:``. The built-in families are found the same way as a third party's.

- Installed packages: entry points of the group ``harness.plugins``; each value is a
  module (``harness-example``'s pyproject: ``simpleshot = "harness_example.simpleshot"``).
  harness declares its own families so (``fewshot = "harness.fewshot.family"``...).
  ``HARNESS_DISABLE_PLUGIN_AUTOLOAD=1`` loads harness's own entry points only.
- A suite's ``plugins:`` key: importable module names, or ``.py`` paths relative to the
  suite file, for code that is not installed. Workers load the same list.

A plugin module is first READ (``harness.registry.read_declarations``): its
``register("<registry id>", "<name>", version=...)`` calls declare components, which
are imported only by a worker that runs them. A module that declares a family (a
top-level ``Family(...)``) is imported to read it, so it must not import torch.

A broken installed plugin never stops harness: it is shown by ``harness list`` and
named in the error when a suite asks for something it would have provided. A broken
plugin named by a suite stops that suite with one line.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness import HarnessError
from harness.api import Family
from harness.registry import (BUILT_IN, Entry, PluginError, Source, add_entries, digest_of, import_source,
                              local_closure, module_file, parse, read_declarations)

GROUP = "harness.plugins"
AUTOLOAD_OFF = "HARNESS_DISABLE_PLUGIN_AUTOLOAD"
OWN_DISTRIBUTION = "harness"


@dataclass
class Plugin:
    name: str  # the entry point's name, or the suite's item
    origin: str  # "built in", "plugin <distribution> <version> (<module>)", "plugin <path>"
    families: list = field(default_factory=list)  # family names it declares
    components: list = field(default_factory=list)  # (registry id, name)
    error: str | None = None


@dataclass
class Index:
    families: dict = field(default_factory=dict)  # name -> Family
    origins: dict = field(default_factory=dict)  # family name -> origin
    plugins: list = field(default_factory=list)  # every Plugin tried, in order (broken ones too)

    @property
    def broken(self) -> list:
        return [plugin for plugin in self.plugins if plugin.error]


_index: Index | None = None
_suite_plugins: dict[str, Plugin] = {}  # resolved item -> loaded plugin


def index() -> Index:
    """Every installed plugin, loaded once per process."""
    global _index
    if _index is None:
        _index = Index()
        for entry_point, origin in _entry_points():
            _load(_index, entry_point.name, origin, lambda ep=entry_point: _entry_point_source(ep, origin), isolate=True)
    return _index


def _entry_points():
    """(entry point, origin), harness's own first, then by distribution and name."""
    found = []
    for entry_point in metadata.entry_points(group=GROUP):
        dist = entry_point.dist
        own = dist is not None and dist.name == OWN_DISTRIBUTION
        if not own and os.environ.get(AUTOLOAD_OFF) == "1":
            continue
        origin = BUILT_IN if own else f"plugin {dist.name if dist else '?'} {dist.version if dist else ''} ({entry_point.value})"
        found.append((not own, dist.name if dist else "", entry_point.name, entry_point, origin))
    return [(ep, origin) for *_, ep, origin in sorted(found, key=lambda item: item[:3])]


def _entry_point_source(entry_point, origin: str) -> Source:
    if entry_point.attr:
        raise PluginError(f"{origin}: entry point value must be a module, not {entry_point.value!r}")
    return Source(module_file(entry_point.module), entry_point.module, origin)


def _declares_family(tree: ast.Module) -> bool:
    for node in tree.body:
        value = getattr(node, "value", None)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(value, ast.Call):
            func = value.func
            if (isinstance(func, ast.Name) and func.id == "Family") or (isinstance(func, ast.Attribute) and func.attr == "Family"):
                return True
    return False


def _load(target: Index, name: str, origin: str, source_of, isolate: bool) -> Plugin:
    """Read one plugin module and add what it declares; with ``isolate``, a problem marks
    the plugin broken instead of raising."""
    plugin = Plugin(name, origin)
    target.plugins.append(plugin)
    source = None
    try:
        source = source_of()
        tree = parse(source.path)
        declarations = read_declarations(source.path)
        families = []
        if _declares_family(tree):
            try:
                module = import_source(source)
            except HarnessError:
                raise
            except Exception as error:
                first = (str(error).strip().splitlines() or [""])[0]
                raise PluginError(f"{origin}: importing {source.module or source.path} failed: "
                                  f"{type(error).__name__}: {first}") from None
            families = [value for value in vars(module).values() if isinstance(value, Family)]
        for family in families:
            if family.name in target.families and target.families[family.name] is not family:
                raise PluginError(f"{origin}: family {family.name!r} is already declared by {target.origins[family.name]}")
        by_registry: dict[str, list] = {}
        for declaration in declarations:
            if declaration.registry is None:
                raise PluginError(f"{source.where(declaration.line)}: register({declaration.name!r}, ...) names no "
                                  f"registry: in a plugin write register(\"<family>.<key>\", {declaration.name!r}, version=...)")
            by_registry.setdefault(declaration.registry, []).append(
                Entry(declaration.name, declaration.version, source, declaration.line, declaration.meta))
        for registry_id, entries in by_registry.items():
            add_entries(registry_id, entries)
            plugin.components += [(registry_id, entry.name) for entry in entries]
        for family in families:
            object.__setattr__(family, "module", source.module or str(source.path))
            if origin != BUILT_IN:  # its own component folders are the plugin's, not harness's
                top = (source.module or "").partition(".")[0]
                for registry in family.registries.values():
                    if top and registry.package and registry.package.partition(".")[0] == top:
                        registry.origin = origin
                        registry._entries = None
            target.families[family.name] = family
            target.origins[family.name] = origin
            plugin.families.append(family.name)
        for registry_id, entries in by_registry.items():  # keys this plugin's components declare
            for owner in owners(target, registry_id):
                merge_component_keys(owner, entries)
        for family in families:  # a plugin family's own components, and what waited for it
            registries = family.registries.values()
            merge_component_keys(family, [e for r in registries for e in (r.entries().values() if origin != BUILT_IN
                                                                          else r._added)])
    except PluginError as error:
        message = str(error)
        suite_file = source is not None and origin == f"plugin {source.path}" and str(source.path) in message
        named = message.startswith(origin) or suite_file
        plugin.error = message if named else f"{origin}: {message}"
        if not isolate:
            raise PluginError(plugin.error) from None
    return plugin


def resolve_item(item: str, base: Path) -> str:
    """A suite's plugin item as the worker will load it: an absolute .py path, or a module name."""
    if item.endswith(".py") or "/" in item or os.sep in item:
        path = (base / item).resolve()
        if not path.is_file():
            raise PluginError(f"plugin {item!r}: no such file {path}")
        return str(path)
    return item


def activate(items) -> list[Plugin]:
    """Load a suite's (resolved) plugin items, once each per process; PluginError on a problem."""
    loaded = []
    for item in items:
        if item not in _suite_plugins:
            origin = f"plugin {item}"
            if item.endswith(".py"):
                source_of = lambda path=Path(item), o=origin: Source(path, None, o)
            else:
                source_of = lambda module=item, o=origin: Source(module_file(module), module, o)
            try:
                _suite_plugins[item] = _load(index(), item, origin, source_of, isolate=False)
            except PluginError:
                index().plugins.pop()  # not kept: the next attempt reads the file again
                raise
        loaded.append(_suite_plugins[item])
    return loaded


# ---------------------------------------------------------------- component keys


def owners(target: Index, registry_id: str) -> list:
    """The families (loaded so far) that have the registry of this id."""
    return [family for family in target.families.values()
            if any(registry.id == registry_id for registry in family.registries.values())]


def merge_component_keys(family, entries) -> None:
    """Add the config keys components declare (``keys={"knn_k": {"type": "int", "default": 5,
    "help": "...", "minimum": 1}}`` in their register call) to their family's schema. A
    key of another meaning under the same name is a PluginError naming both. (harness's own
    components declare none: their folders are not read for keys, which keeps planning fast.)"""
    for entry in entries:
        for name, spec in (entry.meta.get("keys") or {}).items():
            key = component_key(f"{entry.source.where(entry.line)}: {entry.name!r}: key {name!r}", name, spec, entry.name)
            old = family.keys.get(name)
            if old is not None and old != key:
                raise PluginError(f"{entry.source.where(entry.line)}: {entry.name!r}: key {name!r}: family "
                                  f"{family.name} already has a key {name!r} of another meaning")
            family.keys[name] = key


def component_key(where: str, name: str, spec, owner: str):
    """The Key a component's ``keys={name: spec}`` declares; PluginError naming ``where``."""
    from harness.api import _key_problems
    from harness.keys import Key

    types = {"int": int, "float": float, "bool": bool, "str": str}
    if not isinstance(spec, dict) or spec.get("type") not in types or "default" not in spec:
        raise PluginError(f"{where}: declare it as {{'type': 'int'|'float'|'bool'|'str', 'default': ..., 'help': ...}}")
    unknown = set(spec) - {"type", "default", "help", "minimum", "exclusive", "choices", "nullable"}
    if unknown:
        raise PluginError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    key = Key(types[spec["type"]], spec["default"], spec.get("help", f"{owner}'s {name}"),
              minimum=spec.get("minimum"), exclusive=spec.get("exclusive", False),
              choices=tuple(spec["choices"]) if spec.get("choices") else None, nullable=spec.get("nullable", False))
    problems = list(_key_problems(name, key))
    if problems:
        raise PluginError(f"{where}: {problems[0]}")
    return key


# ---------------------------------------------------------------- families


def family(name: str) -> Family:
    found = index()
    if name not in found.families:
        known = ", ".join(sorted(found.families)) or "none"
        raise HarnessError(f"unknown family {name!r} (known: {known}){broken_note()}")
    return found.families[name]


def families() -> list[Family]:
    return [index().families[name] for name in sorted(index().families)]


def origin(name: str) -> str:
    return index().origins.get(name, "?")


def broken_note() -> str:
    """'; plugin X failed to load: ...' for every broken installed plugin (for error messages)."""
    broken = index().broken
    return "".join(f"; {plugin.error}" for plugin in broken)


def family_files(fam: Family) -> list[Path]:
    """The files whose text makes the family's source digest: its declaring module, its
    trainer's module, its ``sources``, each with the files of its folder it imports."""
    files = set()
    modules = [fam.trainer.partition(":")[0], *fam.sources]
    if fam.module:
        modules.insert(0, fam.module)
    for module in modules:
        path = Path(module) if module.endswith(".py") else module_file(module)
        files.update(local_closure(path, None if module.endswith(".py") else module))
    return sorted(files)


_family_digests: dict[str, str] = {}


def family_digest(fam: Family) -> str:
    if fam.name not in _family_digests:
        _family_digests[fam.name] = digest_of(family_files(fam))
    return _family_digests[fam.name]
