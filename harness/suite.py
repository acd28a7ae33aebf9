"""Suite files: load, validate (one clear error line), expand into run configs.

Pure Python: no torch. See the README for every key, with a complete example.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import HarnessError, families, plugins, yamlfile
from harness.keys import REQUIRED, check_value
from harness.suite_report import Reported, ReportSection, matches  # noqa: F401  (re-exported)

SUITE_KEYS = ("name", "family", "plugins", "paper", "description", "defaults", "grid", "overrides", "exclude",
              "resources", "reported", "report", "claims", "budget", "select")
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

    def updated(self, values: dict) -> Resources:
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
    grids: tuple  # one or more grids ({axis: [values]}); the suite's runs are their union
    overrides: tuple
    exclude: tuple
    resources: Resources
    reported: tuple
    family: str = families.DEFAULT
    plugins: tuple = ()  # resolved plugin items (absolute .py paths, module names)
    keep: tuple = ()  # rules a run must match (`--filter`): {key: [values]}
    warnings: tuple = ()  # what looks wrong but may be right (one line each, printed by the CLI)
    report_options: dict = field(default_factory=dict)  # the `report:` mapping (baseline, margin)
    claims: tuple = ()  # the paper's claims (harness.suite_report.Claim)
    budget: object = None  # harness.suite_report.Budget: how many seeds sequential rounds may add
    select: object = None  # harness.suite_report.Selection: axes chosen on validation

    @property
    def keys(self) -> dict:
        """The config schema of the suite's family."""
        return families.get(self.family).keys

    @property
    def grid(self) -> dict:
        """Every axis of the grids with all the values it takes in any of them, in order."""
        merged: dict = {}
        for grid in self.grids:
            for axis, values in grid.items():
                known = merged.setdefault(axis, [])
                known += [value for value in values if value not in known]
        return merged

    def base_config(self) -> dict:
        base = {name: key.default for name, key in self.keys.items() if key.default is not REQUIRED}
        base.update(self.defaults)
        return base

    def grid_configs(self) -> Iterator[dict]:
        """Every grid point with the defaults and overrides applied, before exclude rules."""
        base = self.base_config()
        for grid in self.grids:
            axes = list(grid)
            for values in itertools.product(*grid.values()):
                config = {**base, **dict(zip(axes, values))}
                for override in self.overrides:
                    if matches(config, override.when):
                        config.update(override.set)
                yield config

    def configs(self) -> Iterator[dict]:
        """Every run's fully resolved config, lazily, in grid order (the grids' runs, one
        grid after the other; a run two grids share is expanded once, see spec.expand)."""
        for config in self.grid_configs():
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
        """Grid axes that take more than one value (the report groups by these): in one
        grid, or across grids (an axis a grid leaves out takes the default there)."""
        base = self.base_config()
        found = []
        for name in self.grid:
            values = []
            for grid in self.grids:
                for value in grid.get(name, [base.get(name)]):
                    if value not in values:
                        values.append(value)
            if len(values) > 1:
                found.append(name)
        return found


def kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


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
        grids = self.grids(doc["grid"], doc)
        suite = Suite(
            path=self.path,
            name=name,
            paper=self.text(doc, "paper", "paper"),
            description=self.text(doc, "description", "description") if "description" in doc else "",
            defaults=self.config_map(doc.get("defaults", {}), "defaults", doc, "defaults"),
            grids=grids,
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
        self.unused_rules(suite, doc)
        report = ReportSection(self, doc, family, suite)
        return dataclasses.replace(suite, reported=report.reported(), report_options=report.options(),
                                   claims=report.claims(), budget=report.budget(), select=report.select(),
                                   warnings=tuple(self.warnings))

    def unused_rules(self, suite: Suite, doc) -> None:
        """A warning for each override or exclude rule that no grid point matches (a typo in a
        value, or a rule left behind): it changes nothing, which is rarely what was meant."""
        configs = list(suite.grid_configs())
        for keypath, rules in (("overrides", [o.when for o in suite.overrides]), ("exclude", list(suite.exclude))):
            for i, rule in enumerate(rules):
                if not any(matches(config, rule) for config in configs):
                    items = doc.get(keypath)
                    line = self.line(items, i) if isinstance(items, list) else None
                    given = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in rule.items())
                    where = f"{self.path}:{line}" if line else str(self.path)
                    self.warnings.append(f"{where}: {keypath}[{i}] ({given}) matches no run of the grid: it changes nothing")

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

    def grids(self, value, doc) -> tuple:
        """One grid (a mapping of axes), or a list of grids whose runs are united."""
        if isinstance(value, list):
            if not value:
                self.fail("grid", "an empty list of grids", self.line(doc, "grid"))
            return tuple(self.grid(item, f"grid[{i}]", value, i) for i, item in enumerate(value))
        return (self.grid(value, "grid", doc, "grid"),)

    def grid(self, value, keypath: str, parent, key) -> dict:
        grid = self.mapping(value, keypath, parent, key)
        self.known_keys(grid, self.keys, keypath)
        for axis in self.axes_required:
            if axis not in grid:
                self.fail(keypath, f"missing axis {axis!r} (a grid needs at least {', '.join(self.axes_required)})",
                          self.line(parent, key))
        axes = {}
        for name, values in grid.items():
            line = self.line(grid, name)
            if not isinstance(values, list):
                values = [values]
            if not values:
                self.fail(f"{keypath}.{name}", "empty axis (give at least one value)", line)
            checked = [
                self.config_value(name, item, f"{keypath}.{name}[{i}]", self.line(values, i) or line)
                for i, item in enumerate(values)
            ]
            if len(set(map(repr, checked))) != len(checked):
                self.fail(f"{keypath}.{name}", "repeats a value", line)
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
