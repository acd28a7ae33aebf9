"""`harness data`: prepare and verify few-shot datasets, by name. Never imports torch.

The prepared layout, the manifest and the checks are described in
`harness/fewshot/datasets/_layout.py`; each dataset's accepted sources in its module.
"""
from __future__ import annotations

from pathlib import Path

from harness.fewshot.datasets import DATASETS
from harness.fewshot.datasets._layout import data_root as _data_root
from harness.fewshot.datasets._layout import describe


def data_root(root=None) -> Path:
    """The explicit `root`, else $HARNESS_DATA, else $XDG_CACHE_HOME/harness/data (~/.cache/harness/data)."""
    return _data_root(root)


def prepare(name: str, source, root=None) -> dict:
    """Read `source` (kind detected from what it is), check it against the dataset's facts, and
    write `<root>/<name>/` atomically. Returns the manifest; raises HarnessError (one line)."""
    return DATASETS.get(name).prepare(source, root)


def verify(name: str, root=None) -> str:
    """Re-read the prepared arrays and check facts and hashes. Returns a short report;
    raises HarnessError naming every problem."""
    return DATASETS.get(name).verify(root)


def require_prepared(name: str, root=None) -> Path:
    """Raise HarnessError with the exact `harness data prepare ...` command unless `name` is
    prepared (cheap: manifest and array headers only). Returns the folder read."""
    return DATASETS.get(name).require_prepared(root)


def sources(name: str) -> list[tuple[str, str]]:
    """(kind, one-line description) of each source form `prepare` accepts for `name`."""
    return DATASETS.get(name).sources()


def summary(manifest: dict, root=None) -> str:
    """The lines `verify` prints, for a manifest `prepare` just returned."""
    return describe(manifest, data_root(root) / manifest["dataset"])
