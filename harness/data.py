"""`harness data`: prepare and verify datasets of every family, by name. Never imports torch.

The few-shot prepared layout, manifest and checks are described in
`harness/fewshot/datasets/_layout.py`, the multi-task one in
`harness/multitask/datasets/_layout.py`; each dataset's accepted sources in its module.
"""
from __future__ import annotations

from pathlib import Path

from harness import HarnessError, families
from harness.fewshot.datasets._layout import data_root as _data_root
from harness.fewshot.datasets._layout import describe


def data_root(root=None) -> Path:
    """The explicit `root`, else $HARNESS_DATA, else $XDG_CACHE_HOME/harness/data (~/.cache/harness/data)."""
    return _data_root(root)


def names() -> list[str]:
    """Every dataset of every family."""
    return [name for family in families.all_families() for name in family.datasets.names()]


def dataset(name: str):
    return families.dataset_family(name).datasets.get(name)


def prepare(name: str, source, root=None) -> dict:
    """Read `source` (kind detected from what it is), check it against the dataset's facts, and
    write `<root>/<name>/` atomically. Returns the manifest; raises HarnessError (one line)."""
    entry = dataset(name)
    if not hasattr(entry, "prepare"):
        raise HarnessError(f"{name} needs no preparation: {entry.sources()[0][1]}")
    return entry.prepare(source, root)


def verify(name: str, root=None) -> str:
    """Re-read the prepared arrays and check facts and hashes. Returns a short report;
    raises HarnessError naming every problem."""
    return dataset(name).verify(root)


def require_prepared(name: str, root=None) -> Path:
    """Raise HarnessError with the exact `harness data prepare ...` command unless `name` is
    prepared (cheap: manifest and array headers only). Returns the folder read."""
    return dataset(name).require_prepared(root)


def sources(name: str) -> list[tuple[str, str]]:
    """(kind, one-line description) of each source form `prepare` accepts for `name`."""
    return dataset(name).sources()


def summary(manifest: dict, root=None) -> str:
    """The lines `verify` prints, for a manifest `prepare` just returned."""
    if families.dataset_family(manifest["dataset"]).name == "fewshot":
        return describe(manifest, data_root(root) / manifest["dataset"])
    folder = data_root(root) / manifest["dataset"]
    counts = ", ".join(f"{split} {entry['count']:,}" for split, entry in manifest["splits"].items())
    notes = [f"  note: {note}" for note in manifest.get("notes", [])]
    return "\n".join([f"{manifest['dataset']} in {folder}: OK (from {manifest['source']['kind']} "
                      f"{manifest['source']['path']}; {counts})", *notes])
