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
from typing import Iterator

from harness import HarnessError, families, plugins, yamlfile
from harness.keys import REQUIRED, check_value

SUITE_KEYS = ("name", "family", "plugins", "paper", "description", "defaults", "grid", "overrides", "exclude",
              "resources", "reported", "report")
REPORT_OPTIONS = ("baseline",)  # the `report:` mapping's keys
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
    """A number the paper reported for the runs whose config has the values of ``cell``."""

    cell: tuple  # ((config key, value), ...) in the suite's order
    metric: str  # which of the family's metrics (default: its first)
    value: float
    interval: float | None
    kind: str | None
    seeds: int | None
    samples: int | None  # units behind the number (test episodes), when the paper says
    paper: str
    table: str | None

    def matches(self, config: dict) -> bool:
        return all(config.get(key) == value for key, value in self.cell)

    @property
    def name(self) -> str:
        return "/".join(str(value) for _, value in self.cell)


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
    plugins: tuple = ()  # resolved plugin items (absolute .py paths, module names)
    keep: tuple = ()  # rules a run must match (`--filter`): {key: [values]}
    warnings: tuple = ()  # what looks wrong but may be right (one line each, printed by the CLI)
    report_options: dict = field(default_factory=dict)  # the `report:` mapping (baseline: a method name)

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
            if not any(matches(config, rule) for rule in self.exclude) and all(matches(config, rule) for rule in self.keep):
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
        plugin_items = self.plugins(doc)
        family = self.family(doc)
        self.keys, self.axes_required = family.keys, family.axes_required
        for required in ("name", "paper", "grid"):
            if required not in doc:
                self.fail(required, "missing (required)")
        name = self.text(doc, "name", "name")
        if not NAME_PATTERN.match(name):
            self.fail("name", f"must be letters, digits, '_', '.', '-' (it names a folder), got {name!r}", self.line(doc, "name"))
        grid = self.grid(doc["grid"], doc)
        suite = Suite(
            path=self.path,
            name=name,
            paper=self.text(doc, "paper", "paper"),
            description=self.text(doc, "description", "description") if "description" in doc else "",
            defaults=self.config_map(doc.get("defaults", {}), "defaults", doc, "defaults"),
            grid=grid,
            overrides=tuple(self.overrides(doc.get("overrides", []), doc)),
            exclude=tuple(self.rules(doc.get("exclude", []), "exclude", doc)),
            resources=self.resources(doc.get("resources", {}), doc),
            reported=(),
            family=family.name,
            plugins=plugin_items,
        )
        if not any(True for _ in suite.configs()):
            self.fail("grid", "no run left: the exclude rules remove every run of the grid", self.line(doc, "exclude") or self.line(doc, "grid"))
        self.warnings = []
        reported = tuple(self.reported(doc.get("reported", []), doc, family, suite))
        report_options = self.report_options(doc.get("report", {}), doc, suite)
        return dataclasses.replace(suite, reported=reported, warnings=tuple(self.warnings), report_options=report_options)

    # -- pieces ---------------------------------------------------------

    def plugins(self, doc) -> tuple:
        items = doc.get("plugins", [])
        if not isinstance(items, list):
            self.fail("plugins", "must be a list of module names or .py paths (relative to this file)", self.line(doc, "plugins"))
        resolved = []
        for i, item in enumerate(items):
            line = self.line(items, i) or self.line(doc, "plugins")
            if not isinstance(item, str) or not item.strip():
                self.fail(f"plugins[{i}]", f"must be a module name or a .py path, got {item!r}", line)
            try:
                resolved.append(plugins.resolve_item(item, self.path.parent))
                plugins.activate([resolved[-1]])
            except HarnessError as error:
                self.fail(f"plugins[{i}]", str(error), line)
        return tuple(resolved)

    def family(self, doc) -> families.Family:
        name = doc.get("family", families.DEFAULT)
        try:
            return families.get(name)
        except HarnessError as error:
            self.fail("family", str(error), self.line(doc, "family"))

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

    def report_options(self, value, doc, suite: Suite) -> dict:
        """The `report:` mapping: `baseline` names a method of the suite's runs, which the
        report compares every other method with (paired where the runs allow)."""
        options = self.mapping(value, "report", doc, "report")
        self.known_keys(options, REPORT_OPTIONS, "report")
        if "baseline" in options:
            line = self.line(options, "baseline")
            baseline = self.config_value("method", options["baseline"], "report.baseline", line)
            methods = sorted({config["method"] for config in suite.configs()})
            if baseline not in methods:
                self.fail("report.baseline", f"method {baseline!r} has no run in this suite (methods: {', '.join(methods)})", line)
        return dict(options)

    def reported(self, value, doc, family, suite: Suite) -> Iterator[Reported]:
        """The paper's numbers: each entry names config values (a cell), the metric (default:
        the family's first), the value and its interval; it must match runs of the grid."""
        if not isinstance(value, list):
            self.fail("reported", "must be a list of entries", self.line(doc, "reported"))
        numbers_fields = ("value", "interval", "kind", "seeds", "samples", "episodes", "source", "metric")
        metrics = [metric.name for metric in family.metrics]
        configs = None
        seen: dict[tuple, int] = {}
        for i, item in enumerate(value):
            keypath = f"reported[{i}]"
            entry = self.mapping(item, keypath, value, i)
            line = self.line(value, i)
            self.known_keys(entry, tuple(self.keys) + numbers_fields, keypath)
            for required in ("value", "source"):
                if required not in entry:
                    self.fail(f"{keypath}.{required}", "missing (required)", line)
            cell = tuple((name, self.config_value(name, entry[name], f"{keypath}.{name}", self.line(entry, name)))
                         for name in entry if name in self.keys and entry[name] is not None)
            if not cell:
                self.fail(keypath, "names no config value (which runs is it the number of?)", line)
            metric = entry.get("metric", metrics[0])
            if metric not in metrics:
                self.fail(f"{keypath}.metric", f"unknown metric {metric!r} of family {family.name} (known: {', '.join(metrics)})",
                          self.line(entry, "metric") or line)
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
            for name in ("seeds", "samples", "episodes"):
                count = entry.get(name)
                if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                    self.fail(f"{keypath}.{name}", f"must be a positive integer, got {count!r}", self.line(entry, name))
                counts[name] = count
            if counts["samples"] is not None and counts["episodes"] is not None:
                self.fail(f"{keypath}.episodes", "give samples or episodes (the same thing), not both", self.line(entry, "episodes"))
            source = self.mapping(entry["source"], f"{keypath}.source", entry, "source")
            self.known_keys(source, ("paper", "table"), f"{keypath}.source")
            if not isinstance(source.get("paper"), str):
                self.fail(f"{keypath}.source.paper", "must name the paper", self.line(entry, "source"))
            if not isinstance(source.get("table", ""), (str, int)):
                self.fail(f"{keypath}.source.table", "must be text or a number", self.line(source, "table"))
            reported = Reported(
                cell=cell, metric=metric, value=numbers["value"], interval=numbers["interval"],
                kind=kind if numbers["interval"] is not None else None, seeds=counts["seeds"],
                samples=counts["samples"] or counts["episodes"],
                paper=source["paper"], table=str(source["table"]) if source.get("table") is not None else None,
            )
            if configs is None:
                configs = list(suite.configs())
            matched = frozenset(n for n, config in enumerate(configs) if reported.matches(config))
            if not matched:
                given = ", ".join(f"{k}={v}" for k, v in cell)
                self.fail(keypath, f"matches no run of the grid ({given}): check its values against the grid, "
                                   "overrides and exclude rules", line)
            unit = family.metric(metric).unit
            if unit == "%" and 0 < reported.value < 1:
                self.warnings.append(f"{self.path}:{line}: {keypath}.value: {reported.value:g} looks like a fraction, "
                                     f"but {metric} is in %: did you mean {reported.value * 100:g}?")
            if (metric, matched) in seen:  # the same number given twice for the same runs
                self.fail(keypath, f"duplicate reported entry for {reported.name} (first at reported[{seen[metric, matched]}])", line)
            seen[metric, matched] = i
            yield reported
