"""Registries of components (methods, datasets, backbones, heads, optimizers, models):
names that can be listed, versioned and fingerprinted without importing any of them.

A registry has an id, ``<family>.<config key>`` (``fewshot.method``). Its entries are
declared in source files, which are READ (``ast``), never imported, to list names,
check suites and compute run ids; so planning imports no model code and no torch:

- a package folder (``Registry("fewshot.method", package="harness.fewshot.methods")``):
  every module not starting with ``_`` is read, and each call
  ``register("mtl", version="1")`` in it declares one entry;
- a plugin module or file (``harness.plugins``): each call
  ``register("fewshot.method", "simpleshot", version="1")`` declares an entry of the
  registry it names (the qualified form, ``harness.api.register``).

The arguments of a declaration must be literals. ``version`` is required: bump it when
the component's results change (it is part of every run id that uses it). Other
keywords are kept as metadata; ``uses={"eval_head": "centroid"}`` says which component
a run uses when that config key is null.

``get(name)`` imports the one module that declares ``name``; executing its decorator
hands the object over. A component's ``digest`` is a hash of its file and of the files
of its own folder that it imports (directly or through each other).
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import HarnessError

BUILT_IN = "built in"


class PluginError(HarnessError):
    """A plugin or a declaration that cannot be used: one line naming it and the problem."""


@dataclass(frozen=True)
class Declaration:
    """One ``register(...)`` call found in a source file."""

    registry: str | None  # the qualified form names its registry; the folder form does not
    name: str
    version: str
    meta: dict
    line: int


@dataclass(frozen=True)
class Source:
    """A file that declares components: importable as ``module`` (or by path when None)."""

    path: Path
    module: str | None
    origin: str  # "built in", or which plugin

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    source: Source
    line: int
    meta: dict = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.source.origin


# ---------------------------------------------------------------- reading source files


def _literal(node: ast.AST, where: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise PluginError(f"{where}: register(...) arguments must be literals (strings, numbers, dicts)") from None


def read_declarations(path: Path) -> list[Declaration]:
    """Every ``register(...)`` call with literal string arguments in the file, in order."""
    tree = parse(path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if called != "register" or not node.args or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
            continue
        where = f"{path}:{node.lineno}"
        if len(node.args) > 2:
            raise PluginError(f"{where}: register(...) takes a name, or a registry id and a name")
        keywords = {k.arg: _literal(k.value, where) for k in node.keywords if k.arg is not None}
        if "version" not in keywords:
            raise PluginError(f"{where}: register({', '.join(repr(a.value) for a in node.args)}) needs version=... "
                              "(bump it when the component's results change)")
        version = keywords.pop("version")
        if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
            raise PluginError(f"{where}: version must be a non-empty string or an integer, got {version!r}")
        registry, name = (None, node.args[0].value) if len(node.args) == 1 else (node.args[0].value, node.args[1].value)
        found.append(Declaration(registry, name, str(version), keywords, node.lineno))
    found.sort(key=lambda d: d.line)
    return found


_parsed: dict[tuple, ast.Module] = {}


def parse(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per process and file version."""
    try:
        stat = os.stat(path)
    except OSError:
        stat = None
    known = (str(path), stat.st_mtime_ns, stat.st_size) if stat else None
    if known in _parsed:
        return _parsed[known]
    tree = _parse(path)
    if known:
        _parsed[known] = tree
    return tree


def _parse(path: Path) -> ast.Module:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PluginError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise PluginError(f"{path}:{error.lineno}: SyntaxError: {error.msg}") from None


def _imported_names(tree: ast.Module, module: str | None, is_package: bool) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    package = (module if is_package else module.rpartition(".")[0]) if module else ""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[:len(parts) - node.level + 1]) if node.level <= len(parts) + 1 else ""
                base = ".".join(filter(None, [base, node.module or ""]))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return names


def local_closure(path: Path, module: str | None) -> list[Path]:
    """The file and the files of its own folder that it imports, directly or through each other."""
    path = Path(path).resolve()
    folder = path.parent
    own_package = module.rpartition(".")[0] if module else None
    seen, todo = {path}, [(path, module)]
    while todo:
        current, name = todo.pop()
        tree = parse(current)
        for imported in _imported_names(tree, name, current.name == "__init__.py"):
            parent, _, leaf = imported.rpartition(".")
            if (own_package is not None and parent == own_package) or (own_package in (None, "") and not parent):
                candidate = folder / f"{leaf}.py"
                if candidate.exists() and candidate.resolve() not in seen:
                    seen.add(candidate.resolve())
                    todo.append((candidate.resolve(), f"{own_package}.{leaf}" if own_package else leaf))
    return sorted(seen)


_digests: dict[tuple, str] = {}


def digest_of(files) -> str:
    """sha256 of the files' names and bytes, 16 hex digits (cached per process)."""
    files = tuple(sorted(Path(f) for f in files))
    if files not in _digests:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
        _digests[files] = digest.hexdigest()[:16]
    return _digests[files]


