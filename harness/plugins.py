"""Finding families and components: installed packages through entry points, and a
suite's own ``plugins:``. The built-in families are found the same way as a third party's.

- Installed packages: entry points of the group ``harness.plugins``; each value is a
  module (``harness-example``'s pyproject: ``simpleshot = "harness_example.simpleshot"``).
  harness declares its own families so (``fewshot = "harness.fewshot.family"``...).
  ``HARNESS_DISABLE_PLUGIN_AUTOLOAD=1`` loads harness's own entry points only.
- A suite's ``plugins:`` key: importable module names, or ``.py`` paths relative to the
  suite file, for code that is not installed. Workers load the same list.

A plugin module is first READ (``harness.sources.read_declarations``): its
``register("<registry id>", "<name>", version=...)`` calls declare components, which
are imported only by a worker that runs them (and by ``harness run`` before dispatch).
A module that declares a family (a top-level ``Family(...)``) is imported to read it, so
it must not import torch (``harness list`` warns when one does). A family may live in
one local file with its registries and components (imported once, under its own name,
so its ``"file:Trainer"`` target is that same module).

One ``Discovery`` holds everything found; it fills the registries through their public
methods (``Registry.add``, ``set_origin``). ``reset()`` forgets it (and the plugin files'
modules): the next question discovers again, as a fresh process would.

A broken installed plugin never stops harness: it is shown by ``harness list`` and
named in the error when a suite asks for something it would have provided. A broken
plugin named by a suite stops that suite with one line.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness import HarnessError
from harness.api import Family
from harness.registry import BUILT_IN, REGISTRIES, Entry, make_entry
from harness.sources import (
    PluginError,
    Source,
    declares_family,
    digest_of,
    import_file,
    import_problem,
    import_source,
    imported_names,
    local_closure,
    module_file,
    parse,
    read_declarations,
)

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
    warnings: list = field(default_factory=list)  # what works but should not be so (one line each)


class Discovery:
    """The families and components found in this process (see the module docstring)."""

    def __init__(self):
        self.families: dict[str, Family] = {}
        self.origins: dict[str, str] = {}  # family name -> origin
        self.plugins: list[Plugin] = []  # every plugin tried, in order (broken ones too)
        self._installed = False
        self._suite_plugins: dict[str, Plugin] = {}  # resolved item -> loaded plugin
        self._waiting: dict[str, list[Entry]] = {}  # registry id -> entries declared before it exists
        self._files: set[Path] = set()  # plugin files loaded by path (their modules go on reset)
        self._created: list[str] = []  # registries those files created
        self._path_before = list(sys.path)
        self._digests: dict[str, str] = {}

    @property
    def broken(self) -> list[Plugin]:
        return [plugin for plugin in self.plugins if plugin.error]

    def load_installed(self) -> Discovery:
        """Every installed plugin, once."""
        if not self._installed:
            self._installed = True  # before loading: a family module asking for families sees what exists so far
            for entry_point, origin in _entry_points():
                self._load(entry_point.name, origin, lambda ep=entry_point, o=origin: _entry_point_source(ep, o),
                           isolate=True)
            REGISTRIES.broken_note = "".join(f"; {plugin.error}" for plugin in self.broken)
        return self

    # -- loading one plugin ---------------------------------------------------

    def _load(self, name: str, origin: str, source_of, isolate: bool) -> Plugin:
        """Read one plugin module and add what it declares, all or nothing; with ``isolate``,
        a problem marks the plugin broken instead of raising."""
        plugin = Plugin(name, origin)
        self.plugins.append(plugin)
        source, given = None, []
        try:
            source = source_of()
            declarations = read_declarations(source.path)
            families = self._import_families(source, plugin) if declares_family(source.path) else []
            for family in families:
                if family.name in self.families and self.families[family.name] is not family:
                    raise PluginError(f"{origin}: family {family.name!r} is already declared by "
                                      f"{self.origins[family.name]}")
            by_registry: dict[str, list] = {}
            for declaration in declarations:
                if declaration.registry is None:
                    raise PluginError(f"{source.where(declaration.line)}: register({declaration.name!r}, ...) names no "
                                      f"registry: in a plugin write register(\"<family>.<key>\", {declaration.name!r}, "
                                      "version=...)")
                by_registry.setdefault(declaration.registry, []).append(
                    make_entry(declaration.name, declaration.version, source, declaration.line, declaration.meta))
            for family in families:
                family.declared_in(source.module or str(source.path))
                if origin != BUILT_IN:  # its own component folders are the plugin's, not harness's
                    top = (source.module or "").partition(".")[0]
                    for registry in family.registries.values():
                        if top and registry.package and registry.package.partition(".")[0] == top:
                            registry.set_origin(origin)
            for registry_id, entries in by_registry.items():
                given += self._give(registry_id, entries)
                plugin.components += [(registry_id, entry.name) for entry in entries]
            given += self._hand_over_waiting()
            self._check(families, {registry for registry, entries in given if any(e.keys for e in entries)},
                        plugin_family=origin != BUILT_IN)
            for family in families:
                self.families[family.name] = family
                self.origins[family.name] = origin
                plugin.families.append(family.name)
        except PluginError as error:
            for registry, entries in given:
                registry.withdraw(entries)
            message = str(error)
            suite_file = source is not None and origin == f"plugin {source.path}" and str(source.path) in message
            named = message.startswith(origin) or suite_file
            plugin.error = message if named else f"{origin}: {message}"
            if not isolate:
                raise PluginError(plugin.error) from None
        return plugin

    def _import_families(self, source: Source, plugin: Plugin) -> list[Family]:
        """Import a module that declares a family; its Family objects."""
        torch_before = "torch" in sys.modules
        registries_before = set(REGISTRIES.ids())
        try:
            module = import_source(source)
        except HarnessError:
            raise
        except Exception as error:
            raise PluginError(f"{plugin.origin}: {import_problem(source.module or source.path, error)}") from error
        finally:
            if source.module is None:
                self._files.add(Path(source.path).resolve())
                self._created += [id for id in REGISTRIES.ids() if id not in registries_before]
        known = set(map(id, self.families.values()))  # a family it imports from elsewhere is not its own
        families = [value for value in vars(module).values() if isinstance(value, Family) and id(value) not in known]
        if families and _imports_torch(source, torch_before):
            names = ", ".join(family.name for family in families)
            plugin.warnings.append(f"family {names}: its module {source.module or source.path} imports torch, and "
                                   "every plan imports it: move torch into the trainer's module")
        return families

    def _give(self, registry_id: str, entries: list[Entry]) -> list:
        """Hand declarations to their registry, or keep them until it exists; (registry, entries) given."""
        registry = REGISTRIES.get(registry_id)
        if registry is not None:
            registry.add(entries)
            return [(registry, entries)]
        waiting = {entry.name: entry for entry in self._waiting.get(registry_id, [])}
        for entry in entries:
            old = waiting.get(entry.name)
            if old is not None:
                raise PluginError(f"{entry.origin}: {registry_id} {entry.name!r} is registered twice "
                                  f"({entry.where}, and by {old.origin} at {old.where})")
        self._waiting.setdefault(registry_id, []).extend(entries)
        return []

    def _hand_over_waiting(self) -> list:
        given = []
        for registry_id in [id for id in self._waiting if REGISTRIES.get(id) is not None]:
            given += self._give(registry_id, self._waiting.pop(registry_id))
        return given

    def _check(self, families: list[Family], keyed_registries: set, plugin_family: bool) -> None:
        """What a plugin brings must fit: its families' targets exist and can be called, and
        the keys its components declare agree with their families' (PluginError)."""
        for family in families:
            problem = next(family.target_problems(), None)
            if problem:
                raise PluginError(f"family {family.name!r}: {problem}")
        owners = [family for family in [*self.families.values(), *families]
                  if set(family.registries.values()) & keyed_registries]
        for family in owners + (families if plugin_family else []):
            family.schema  # noqa: B018 (merging the keys raises PluginError on a contradiction)

    # -- a suite's plugins ----------------------------------------------------

    def activate(self, items) -> list[Plugin]:
        """Load a suite's (resolved) plugin items, once each; PluginError on a problem."""
        self.load_installed()
        loaded = []
        for item in items:
            if item not in self._suite_plugins:
                origin = f"plugin {item}"
                if item.endswith(".py"):
                    source_of = lambda path=Path(item), o=origin: Source(path, None, o)
                else:
                    source_of = lambda module=item, o=origin: Source(module_file(module), module, o)
                try:
                    self._suite_plugins[item] = self._load(item, origin, source_of, isolate=False)
                except PluginError:
                    self.plugins.pop()  # not kept: the next attempt reads the file again
                    raise
                if item.endswith(".py"):
                    self._files.add(Path(item).resolve())
            loaded.append(self._suite_plugins[item])
        return loaded

    def import_all(self, items) -> None:
        """Import every (resolved) item, as ``harness run`` does before dispatching anything:
        a plugin that cannot be imported is a PluginError naming it, even one no run uses."""
        for item in items:
            registries_before = set(REGISTRIES.ids())
            try:
                import_file(Path(item)) if item.endswith(".py") else importlib.import_module(item)
            except HarnessError:
                raise
            except Exception as error:
                problem = import_problem(item, error).replace(f"importing {item} failed", "import failed", 1)
                raise PluginError(f"plugin {item}: {problem}") from error
            finally:
                if item.endswith(".py"):
                    self._files.add(Path(item).resolve())
                    self._created += [id for id in REGISTRIES.ids() if id not in registries_before]

    # -- families -------------------------------------------------------------

    def family(self, name: str) -> Family:
        self.load_installed()
        if name not in self.families:
            known = ", ".join(sorted(self.families)) or "none"
            raise HarnessError(f"unknown family {name!r} (known: {known}){REGISTRIES.broken_note}")
        return self.families[name]

    def all_families(self) -> list[Family]:
        self.load_installed()
        return [self.families[name] for name in sorted(self.families)]

    def origin(self, name: str) -> str:
        return self.load_installed().origins.get(name, "?")

    def family_digest(self, fam: Family) -> str:
        if fam.name not in self._digests:
            self._digests[fam.name] = digest_of(family_files(fam))
        return self._digests[fam.name]

    # -- forgetting -----------------------------------------------------------

    def forget(self) -> None:
        """Undo what discovery did to this process: the entries it gave registries, the
        modules of the plugin files it loaded (and of the files beside them), the registries
        those created, the folders it put on sys.path."""
        folders = {str(path.parent) for path in self._files}
        gone = set()
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and str(Path(file).resolve().parent) in folders:
                del sys.modules[name]
                gone.add(name)
        for id in self._created:
            REGISTRIES.forget(id)
        for id in REGISTRIES.ids():
            REGISTRIES.get(id).remove_added(gone)
        sys.path[:] = [entry for entry in sys.path if entry not in folders or entry in self._path_before]
        REGISTRIES.broken_note = ""
        importlib.invalidate_caches()


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


