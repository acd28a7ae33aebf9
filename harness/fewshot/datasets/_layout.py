"""The prepared layout every few-shot dataset shares, and how it is written, checked and read.

    <root>/<name>/<split>_images.npy   (N, H, W, C) uint8, grouped by class
    <root>/<name>/<split>_labels.npy   (N,) int64 in [0, classes)
    <root>/<name>/manifest.json        source, counts, hashes, notes

`<root>` is the explicit root, else $HARNESS_DATA, else the per-user cache folder.
A prepared folder appears under its name only complete and checked against the
dataset's known facts: it is written into a hidden temp folder beside it and renamed
at the end; on any error (Ctrl-C included) the temp folder is removed. Preparing is
verifying: a folder that exists passed the facts check when it was written; `verify`
re-reads it to catch later damage.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import harness
from harness import HarnessError
from harness.datadir import data_root, one_line, staging
from harness.fewshot.datasets._base import Split

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
SCAN_CHUNK_BYTES = 16 << 20
MANIFEST = "manifest.json"
ENTRY_KEYS = {"classes", "counts", "images", "image_shape", "images_sha256", "labels_sha256", "mean", "std"}


def array_paths(folder: Path, split: str) -> tuple[Path, Path]:
    return folder / f"{split}_images.npy", folder / f"{split}_labels.npy"


@dataclass(frozen=True)
class Facts:
    """What a correct copy of a dataset must look like; `problems` says how a copy differs."""

    classes: dict  # split -> number of classes
    image_size: int
    channels: int
    mean: tuple  # normalisation constants, per channel in [0, 1]; checked against train
    std: tuple
    per_class: int | None = None  # images per class, where fixed
    totals: dict | None = None  # split -> number of images, where classes vary in size
    mean_tolerance: float = 0.05  # catches swapped channels or inverted / rescaled images
    reference_sha256: dict | None = None  # split -> images sha256 of a known-good build (a note, not a rule)

    def problems(self, split: str, summary: dict) -> list[str]:
        found = []
        classes, counts = summary["classes"], summary["counts"]
        if len(classes) != self.classes[split]:
            found.append(f"{split}: {len(classes)} classes, expected {self.classes[split]}")
        shape = tuple(summary["image_shape"])
        if shape != (self.image_size, self.image_size, self.channels):
            found.append(f"{split}: images are {'x'.join(map(str, shape))}, "
                         f"expected {self.image_size}x{self.image_size}x{self.channels}")
        if self.per_class is not None:
            short = [f"{name} {count}/{self.per_class}" for name, count in zip(classes, counts) if count != self.per_class]
            if short:
                listed = ", ".join(short[:8]) + (f" and {len(short) - 8} more" if len(short) > 8 else "")
                found.append(f"{split}: {len(short)} of {len(classes)} classes do not have {self.per_class} images "
                             f"(found {listed}; {sum(counts):,} of {len(classes) * self.per_class:,} images in all)")
        if self.totals is not None and summary["images"] != self.totals[split]:
            found.append(f"{split}: {summary['images']:,} images, expected {self.totals[split]:,}")
        if split == "train" and summary.get("mean") is not None:
            off = np.abs(np.subtract(summary["mean"], self.mean))
            if off.max() > self.mean_tolerance:
                found.append(f"train: channel means {_rounded(summary['mean'])} are not near the expected "
                             f"{_rounded(self.mean)} (swapped colour channels or rescaled images?)")
        return found


CONTENT_ORDER = "by label (class order below), then by sha256 of each image's pixels"


@dataclass(frozen=True)
class Reader:
    """One accepted source form: `locate(path)` returns what to read (or None if `path` is not
    this form); `read(dataset, located, out_dir)` returns ({split: Split}, notes)."""

    kind: str
    description: str
    locate: Callable[[Path], Path | None]
    read: Callable
    order: str = CONTENT_ORDER


def scan(images: np.ndarray) -> tuple[str, list, list]:
    """sha256 of the array's bytes and per-channel mean and std in [0, 1], one chunked pass."""
    digest = hashlib.sha256()
    channels = images.shape[-1]
    histogram = np.zeros((channels, 256), dtype=np.int64)
    step = max(1, SCAN_CHUNK_BYTES // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), step):
        chunk = np.ascontiguousarray(images[start:start + step])
        digest.update(chunk.data)
        for c in range(channels):
            histogram[c] += np.bincount(chunk[..., c].ravel(), minlength=256)
    if not len(images):
        return digest.hexdigest(), None, None
    values = np.arange(256) / 255.0
    total = histogram.sum(1)
    mean = histogram @ values / total
    std = np.sqrt(np.maximum(histogram @ values**2 / total - mean**2, 0.0))
    return digest.hexdigest(), _rounded(mean), _rounded(std)


def labels_sha256(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").data).hexdigest()


def summarize(images: np.ndarray, labels: np.ndarray, classes) -> dict:
    """The manifest entry of one split, computed from its arrays."""
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise HarnessError(f"labels outside [0, {len(classes)})")
    images_sha, mean, std = scan(images)
    return {
        "classes": list(classes),
        "counts": np.bincount(labels, minlength=len(classes)).tolist(),
        "images": int(len(images)),
        "image_shape": list(images.shape[1:]),
        "images_sha256": images_sha,
        "labels_sha256": labels_sha256(labels),
        "mean": mean,
        "std": std,
    }


def _rounded(values) -> list:
    return [round(float(v), 4) for v in values]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PreparedDataset:
    """A dataset read from the prepared layout. Subclasses set `name`, `facts`, `readers`,
    `source_hint`, `crop_padding`, and `split_classes` where the class lists are fixed."""

    name: str
    facts: Facts
    split_classes: dict | None = None  # split -> class names in label order
    readers: tuple = ()
    source_hint = "PATH"
    crop_padding = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        facts = cls.__dict__.get("facts")
        if facts is not None:
            cls.channels, cls.image_size = facts.channels, facts.image_size
            cls.mean, cls.std = tuple(facts.mean), tuple(facts.std)

    # -- definition -----------------------------------------------------------

    @classmethod
    def definition(cls) -> dict:
        """Everything that fixes the prepared content, whatever the source: hashed by `fingerprint`."""
        return {"name": cls.name, "format": FORMAT_VERSION, "facts": asdict(cls.facts),
                "classes": cls.split_classes}

    @classmethod
    def fingerprint(cls) -> str:
        text = json.dumps(cls.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [(reader.kind, reader.description) for reader in cls.readers]

    @classmethod
    def summary(cls, manifest: dict, root=None) -> str:
        """The lines `verify` prints, for a manifest `prepare` just returned."""
        return describe(manifest, data_root(root) / manifest["dataset"])

    @classmethod
    def prepare_command(cls, root=None) -> str:
        command = f"harness data prepare {cls.name} --source {cls.source_hint}"
        return command + (f" --root {shlex.quote(str(root))}" if root is not None else "")

    # -- prepare --------------------------------------------------------------

    @classmethod
    def detect(cls, source) -> tuple[Reader, Path]:
        path = Path(source).expanduser().absolute()
        if not path.exists():
            raise HarnessError(f"{cls.name}: {path}: no such file or folder")
        for reader in cls.readers:
            located = reader.locate(path)
            if located is not None:
                return reader, located
        expected = "; ".join(f"{r.kind}: {r.description}" for r in cls.readers)
        raise HarnessError(f"{cls.name}: {path}: not a source this dataset reads. Expected one of: {expected}")

    @classmethod
    def build(cls, source, out_dir) -> tuple[str, dict, list]:
        """(source kind, {split: Split}, notes) read from `source`, WITHOUT the facts check.

        Readers that stream may write their arrays into `out_dir` (a folder they own)."""
        reader, located = cls.detect(source)
        splits, notes = reader.read(cls, located, Path(out_dir))
        return reader.kind, splits, notes

    @classmethod
    def prepare(cls, source, root=None) -> dict:
        target = data_root(root) / cls.name
        reader, located = cls.detect(source)
        with staging(target) as temp:
            splits, notes = reader.read(cls, located, temp)
            summaries = {split: summarize(splits[split].images, splits[split].labels, splits[split].classes)
                         for split in SPLITS}
            problems = [p for split in SPLITS for p in cls.facts.problems(split, summaries[split])]
            if problems:
                raise HarnessError(f"{cls.name}: {located}: " + "; ".join(problems))
            for split in SPLITS:
                images_path, labels_path = array_paths(temp, split)
                if not images_path.exists():  # streaming readers wrote theirs already
                    np.save(images_path, splits[split].images)
                np.save(labels_path, splits[split].labels)
            manifest = {
                "dataset": cls.name,
                "format": FORMAT_VERSION,
                "definition": cls.fingerprint(),
                "source": {"kind": reader.kind, "path": str(located)},
                "harness": harness.__version__,
                "created": _now(),
                "order": reader.order,
                "splits": summaries,
                "notes": notes + cls._reference_notes(summaries),
            }
            (temp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return manifest

    @classmethod
    def _reference_notes(cls, summaries: dict) -> list[str]:
        reference = cls.facts.reference_sha256
        if not reference:
            return []
        same = [s for s in SPLITS if summaries[s]["images_sha256"] == reference.get(s)]
        if len(same) == len(SPLITS):
            return ["images identical to the reference build (all splits)"]
        return [f"images of {', '.join(s for s in SPLITS if s not in same)} differ from the reference build "
                f"(another pixel source or image set; the facts above still hold)"]

    # -- check ----------------------------------------------------------------

    @classmethod
    def _read_manifest(cls, root=None) -> tuple[Path, dict]:
        folder = data_root(root) / cls.name
        path = folder / MANIFEST
        reason = None
        if not folder.is_dir():
            reason = ""
        elif not path.is_file():
            reason = f" ({MANIFEST} is missing)"
        else:
            try:
                manifest = json.loads(path.read_text())
                if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
                    raise ValueError("not a manifest")
            except (OSError, ValueError) as error:
                reason = f" ({MANIFEST} unreadable: {one_line(error)})"
        if reason is not None:
            raise HarnessError(f"dataset {cls.name} is not prepared in {folder.parent}{reason}: "
                               f"run  {cls.prepare_command(root)}")
        return folder, manifest

    @classmethod
    def _manifest_problems(cls, manifest: dict) -> list[str]:
        if manifest.get("dataset") != cls.name:
            return [f"the manifest is for {manifest.get('dataset')!r}"]
        if manifest.get("format") != FORMAT_VERSION:
            return [f"prepared in format {manifest.get('format')}, this harness reads format {FORMAT_VERSION}"]
        if manifest.get("definition") != cls.fingerprint():
            return ["prepared under another definition of the dataset (split lists or facts changed since)"]
        missing = [s for s in SPLITS if not ENTRY_KEYS <= set(manifest["splits"].get(s, {}))]
        return [f"the manifest lacks (keys of) split {', '.join(missing)}"] if missing else []

    @classmethod
    def require_prepared(cls, root=None) -> Path:
        """Fail fast, with the command to type, unless a prepared copy is in place; return its folder.

        Cheap: reads the manifest and the arrays' headers, not the data."""
        return cls._checked(root)[0]

    @classmethod
    def _checked(cls, root=None) -> tuple[Path, dict]:
        folder, manifest = cls._read_manifest(root)
        problems = cls._manifest_problems(manifest)
        if not problems:
            problems = [p for split in SPLITS for p in cls.facts.problems(split, manifest["splits"][split])]
        for split in SPLITS if not problems else ():
            entry = manifest["splits"][split]
            expected = {"images": (entry["images"], *entry["image_shape"]), "labels": (entry["images"],)}
            for kind, path in zip(("images", "labels"), array_paths(folder, split)):
                try:
                    array = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as error:
                    problems.append(f"{path.name}: {'missing' if not path.exists() else one_line(error)}")
                    continue
                if array.shape != expected[kind] or array.dtype != (np.uint8 if kind == "images" else np.int64):
                    problems.append(f"{path.name}: {array.dtype} {array.shape}, the manifest says {expected[kind]}")
        if problems:
            raise HarnessError(f"dataset {cls.name} is not prepared in {folder.parent} ({problems[0]}): "
                               f"run  {cls.prepare_command(root)}")
        return folder, manifest

    @classmethod
    def verify(cls, root=None) -> str:
        """Re-read the prepared arrays; check them against the facts and the manifest's hashes.

        Returns a short report; raises a one-line HarnessError naming every problem found."""
        folder, manifest = cls._read_manifest(root)
        problems = cls._manifest_problems(manifest)
        for split in SPLITS if manifest.get("format") == FORMAT_VERSION else ():
            problems += cls._split_problems(folder, split, manifest["splits"].get(split, {}))
        if problems:
            raise HarnessError(f"verify {cls.name} ({folder}): " + "; ".join(problems)
                               + f". To rebuild: {cls.prepare_command(root)}")
        return describe(manifest, folder)

    @classmethod
    def _split_problems(cls, folder: Path, split: str, entry: dict) -> list[str]:
        images_path, labels_path = array_paths(folder, split)
        missing = [p.name for p in (images_path, labels_path) if not p.is_file()]
        if missing:
            return [f"{name} is missing" for name in missing]
        try:
            images = np.load(images_path, mmap_mode="r")
            labels = np.load(labels_path)
            summary = summarize(images, labels, entry.get("classes", []))
        except (OSError, ValueError, HarnessError) as error:
            return [f"{split}: cannot read the arrays ({one_line(error)})"]
        problems = cls.facts.problems(split, summary)
        for key, path in (("images_sha256", images_path), ("labels_sha256", labels_path)):
            if summary[key] != entry.get(key):
                problems.append(f"{path.name}: sha256 {summary[key][:12]}..., the manifest says "
                                f"{str(entry.get(key))[:12]}... (changed since preparation)")
        if summary["counts"] != entry.get("counts"):
            problems.append(f"{split}: counts per class differ from the manifest")
        return problems

    # -- read -----------------------------------------------------------------

    @classmethod
    def load(cls, split: str, root=None) -> Split:
        if split not in SPLITS:
            raise ValueError(f"{cls.name} has no split {split!r} (train, val, test)")
        folder, manifest = cls._checked(root)
        images_path, labels_path = array_paths(folder, split)
        # copy-on-write mapping: lazy like "r", but writable, so torch.from_numpy does not warn
        return Split(images=np.load(images_path, mmap_mode="c"), labels=np.load(labels_path),
                     classes=tuple(manifest["splits"][split]["classes"]))


def describe(manifest: dict, folder: Path) -> str:
    """A few lines: what is prepared where, from what, with which counts."""
    source = manifest["source"]
    lines = [f"{manifest['dataset']} in {folder}: OK (format {manifest['format']}, from {source['kind']} "
             f"{source['path']}, prepared {manifest['created']})"]
    for split in SPLITS:
        entry = manifest["splits"][split]
        counts = entry["counts"]
        per_class = str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
        lines.append(f"  {split:5} {len(counts):3} classes x {per_class:9} = {entry['images']:>7,} images of "
                     f"{'x'.join(map(str, entry['image_shape']))}, sha256 {entry['images_sha256'][:12]}")
    lines += [f"  note: {note}" for note in manifest.get("notes", [])]
    return "\n".join(lines)
