"""The idx file format of MNIST (LeCun et al.), read with numpy.

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then        d big-endian uint32 sizes, then the elements, big-endian, row-major

Files ending in ``.gz`` are decompressed first. Any problem is one HarnessError line
naming the file.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from harness import HarnessError

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise HarnessError(f"{path}: missing") from None
    except (OSError, EOFError, zlib.error) as error:
        raise HarnessError(f"{path}: cannot read ({error}): truncated or corrupt?") from None
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, label: str = "idx data") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES:
        raise HarnessError(f"{label}: not an idx file (magic {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise HarnessError(f"{label}: truncated header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise HarnessError(f"{label}: {len(raw)} bytes, the header ({'x'.join(map(str, shape))} "
                           f"{dtype.name}) needs {expected}: truncated or corrupt?")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
