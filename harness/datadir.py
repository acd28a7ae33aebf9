"""Where prepared datasets live, for every family: the explicit root, else $HARNESS_DATA,
else $XDG_CACHE_HOME/harness/data (~/.cache/harness/data)."""
from __future__ import annotations

import os
from pathlib import Path


def data_root(root=None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("HARNESS_DATA"):
        return Path(os.environ["HARNESS_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "harness" / "data"
