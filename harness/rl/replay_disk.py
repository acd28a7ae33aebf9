"""The replay buffer on disk, in the run folder: a float32 ``numpy.memmap`` of the buffer's
rows (``replay.f32``) that always holds the rows of the LAST checkpoint, and, per
checkpoint, a redo file with the rows written since the one before.

A checkpoint is taken in this order (``save``):

1. the new rows go to ``replay-<generation>.redo`` (temp file, fsync, rename);
2. ``checkpoint.pt`` is written atomically and names that redo file;
3. the rows are copied into the memmap, which is flushed; then the redo file is deleted.

A kill at any instant leaves a consistent pair. Before 2 completes, the old checkpoint
stands and the memmap is exactly its image (the new redo file is stale and removed on
resume). After 2, resuming re-applies the named redo file if it still exists (copying
the same rows to the same positions again is harmless). So the memmap is only ever
written with rows whose checkpoint is durable: the rows the old checkpoint needs are
never overwritten in place before that, even after the ring has wrapped.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGE = "replay.f32"
REDO = "replay-{generation}.redo"


class ReplayImage:
    def __init__(self, folder: Path, capacity: int, width: int):
        self.folder, self.capacity, self.width = Path(folder), capacity, width
        self.path = self.folder / IMAGE
        self.folder.mkdir(parents=True, exist_ok=True)
        size = capacity * width * 4
        self.existed = self.path.exists() and self.path.stat().st_size == size
        if not self.existed:
            with open(self.path, "wb") as handle:  # sparse: the disk fills as rows are written
                handle.truncate(size)
        self.rows = np.memmap(self.path, dtype=np.float32, mode="r+", shape=(capacity, width))

    def save(self, generation: int, start: int, rows: np.ndarray, write_checkpoint) -> str:
        """The three steps of the module docstring; ``write_checkpoint(redo_name)`` does step 2."""
        name = REDO.format(generation=generation)
        self._write_redo(self.folder / name, start, rows)
        write_checkpoint(name)
        self.apply(name)
        return name

    def recover(self, redo_name: str | None) -> None:
        """On resume: re-apply the checkpoint's redo file if it is still there; drop any other."""
        for path in self.folder.glob("replay-*.redo*"):
            if path.name != redo_name:
                path.unlink(missing_ok=True)
        if redo_name and (self.folder / redo_name).exists():
            self.apply(redo_name)

    def apply(self, name: str) -> None:
        path = self.folder / name
        with np.load(path) as redo:
            start, rows = int(redo["start"]), redo["rows"]
        positions = (start + np.arange(len(rows))) % self.capacity
        self.rows[positions] = rows
        self.rows.flush()
        path.unlink()

    def read(self, count: int) -> np.ndarray:
        return np.array(self.rows[:count])

    def remove(self) -> None:
        """Delete the image and any redo file (the run is over)."""
        del self.rows
        for path in [self.path, *self.folder.glob("replay-*.redo*")]:
            path.unlink(missing_ok=True)

    def _write_redo(self, path: Path, start: int, rows: np.ndarray) -> None:
        temp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            with open(temp, "wb") as handle:
                np.savez(handle, start=np.int64(start), rows=np.asarray(rows, dtype=np.float32))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
            _fsync_folder(path.parent)
        finally:
            temp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