def module_file(module: str) -> Path:
    """The source file of an importable module, found without importing it (its parent
    packages are imported)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise PluginError(f"module {module!r} cannot be found ({type(error).__name__}: {error})") from None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise PluginError(f"module {module!r} cannot be found (is it installed, or on PYTHONPATH?)")
    return Path(spec.origin)


def import_file(path: Path, origin: str):
    """Import a plugin file by path, under a name made unique by its path, once per process.
    Its folder goes on sys.path so it can import the modules beside it."""
    path = Path(path).resolve()
    name = f"harness_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_source(source: Source):
    return importlib.import_module(source.module) if source.module else import_file(source.path, source.origin)


# ---------------------------------------------------------------- registries

_REGISTRIES: dict[str, "Registry"] = {}
_PENDING_ENTRIES: dict[str, list[Entry]] = {}  # declared for a registry not created yet
_PENDING_OBJECTS: dict[str, dict[str, Any]] = {}  # registered at import time for one not created yet


class Registry:
    """The named components of one config key of one family (see the module docstring)."""

    def __init__(self, id: str, package: str | None = None):
        if id in _REGISTRIES:
            raise PluginError(f"registry {id!r} is created twice")
        self.id = id
        self.kind = id.rpartition(".")[2].replace("_", " ")  # "method", "eval head"
        self.package = package
        self.origin = BUILT_IN  # of the package's entries: the plugin that declared its family
        self._entries: dict[str, Entry] | None = None
        self._added: list[Entry] = list(_PENDING_ENTRIES.pop(id, []))
        self._objects: dict[str, Any] = dict(_PENDING_OBJECTS.pop(id, {}))
        _REGISTRIES[id] = self

    # -- declarations ---------------------------------------------------

    def _folder(self) -> Path | None:
        if self.package is None:
            return None
        spec = importlib.util.find_spec(self.package)
        return Path(list(spec.submodule_search_locations)[0])

    def _scan_package(self) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        if self.package is None:
            return entries
        folder = self._folder()
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            source = Source(path, f"{self.package}.{path.stem}", self.origin)
            for declaration in read_declarations(path):
                if declaration.registry not in (None, self.id):
                    continue
                if declaration.name in entries:
                    raise PluginError(f"{source.where(declaration.line)}: {self.kind} {declaration.name!r} is declared twice "
                                      f"(first at {entries[declaration.name].source.where(entries[declaration.name].line)})")
                entries[declaration.name] = Entry(declaration.name, declaration.version, source, declaration.line,
                                                  declaration.meta)
        return entries

    def entries(self) -> dict[str, Entry]:
        from harness import plugins

        plugins.index()  # installed plugins add entries (returns at once while they are being loaded)
        if self._entries is None:
            entries = self._scan_package()
            for entry in self._added:
                self._check_new(entries, entry)
                entries[entry.name] = entry
            self._entries = entries
        return self._entries

    def _check_new(self, entries: dict[str, Entry], entry: Entry) -> None:
        old = entries.get(entry.name)
        if old is None:
            return
        if old.origin == BUILT_IN or old.source.path.parent == Path(self._folder() or "/nowhere"):
            whose = "the built-in one" if old.origin == BUILT_IN else f"the one of {old.origin}"
            raise PluginError(f"{entry.origin}: {self.id} {entry.name!r} clashes with {whose} "
                              f"({old.source.where(old.line)}); choose another name")
        raise PluginError(f"{entry.origin}: {self.id} {entry.name!r} is registered twice "
                          f"({entry.source.where(entry.line)}, and by {old.origin} at {old.source.where(old.line)})")

    def add(self, entries: list[Entry]) -> None:
        """Add a plugin's declarations, all or none (a clash raises PluginError)."""
        current = dict(self.entries())
        for entry in entries:
            self._check_new(current, entry)
            current[entry.name] = entry
        self._entries = current
        self._added.extend(entries)

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
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                what = str(entry.source.module or entry.source.path)
                doing = "import failed" if what in entry.origin else f"importing {what} failed"
                raise PluginError(f"{entry.origin}: {doing}: {type(error).__name__}: {first}") from error
            if name not in self._objects:
                raise PluginError(f"{entry.source.where(entry.line)} declares {self.id} {name!r}, "
                                  "but importing it did not register it")
        return self._objects[name]


def registry(id: str) -> Registry | None:
    return _REGISTRIES.get(id)


def add_entries(registry_id: str, entries: list[Entry]) -> None:
    """Declarations of a plugin for ``registry_id``; kept until that registry exists."""
    target = _REGISTRIES.get(registry_id)
    if target is None:
        pending = _PENDING_ENTRIES.setdefault(registry_id, [])
        names = {e.name: e for e in pending}
        for entry in entries:
            if entry.name in names:
                old = names[entry.name]
                raise PluginError(f"{entry.origin}: {registry_id} {entry.name!r} is registered twice "
                                  f"({entry.source.where(entry.line)}, and by {old.origin} at {old.source.where(old.line)})")
        pending.extend(entries)
    else:
        target.add(entries)


def register(registry_id: str, name: str, version: str | int | None = None, **meta) -> Callable[[Any], Any]:
    """The qualified decorator for plugins: ``@register("fewshot.method", "simpleshot", version="1")``."""

    def decorate(obj: Any) -> Any:
        target = _REGISTRIES.get(registry_id)
        if target is not None:
            return target.register(name, version, **meta)(obj)
        _PENDING_OBJECTS.setdefault(registry_id, {})[name] = obj
        return obj

    return decorate
