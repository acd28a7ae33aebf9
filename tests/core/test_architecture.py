"""The core knows no family: its modules never import a family package, they import each
other without a cycle, and the built-in families are found through the same entry points
as a third party's."""
from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import pytest

import harness
from harness import plugins

CORE = sorted(Path(harness.__file__).parent.glob("*.py")) + sorted(Path(harness.__file__).parent.glob("report/*.py"))
FAMILY_PACKAGES = ("harness.fewshot", "harness.multitask", "harness.rl")


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of the file names, at module level or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def core_imports() -> dict[str, set[str]]:
    """core module -> the core modules it imports (``from harness import x`` counts as x)."""
    core = {path.stem for path in CORE} - {"__init__"}
    return {path.stem: {name.split(".")[1] for name in imported_modules(path)
                        if name.startswith("harness.") and name.count(".") >= 1 and name.split(".")[1] in core}
            - {path.stem} for path in CORE}


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (its modules in order, the first again at the end), or None."""
    done: set[str] = set()

    def visit(module, path):
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            found = visit(imported, path + [module])
            if found:
                return found
        done.add(module)
        return None

    return next((cycle for module in sorted(graph) if (cycle := visit(module, []))), None)


def test_no_core_module_imports_a_family_package():
    assert len(CORE) > 10
    offenders = {str(path): sorted(m for m in imported_modules(path) if m.startswith(FAMILY_PACKAGES))
                 for path in CORE}
    assert not {name: found for name, found in offenders.items() if found}


def test_the_core_modules_import_each_other_without_a_cycle():
    graph = core_imports()
    assert {"api", "registry"} <= graph["plugins"] and "keys" in graph["api"]  # the walk sees the imports
    cycle = a_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"
    assert a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]  # the check finds one
    assert a_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_built_in_families_come_from_harness_own_entry_points():
    own = {ep.name: ep.value for ep in metadata.entry_points(group=plugins.GROUP) if ep.dist.name == "harness"}
    assert own["fewshot"] == "harness.fewshot.family" and own["multitask"] == "harness.multitask.family"
    for name, module in own.items():
        assert plugins.origin(name) == "built in"
        assert plugins.family(name).module == module


def test_a_registry_answers_from_what_it_holds_without_discovering_plugins(monkeypatch):
    from harness.multitask.optimizers import OPTIMIZERS

    plugins.reset()
    monkeypatch.setattr(plugins.Discovery, "load_installed", lambda self: pytest.fail("a registry ran discovery"))
    try:
        assert "pcgrad" in OPTIMIZERS.names() and OPTIMIZERS.version("pcgrad") == "1"
        assert OPTIMIZERS.keys("cagrad")["cagrad_c"].arg == "c"
    finally:
        monkeypatch.undo()
        plugins.reset()
    assert "multitask" in [family.name for family in plugins.families()]  # discovery runs again when asked
