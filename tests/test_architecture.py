"""The core knows no family: its modules never import a family package, and the
built-in families are found through the same entry points as a third party's."""
from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import harness
from harness import plugins

CORE = sorted(Path(harness.__file__).parent.glob("*.py")) + sorted(Path(harness.__file__).parent.glob("report/*.py"))
FAMILY_PACKAGES = ("harness.fewshot", "harness.multitask", "harness.rl")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_core_module_imports_a_family_package():
    assert len(CORE) > 10
    offenders = {str(path): sorted(m for m in imported_modules(path) if m.startswith(FAMILY_PACKAGES))
                 for path in CORE}
    assert not {name: found for name, found in offenders.items() if found}


def test_built_in_families_come_from_harness_own_entry_points():
    own = {ep.name: ep.value for ep in metadata.entry_points(group=plugins.GROUP) if ep.dist.name == "harness"}
    assert own["fewshot"] == "harness.fewshot.family" and own["multitask"] == "harness.multitask.family"
    for name, module in own.items():
        assert plugins.origin(name) == "built in"
        assert plugins.family(name).module == module
