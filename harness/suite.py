"""Suite files: load, validate (one clear error line), expand into run configs.

Pure Python: no torch. See the README for every key, with a complete example.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from harness import HarnessError, families, yamlfile
from harness.config import REQUIRED, check_value

SUITE_KEYS = ("name", "family", "paper", "description", "defaults", "grid", "overrides", "exclude", "resources", "reported")
INTERVAL_KINDS = ("ci95", "std", "sem")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SuiteError(HarnessError):
    pass


@dataclass(frozen=True)
class Resources:
    """What one run asks of the scheduler. Not part of the run id: it does not change results."""

    gpus: int = 0
    cpus: int = 1
    mem_gb: float = 4.0
    timeout_min: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    sbatch_args: dict = field(default_factory=dict)

    def updated(self, values: dict) -> "Resources":
        """A copy with ``values`` set; ``sbatch_args`` are merged option by option."""
        values = dict(values)
        if "sbatch_args" in values:
            values["sbatch_args"] = {**self.sbatch_args, **values["sbatch_args"]}
        return dataclasses.replace(self, **values)

    def key(self) -> tuple:
        """Hashable identity: runs with equal keys can share one job array."""
        return tuple((f.name, tuple(sorted(self.sbatch_args.items())) if f.name == "sbatch_args" else getattr(self, f.name))
                     for f in dataclasses.fields(self))


# sbatch options the harness (through submitit) sets itself: never from sbatch_args or --sbatch
RESERVED_SBATCH_ARGS = frozenset({"array", "output", "error", "open-mode", "open_mode", "job-name", "job_name", "wrap"})

# name -> (types, minimum or None, nullable)
RESOURCE_KEYS = {
    "gpus": (int, 0, False),
    "cpus": (int, 1, False),
    "mem_gb": ((int, float), 0.1, False),
    "timeout_min": (int, 1, False),
    "partition": (str, None, True),
    "account": (str, None, True),
    "qos": (str, None, True),
    "sbatch_args": (dict, None, False),
}


@dataclass(frozen=True)
class Reported:
    dataset: str
    ways: int
    shots: int
    method: str
    backbone: str | None  # when given, only runs with this backbone are compared with it
    value: float
    interval: float | None
    kind: str | None
    seeds: int | None
    episodes: int | None
    paper: str
    table: str | None

    @property
    def cell(self) -> tuple:
        return (self.dataset, self.ways, self.shots, self.method, self.backbone)


@dataclass(frozen=True)
class Override:
    when: dict
    set: dict
    resources: dict = field(default_factory=dict)  # resource keys for the matching runs


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    paper: str
    description: str
    defaults: dict
    grid: dict
    overrides: tuple
    exclude: tuple
    resources: Resources
    reported: tuple
    family: str = families.DEFAULT

    @property
    def keys(self) -> dict:
        """The config schema of the suite's family."""
        return families.get(self.family).keys

    def configs(self) -> Iterator[dict]:
        """Every run's fully resolved config, lazily, in grid order."""
        base = {name: key.default for name, key in self.keys.items() if key.default is not REQUIRED}
        base.update(self.defaults)
        axes = list(self.grid)
        for values in itertools.product(*self.grid.values()):
            config = {**base, **dict(zip(axes, values))}
            for override in self.overrides:
                if matches(config, override.when):
                    config.update(override.set)
            if not any(matches(config, rule) for rule in self.exclude):
                yield config

    def resources_for(self, config: dict) -> Resources:
        """The suite's resources with the `resources` of every override whose `when` matches
        the run's resolved config, in order (the last wins)."""
        resources = self.resources
        for override in self.overrides:
            if override.resources and matches(config, override.when):
                resources = resources.updated(override.resources)
        return resources

    @property
    def axes(self) -> list[str]:
        """Grid axes that take more than one value (the report groups by these)."""
        return [name for name, values in self.grid.items() if len(values) > 1]


def kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def matches(config: dict, rule: dict) -> bool:
    return all(config.get(key) in values for key, values in rule.items())


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; any problem raises SuiteError with one line."""
    return _Validator(Path(path)).suite()


class _Validator:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, keypath: str, message: str, line: int | None = None):
        where = f"{self.path}:{line}" if line else f"{self.path}"
        raise SuiteError(f"{where}: {keypath}: {message}" if keypath else f"{where}: {message}")

    def line(self, container, key) -> int | None:
        lines = getattr(container, "lines", None)
        try:
            return lines[key] if lines is not None else None
        except (KeyError, IndexError):
            return None

    def suite(self) -> Suite:
        try:
            doc = yamlfile.load(self.path)
        except yamlfile.YamlError as error:
            self.fail("", str(error), error.line)
        if not isinstance(doc, dict):
            self.fail("", f"a suite must be a mapping of keys, got {kind_of(doc)}")
        self.known_keys(doc, SUITE_KEYS, "")
        family = self.family(doc)
        self.keys, self.axes_required = family.keys, family.axes_required
        for required in ("name", "paper", "grid"):
            if required not in doc:
                self.fail(required, "missing (required)")
        name = self.text(doc, "name", "name")
        if not NAME_PATTERN.match(name):
            self.fail("name", f"must be letters, digits, '_', '.', '-' (it names a folder), got {name!r}", self.line(doc, "name"))
        grid = self.grid(doc["grid"], doc)
        return Suite(
            path=self.path,
            name=name,
            paper=self.text(doc, "paper", "paper"),
            description=self.text(doc, "description", "description") if "description" in doc else "",
            defaults=self.config_map(doc.get("defaults", {}), "defaults", doc, "defaults"),
            grid=grid,
            overrides=tuple(self.overrides(doc.get("overrides", []), doc)),
            exclude=tuple(self.rules(doc.get("exclude", []), "exclude", doc)),
            resources=self.resources(doc.get("resources", {}), doc),
            reported=tuple(self.reported(doc.get("reported", []), doc, grid, doc.get("defaults", {}))),
            family=family.name,
        )

    # -- pieces ---------------------------------------------------------

    def family(self, doc) -> families.Family:
        name = doc.get("family", families.DEFAULT)
        if name not in families.NAMES:
            self.fail("family", f"unknown family {name!r} (known: {', '.join(families.NAMES)})", self.line(doc, "family"))
        return families.get(name)

    def known_keys(self, mapping: dict, allowed, keypath: str):
        for key in mapping:
            if key not in allowed:
                path = f"{keypath}.{key}" if keypath else str(key)
                hint = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
                suffix = f"; did you mean {hint[0]!r}?" if hint else f" (allowed: {', '.join(map(str, allowed))})"
                self.fail(path, f"unknown key{suffix}", self.line(mapping, key))

    def text(self, mapping: dict, key: str, keypath: str) -> str:
        value = mapping[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(keypath, f"must be a non-empty string, got {value!r}", self.line(mapping, key))
        return value

    def mapping(self, value, keypath: str, parent, key) -> dict:
        if not isinstance(value, dict):
            self.fail(keypath, f"must be a mapping, got {kind_of(value)}", self.line(parent, key))
        return value

    def config_value(self, name, value, keypath: str, line):
        normal, error = check_value(name, value, self.keys)
        if error:
            self.fail(keypath, error, line)
        return normal

    def config_map(self, value, keypath: str, parent, key) -> dict:
        mapping = self.mapping(value, keypath, parent, key)
        self.known_keys(mapping, self.keys, keypath)
        return {
            name: self.config_value(name, item, f"{keypath}.{name}", self.line(mapping, name))
            for name, item in mapping.items()
        }

    def grid(self, value, doc) -> dict:
        grid = self.mapping(value, "grid", doc, "grid")
        self.known_keys(grid, self.keys, "grid")
        for axis in self.axes_required:
            if axis not in grid:
                self.fail("grid", f"missing axis {axis!r} (a grid needs at least {', '.join(self.axes_required)})", self.line(doc, "grid"))
        axes = {}
        for name, values in grid.items():
            line = self.line(grid, name)
            if not isinstance(values, list):
                values = [values]
            if not values:
                self.fail(f"grid.{name}", "empty axis (give at least one value)", line)
            checked = [
                self.config_value(name, item, f"grid.{name}[{i}]", self.line(values, i) or line)
                for i, item in enumerate(values)
            ]
            if len(set(map(repr, checked))) != len(checked):
                self.fail(f"grid.{name}", "repeats a value", line)
            axes[name] = checked
        return axes

    def rule(self, value, keypath: str, parent, key) -> dict:
        rule = self.mapping(value, keypath, parent, key)
        if not rule:
            self.fail(keypath, "empty rule (it would match every run)", self.line(parent, key))
        self.known_keys(rule, self.keys, keypath)
        result = {}
        for name, values in rule.items():
            line = self.line(rule, name)
            items = values if isinstance(values, list) else [values]
            result[name] = tuple(
                self.config_value(name, item, f"{keypath}.{name}", line) for item in items
            )
        return result

    def rules(self, value, keypath: str, doc) -> list[dict]:
        if not isinstance(value, list):
            self.fail(keypath, "must be a list of rules", self.line(doc, keypath))
        return [self.rule(item, f"{keypath}[{i}]", value, i) for i, item in enumerate(value)]

    def overrides(self, value, doc) -> Iterator[Override]:
        if not isinstance(value, list):
            self.fail("overrides", "must be a list of {when: ..., set: ...}", self.line(doc, "overrides"))
        for i, item in enumerate(value):
            keypath = f"overrides[{i}]"
            entry = self.mapping(item, keypath, value, i)
            self.known_keys(entry, ("when", "set", "resources"), keypath)
            if "when" not in entry:
                self.fail(f"{keypath}.when", "missing (required)", self.line(value, i))
            if "set" not in entry and "resources" not in entry:
                self.fail(f"{keypath}.set", "missing (required, unless the entry gives resources)", self.line(value, i))
            yield Override(
                when=self.rule(entry["when"], f"{keypath}.when", entry, "when"),
                set=self.config_map(entry["set"], f"{keypath}.set", entry, "set") if "set" in entry else {},
                resources=self.resource_values(entry["resources"], f"{keypath}.resources", entry, "resources")
                if "resources" in entry else {},
            )

    def resources(self, value, doc) -> Resources:
        return Resources(**self.resource_values(value, "resources", doc, "resources"))

    def resource_values(self, value, where: str, parent, key) -> dict:
        """A checked mapping of resource keys (all optional) found at key path ``where``."""
        mapping = self.mapping(value, where, parent, key)
        self.known_keys(mapping, RESOURCE_KEYS, where)
        checked = {}
        for name, item in mapping.items():
            types, minimum, nullable = RESOURCE_KEYS[name]
            keypath, line = f"{where}.{name}", self.line(mapping, name)
            if item is None and nullable:
                checked[name] = None
                continue
            if isinstance(item, bool) or not isinstance(item, types):
                self.fail(keypath, f"wrong type {type(item).__name__} ({item!r})", line)
            if minimum is not None and item < minimum:
                self.fail(keypath, f"must be >= {minimum}, got {item!r}", line)
            if name == "sbatch_args":
                for arg, arg_value in item.items():
                    if not isinstance(arg, str) or not isinstance(arg_value, (str, int, float, bool)):
                        self.fail(f"{keypath}.{arg}", "must map option names to plain values", self.line(item, arg) or line)
                    if arg in RESERVED_SBATCH_ARGS:
                        self.fail(f"{keypath}.{arg}", "set by the harness itself; leave it out", self.line(item, arg) or line)
                item = dict(item)
            checked[name] = item
        return checked

    def reported(self, value, doc, grid, defaults) -> Iterator[Reported]:
        if not isinstance(value, list):
            self.fail("reported", "must be a list of entries", self.line(doc, "reported"))
        if value and "ways" not in self.keys:
            self.fail("reported", "reported numbers are compared only in few-shot suites; leave this key out", self.line(doc, "reported"))
        fields = ("dataset", "ways", "shots", "method", "backbone", "value", "interval", "kind", "seeds", "episodes", "source")
        seen: dict[tuple, int] = {}
        for i, item in enumerate(value):
            keypath = f"reported[{i}]"
            entry = self.mapping(item, keypath, value, i)
            line = self.line(value, i)
            self.known_keys(entry, fields, keypath)
            for required in ("dataset", "shots", "method", "value", "source"):
                if required not in entry:
                    self.fail(f"{keypath}.{required}", "missing (required)", line)
            cell = {
                name: self.config_value(name, entry[name], f"{keypath}.{name}", self.line(entry, name))
                for name in ("dataset", "shots", "method")
            }
            cell["backbone"] = (self.config_value("backbone", entry["backbone"], f"{keypath}.backbone", self.line(entry, "backbone"))
                                if entry.get("backbone") is not None else None)
            ways = entry.get("ways", defaults.get("ways", self.keys["ways"].default))
            cell["ways"] = self.config_value("ways", ways, f"{keypath}.ways", self.line(entry, "ways"))
            numbers = {}
            for name in ("value", "interval"):
                number = entry.get(name)
                if number is None and name == "interval":
                    numbers[name] = None
                    continue
                if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) or number < 0:
                    self.fail(f"{keypath}.{name}", f"must be a non-negative number, got {number!r}", self.line(entry, name))
                numbers[name] = float(number)
            kind = entry.get("kind")
            if numbers["interval"] is None and "kind" in entry:
                self.fail(f"{keypath}.kind", "given without an interval", self.line(entry, "kind"))
            if numbers["interval"] is not None and kind not in INTERVAL_KINDS:
                self.fail(f"{keypath}.kind", f"must say what the interval is: one of {', '.join(INTERVAL_KINDS)}, got {kind!r}", self.line(entry, "kind") or line)
            counts = {}
            for name in ("seeds", "episodes"):
                count = entry.get(name)
                if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                    self.fail(f"{keypath}.{name}", f"must be a positive integer, got {count!r}", self.line(entry, name))
                counts[name] = count
            source = self.mapping(entry["source"], f"{keypath}.source", entry, "source")
            self.known_keys(source, ("paper", "table"), f"{keypath}.source")
            if not isinstance(source.get("paper"), str):
                self.fail(f"{keypath}.source.paper", "must name the paper", self.line(entry, "source"))
            if not isinstance(source.get("table", ""), (str, int)):
                self.fail(f"{keypath}.source.table", "must be text or a number", self.line(source, "table"))
            key = (cell["dataset"], cell["ways"], cell["shots"], cell["method"], cell["backbone"])
            if key in seen:
                name = "/".join(str(part) for part in key if part is not None)
                self.fail(keypath, f"duplicate reported entry for {name} (first at reported[{seen[key]}])", line)
            seen[key] = i
            yield Reported(
                **cell, value=numbers["value"], interval=numbers["interval"],
                kind=kind if numbers["interval"] is not None else None, **counts,
                paper=source["paper"], table=str(source["table"]) if source.get("table") is not None else None,
            )
