"""`harness data`: prepare and verify the datasets of every family, by name. Never imports torch.

What each dataset accepts and how it is laid out once prepared is in its own module
(the few-shot layout: `harness/fewshot/datasets/_layout.py`; the multi-task one:
`harness/multitask/datasets/_layout.py`).
"""
from __future__ import annotations

from pathlib import Path

from harness import HarnessError, families
from harness.datadir import data_root

__all__ = ["data_root", "names", "dataset", "prepare", "verify", "require_prepared", "sources", "summary"]


def names() -> list[str]:
    """Every dataset of every family."""
    return sorted({name for family in families.all_families() for name in family.datasets.names()})


def dataset(name: str):
    owners = [family for family in families.all_families() if name in family.datasets.names()]
    if not owners:
        raise HarnessError(f"unknown dataset {name!r} (known: {', '.join(names())})")
    if len(owners) > 1:
        raise HarnessError(f"dataset {name!r} belongs to several families ({', '.join(f.name for f in owners)})")
    return owners[0].datasets.get(name)


def prepare(name: str, source, root=None) -> dict:
    """Read `source` (kind detected from what it is), check it against the dataset's facts, and
    write `<root>/<name>/` atomically. Returns the manifest; raises HarnessError (one line)."""
    entry = dataset(name)
    if not hasattr(entry, "prepare"):
        raise HarnessError(f"{name} needs no preparation: {sources(name)[0][1]}")
    return entry.prepare(source, root)


def verify(name: str, root=None) -> str:
    """Re-read the prepared arrays and check facts and hashes. Returns a short report;
    raises HarnessError naming every problem."""
    entry = dataset(name)
    if not hasattr(entry, "verify"):
        raise HarnessError(f"{name} offers no verification (its dataset component has no verify())")
    return entry.verify(root)


def require_prepared(name: str, root=None, family: str | None = None) -> Path | None:
    """Raise HarnessError with the exact `harness data prepare ...` command unless `name` is
    prepared (cheap: manifest and array headers only). Datasets that need no preparation pass."""
    entry = families.get(family).datasets.get(name) if family else dataset(name)
    check = getattr(entry, "require_prepared", None)
    return check(root) if callable(check) else None


def sources(name: str) -> list[tuple[str, str]]:
    """(kind, one-line description) of each source form `prepare` accepts for `name`."""
    entry = dataset(name)
    return entry.sources() if hasattr(entry, "sources") else [("none", "needs no preparation")]


def summary(manifest: dict, root=None) -> str:
    """The lines `verify` prints, for a manifest `prepare` just returned."""
    entry = dataset(manifest["dataset"])
    if hasattr(entry, "summary"):
        return entry.summary(manifest, root)
    folder = data_root(root) / manifest["dataset"]
    counts = ", ".join(f"{split} {part['count']:,}" for split, part in manifest["splits"].items())
    notes = [f"  note: {note}" for note in manifest.get("notes", [])]
    return "\n".join([f"{manifest['dataset']} in {folder}: OK (from {manifest['source']['kind']} "
                      f"{manifest['source']['path']}; {counts})", *notes])
