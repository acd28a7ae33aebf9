"""The prepared layout of the multi-task datasets that need preparing (CelebA, Cityscapes).

    <root>/<name>/<split>_<array>.npy   one file per array and split (train, val, test)
    <root>/<name>/manifest.json         dataset, format, definition fingerprint, source,
                                        per split: count, and per array: shape, dtype, sha256

``<root>`` is every family's data root (``harness.datadir``: explicit root, else
$HARNESS_DATA, else the per-user cache), written through its atomic ``staging``: a
reader writes its arrays (streaming, memory-mapped) into a hidden temp folder, the
manifest is computed from them and checked against the dataset's expected counts, and only then is the
folder renamed into place; any error (Ctrl-C, SIGTERM included) leaves nothing.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import harness
from harness import HarnessError
from harness.datadir import data_root, one_line, staging
from harness.multitask.datasets._base import SPLITS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HASH_CHUNK_BYTES = 16 << 20


def array_path(folder: Path, split: str, array: str) -> Path:
    return Path(folder) / f"{split}_{array}.npy"


def create_array(folder: Path, split: str, array: str, dtype, shape) -> np.ndarray:
    """A writable memory-mapped .npy file, to be filled by a streaming reader."""
    return np.lib.format.open_memmap(array_path(folder, split, array), mode="w+", dtype=dtype, shape=tuple(shape))


def sha256_of(array: np.ndarray) -> str:
    digest = hashlib.sha256()
    rows = max(1, HASH_CHUNK_BYTES // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        digest.update(np.ascontiguousarray(array[start:start + rows]).data)
    return digest.hexdigest()


def describe_arrays(folder: Path, arrays: tuple[str, ...]) -> dict:
    """split -> {"count": N, "arrays": {name: {shape, dtype, sha256}}}, read from the files."""
    out = {}
    for split in SPLITS:
        entries = {}
        for name in arrays:
            array = np.load(array_path(folder, split, name), mmap_mode="r")
            entries[name] = {"shape": list(array.shape), "dtype": array.dtype.str, "sha256": sha256_of(array)}
        out[split] = {"count": entries[arrays[0]]["shape"][0], "arrays": entries}
    return out


def prepare(dataset, source, root=None) -> dict:
    """Run ``dataset.read(located, temp) -> (kind, notes)`` into a staging folder, check, rename."""
    located = dataset.locate(Path(source).expanduser().absolute())
    target = data_root(root) / dataset.name
    with staging(target) as temp:
        kind, notes = dataset.read(located, temp)
        splits = describe_arrays(temp, dataset.arrays)
        problems = [f"{split}: {splits[split]['count']:,} images, expected {dataset.counts[split]:,}"
                    for split in SPLITS if splits[split]["count"] != dataset.counts[split]]
        if problems:
            raise HarnessError(f"{dataset.name}: {located}: " + "; ".join(problems))
        manifest = {
            "dataset": dataset.name, "format": FORMAT_VERSION, "definition": dataset.fingerprint(),
            "source": {"kind": kind, "path": str(located)}, "harness": harness.__version__,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "splits": splits, "notes": notes,
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def checked(dataset, root=None) -> tuple[Path, dict]:
    """(folder, manifest) of a prepared copy that matches the definition; else one line with
    the command to type. Cheap: the manifest and the arrays' headers only."""
    folder = data_root(root) / dataset.name
    problem = None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
            raise ValueError("not a manifest")
    except FileNotFoundError:
        problem = "" if not folder.is_dir() else f" ({MANIFEST} is missing)"
    except (OSError, ValueError) as error:
        problem = f" ({MANIFEST} unreadable: {one_line(error)})"
    if problem is None:
        problem = _manifest_problem(dataset, folder, manifest)
    if problem is not None:
        raise HarnessError(f"dataset {dataset.name} is not prepared in {folder.parent}{problem}: "
                           f"run  harness data prepare {dataset.name} --source {dataset.source_hint}")
    return folder, manifest


def _manifest_problem(dataset, folder: Path, manifest: dict) -> str | None:
    if manifest.get("dataset") != dataset.name or manifest.get("format") != FORMAT_VERSION:
        return f" (the manifest is for {manifest.get('dataset')!r}, format {manifest.get('format')})"
    if manifest.get("definition") != dataset.fingerprint():
        return " (prepared under another definition of the dataset)"
    for split in SPLITS:
        entries = manifest["splits"].get(split, {}).get("arrays", {})
        for name in dataset.arrays:
            path = array_path(folder, split, name)
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as error:
                return f" ({path.name}: {'missing' if not path.exists() else one_line(error)})"
            entry = entries.get(name, {})
            if list(array.shape) != entry.get("shape") or array.dtype.str != entry.get("dtype"):
                return f" ({path.name}: {array.dtype} {array.shape}, the manifest says {entry.get('dtype')} {entry.get('shape')})"
    return None


def load_arrays(dataset, split: str, root=None) -> dict[str, np.ndarray]:
    """The split's arrays, memory-mapped read-only."""
    if split not in SPLITS:
        raise ValueError(f"{dataset.name} has no split {split!r} (train, val, test)")
    folder, _ = checked(dataset, root)
    return {name: np.load(array_path(folder, split, name), mmap_mode="r") for name in dataset.arrays}


def verify(dataset, root=None) -> str:
    """Re-hash every array against the manifest; a short report, or one line naming the problems."""
    folder, manifest = checked(dataset, root)
    problems = []
    for split in SPLITS:
        for name in dataset.arrays:
            expected = manifest["splits"][split]["arrays"][name]["sha256"]
            found = sha256_of(np.load(array_path(folder, split, name), mmap_mode="r"))
            if found != expected:
                problems.append(f"{split}_{name}.npy: sha256 {found[:12]}..., the manifest says {expected[:12]}...")
    if problems:
        raise HarnessError(f"verify {dataset.name} ({folder}): " + "; ".join(problems)
                           + f". To rebuild: harness data prepare {dataset.name} --source {dataset.source_hint}")
    counts = ", ".join(f"{split} {manifest['splits'][split]['count']:,}" for split in SPLITS)
    return f"{dataset.name} in {folder}: OK (from {manifest['source']['kind']} {manifest['source']['path']}; {counts})"


class PreparedMultiTaskDataset:
    """Mixin for datasets read from the prepared layout. Subclasses set ``arrays`` (file
    names per split), ``counts`` (expected images per split), ``source_hint``, ``definition()``,
    ``locate(path) -> path``, ``read(located, out_dir) -> (kind, notes)`` and ``split_from(arrays)``."""

    arrays: tuple = ()
    counts: dict = {}
    source_hint = "PATH"

    @classmethod
    def fingerprint(cls) -> str:
        text = json.dumps({"format": FORMAT_VERSION, **cls.definition()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def prepare(cls, source, root=None) -> dict:
        return prepare(cls, source, root)

    @classmethod
    def require_prepared(cls, root=None) -> Path:
        return checked(cls, root)[0]

    @classmethod
    def verify(cls, root=None) -> str:
        return verify(cls, root)

    @classmethod
    def load(cls, split: str, root=None):
        return cls.split_from(load_arrays(cls, split, root))
