"""Reading source files without running them: the ``register(...)`` declarations in a
file, the files of its own folder it imports (for source digests), whether a
"module:attribute" target exists and can be called; and importing a plugin file by path.

Planning reads; only a worker imports. A file is parsed once per process and version of
its bytes, and declarations are looked for among statements (decorators, calls), not in
every node: reading every component folder of a family stays a few milliseconds.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import keyword
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import HarnessError


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


# ---------------------------------------------------------------- declarations


def _literal(node: ast.AST, where: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise PluginError(f"{where}: register(...) arguments must be literals (strings, numbers, dicts)") from None


def _statements(body):
    """Every statement, nested ones (in if, try, class and def bodies) included."""
    for statement in body:
        yield statement
        for name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(statement, name, None)
            if isinstance(inner, list):
                yield from _statements(inner)


def _register_calls(tree: ast.Module):
    """The ``register(...)`` calls of decorators and of expression or assignment statements."""
    for statement in _statements(tree.body):
        roots = list(getattr(statement, "decorator_list", ()))
        if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) and statement.value is not None:
            roots.append(statement.value)
        for root in roots:
            for node in ast.walk(root):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                    if called == "register":
                        yield node


def read_declarations(path: Path) -> list[Declaration]:
    """Every ``register(...)`` call with literal string arguments in the file, in order."""
    found = []
    for node in _register_calls(parse(path)):
        if not node.args or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
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


def declares_family(path: Path) -> bool:
    """Whether the file assigns a ``Family(...)`` at its top level (it is imported to read it)."""
    for node in parse(path).body:
        value = getattr(node, "value", None)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(value, ast.Call):
            func = value.func
            if (isinstance(func, ast.Name) and func.id == "Family") or (isinstance(func, ast.Attribute) and func.attr == "Family"):
                return True
    return False


# ---------------------------------------------------------------- imports between files


def imported_names(tree: ast.Module, module: str | None, is_package: bool) -> set[str]:
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
        for imported in imported_names(tree, name, current.name == "__init__.py"):
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


# ---------------------------------------------------------------- importing


def module_name(path: Path) -> str:
    """The name a plugin file is imported under: its own name when ``import <name>`` finds
    this very file (so a family's "file:Trainer" target and the plugin loader share one
    module), else a name made unique by its path."""
    path = Path(path).resolve()
    stem = path.stem
    unique = f"harness_plugin_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if unique in sys.modules or not stem.isidentifier() or keyword.iskeyword(stem):
        return unique
    loaded = sys.modules.get(stem)
    if loaded is not None:
        return stem if _file_of(loaded) == path else unique
    try:
        spec = importlib.util.find_spec(stem)
    except (ImportError, ValueError):
        return unique
    found = Path(spec.origin).resolve() if spec is not None and spec.origin and spec.origin.endswith(".py") else None
    return stem if found == path else unique


def _file_of(module) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def import_file(path: Path):
    """Import a plugin file by path, once per process. Its folder goes on sys.path (at the
    end) so it can import the modules beside it."""
    path = Path(path).resolve()
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    name = module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    if name == path.stem:
        return importlib.import_module(name)
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
    return importlib.import_module(source.module) if source.module else import_file(source.path)


def import_problem(what: str, error: Exception) -> str:
    """'importing X failed: Type: first line of the message'."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"importing {what} failed: {type(error).__name__}: {first}"


# ---------------------------------------------------------------- targets


def target_problem(target: str) -> str | None:
    """Why a "module:attribute" target cannot be a callable, read from its module's text
    (nothing imported but its parent packages), or None: the module cannot be found,
    never binds the name (no def, class, assignment or import of it), or binds it only to
    a literal. A name it may bind in a way text cannot tell (``import *``,
    ``__getattr__``, ``globals()``) passes."""
    module, _, attr = target.partition(":")
    head = attr.split(".")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        return f"module {module!r} cannot be found ({type(error).__name__}: {error})"
    if spec is None:
        return f"module {module!r} cannot be found (is it installed, or on PYTHONPATH?)"
    if not spec.origin or not spec.origin.endswith(".py"):
        return None
    text = Path(spec.origin).read_text(encoding="utf-8", errors="replace")
    if "import *" in text or "__getattr__" in text:
        return None
    name = re.escape(head)
    if re.search(rf"^(?:async\s+def|def|class)\s+{name}\b", text, re.MULTILINE) or re.search(
            rf"^(?:from\s+\S+\s+)?import\s[^\n]*\b{name}\b", text, re.MULTILINE):
        return None
    literals = []
    for match in re.finditer(rf"^{name}\s*(?::[^=\n]*)?=(?!=)\s*(.+)$", text, re.MULTILINE):
        try:
            literals.append(ast.literal_eval(match.group(1).split("#")[0].strip()))
        except (ValueError, SyntaxError):
            return None  # bound to an expression: it may well be callable
    if literals:
        return f"{module}.{head} is not callable (it is {literals[-1]!r})"
    bound_somewhere = (rf"^\s*(?:async\s+def|def|class)\s+{name}\b", rf"^\s*{name}\s*(?::[^=\n]*)?=(?!=)",
                       rf"^\s*(?:from\s+\S+\s+)?import\s[^\n]*\b{name}\b", r"\bglobals\(\)|\bsetattr\(")
    if not any(re.search(pattern, text, re.MULTILINE) for pattern in bound_somewhere):
        return f"module {module} has no {head!r}"
    return None