def _imports_torch(source: Source, torch_before: bool) -> bool:
    """Whether importing the module imported torch: seen in sys.modules when torch was not
    there before; else read from the imports of the module and the files of its folder it
    imports."""
    if not torch_before:
        return "torch" in sys.modules
    for path in local_closure(source.path, source.module):
        names = imported_names(parse(path), source.module, path.name == "__init__.py")
        if any(name == "torch" or name.startswith("torch.") for name in names):
            return True
    return False


def resolve_item(item: str, base: Path) -> str:
    """A suite's plugin item as the worker will load it: an absolute .py path, or a module name."""
    if item.endswith(".py") or "/" in item or os.sep in item:
        path = (base / item).resolve()
        if not path.is_file():
            raise PluginError(f"plugin {item!r}: no such file {path}")
        return str(path)
    return item


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


# ---------------------------------------------------------------- this process's discovery

_current: Discovery | None = None


def index() -> Discovery:
    """This process's discovery, with every installed plugin loaded."""
    global _current
    if _current is None:
        _current = Discovery()
    return _current.load_installed()


def reset() -> None:
    """Forget every plugin found (see ``Discovery.forget``): the next question discovers again."""
    global _current
    if _current is not None:
        _current.forget()
        _current = None


def activate(items) -> list[Plugin]:
    return index().activate(items)


def import_all(items) -> None:
    index().import_all(items)


def family(name: str) -> Family:
    return index().family(name)


def families() -> list[Family]:
    return index().all_families()


def origin(name: str) -> str:
    return index().origin(name)


def broken_note() -> str:
    """'; plugin X failed to load: ...' for every broken installed plugin (for error messages)."""
    index()
    return REGISTRIES.broken_note


def family_digest(fam: Family) -> str:
    return index().family_digest(fam)
