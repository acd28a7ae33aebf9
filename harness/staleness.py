"""Code that changed under an unchanged version: done records whose family's or
component's source digest differs from the code here now. `plan`, `status` and `run`
print one warning per component; the records stay valid (their ids did not change),
which is exactly why the user must be told.
"""
from __future__ import annotations

from harness import families, plugins


def current_digest(family, key: str, name: str, version: str):
    """The digest of the code here now, when it has the same version; else None."""
    if key == "family":
        return plugins.family_digest(family) if family.version == version else None
    registry = family.registries.get(key)
    if registry is None or name not in registry.names() or registry.version(name) != version:
        return None
    return registry.digest(name)


def stale_warnings(specs, scan) -> list[str]:
    changed: dict[tuple, dict] = {}
    cache: dict[tuple, str | None] = {}
    for spec in specs:
        state = scan.states.get(spec.run_id)
        if state is None or state.status != "done":
            continue
        family = None
        for key, name, version, digest, file in state.components:
            ident = (spec.family, key, name, version)
            if ident not in cache:
                family = family or families.get(spec.family)
                cache[ident] = current_digest(family, key, name, version)
            if cache[ident] is not None and cache[ident] != digest:
                found = changed.setdefault(ident, {"runs": 0, "file": file})
                found["runs"] += 1
    warnings = []
    for (_family, key, name, version), found in changed.items():
        what = f"family {name!r}" if key == "family" else f"{key} {name!r}" + (f" ({found['file']})" if found["file"] else "")
        runs = found["runs"]
        warnings.append(f"{what}: its source changed since {runs} finished run{'s' * (runs != 1)} "
                        f"{'were' if runs != 1 else 'was'} recorded under version {version}: results may be stale: "
                        "bump its version, or rerun with --force")
    return warnings
