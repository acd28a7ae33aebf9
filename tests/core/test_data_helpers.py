"""Helpers for the data tests (no tests here): Python 2 style pickles, PNG bytes, root checks."""
from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from harness import HarnessError

PARTIAL = Path(__file__).parents[1] / "data" / "cifar-100-python-partial"


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2 did: str and bytes as byte strings, numpy under its numpy 1 module names.

    Reading such a file needs encoding='latin1', exactly like the files users download."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_byte_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_byte_string
    dispatch[bytes] = save_byte_string

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def write_py2_pickle(path: Path, obj) -> Path:
    with open(path, "wb") as file:
        Py2Pickler(file, protocol=2).dump(obj)
    return path


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def raises_one_line(call, *fragments) -> str:
    """Call; expect a HarnessError with a one-line message containing every fragment."""
    try:
        call()
    except HarnessError as error:
        message = str(error)
    else:
        raise AssertionError("no HarnessError raised")
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def assert_nothing_written(root: Path) -> None:
    assert not root.exists() or not any(root.iterdir()), sorted(p.name for p in root.iterdir())


def same_splits(one: dict, other: dict) -> None:
    for split in ("train", "val", "test"):
        assert one[split].classes == other[split].classes
        assert np.array_equal(one[split].labels, other[split].labels)
        assert np.array_equal(one[split].images, other[split].images)
