"""The parts of a suite that say what the runs are compared with and how many seeds to spend:
``reported`` (the paper's numbers, and what each ± covers), ``report`` (baseline, margin),
``claims`` (what the paper claims, as tests), ``budget`` (sequential seeds) and ``select``
(axes chosen on validation). Validated with the suite (``harness.suite``): one-line errors
naming the file, the key path and the line. Pure Python: no torch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

REPORT_OPTIONS = ("baseline", "margin")  # the `report:` mapping's keys
INTERVAL_KINDS = ("ci95", "std", "sem")
OVER = ("seeds", "episodes")  # what a reported ± covers: seeds, or one trained model's test episodes
CLAIM_TESTS = ("equivalent", "not_worse", "better", "cost_at_most")
VERSUS = ("each", "best")
COSTS = ("train_seconds", "train_gpu_hours", "train_cpu_hours")
SELECT_PER = ("mean", "seed")
CLAIM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def matches(config: dict, rule: dict) -> bool:
    """Whether a run's config has, for every key of the rule, one of its values."""
    return all(config.get(key) in values for key, values in rule.items())


@dataclass(frozen=True)
class Reported:
    """A number the paper reported for the runs whose config has the values of ``cell``.

    ``over`` says what its ± covers: ``seeds`` (a mean over ``seeds`` trained models) or
    ``episodes`` (ONE trained model, ± over its ``samples`` test units): then the paper's
    number also carries one draw of the seed-to-seed variance, which the verdict adds."""

    cell: tuple  # ((config key, value), ...) in the suite's order
    metric: str  # which of the family's metrics (default: its first)
    value: float
    interval: float | None
    kind: str | None
    seeds: int | None
    samples: int | None  # units behind the number (test episodes), when the paper says
    paper: str
    table: str | None
    over: str = "seeds"
    margin: float | None = None  # this entry's margin (metric units); None: the suite's
    cost: dict | None = None  # {"train_gpu_hours": float, "hardware": str}: the paper's training cost per run

    def matches(self, config: dict) -> bool:
        return all(config.get(key) == value for key, value in self.cell)

    @property
    def name(self) -> str:
        return "/".join(str(value) for _, value in self.cell)

    @property
    def one_model(self) -> bool:
        return self.over == "episodes"


@dataclass(frozen=True)
class Claim:
    """What the paper claims, as a test over cells of runs: runs matching ``a`` against runs
    matching ``b`` in each cell (the runs agreeing on every other cell key) that ``where``
    keeps. ``test``: equivalent (within ±margin), not_worse (by at most margin), better,
    cost_at_most (A's training cost at most ``ratio`` x B's)."""

    name: str
    test: str
    a: dict  # {config key: (values...)}
    b: dict
    where: dict
    metric: str | None  # None for cost claims
    margin: float | None  # None: the suite's report margin
    ratio: float | None
    cost: str | None
    versus: str  # b names several: each of them, or their best in each cell
    quote: str
    paper: str
    section: str | None

    @property
    def source(self) -> str:
        return f"{self.paper}, {self.section}" if self.section else self.paper


@dataclass(frozen=True)
class Budget:
    """Sequential seeds: the grid's seeds are the first round; each later round adds
    ``seeds_per_round`` new seeds to the undecided cells, up to ``max_seeds`` per cell."""

    max_seeds: int
    seeds_per_round: int


@dataclass(frozen=True)
class Selection:
    """Model selection: in each cell, the values of the ``over`` axes are chosen by the
    validation metric ``by`` (on the mean over the selection ``seeds``, or per seed), among the
    configurations that ran on those seeds (None: on every seed they ran); ``confirm`` seeds
    rerun each selected configuration on seeds that played no part in choosing it."""

    over: tuple
    by: str
    per: str
    seeds: tuple | None
    confirm: tuple


class ReportSection:
    """Validates the report-related keys of one suite document (errors through the suite's
    validator, so they name the file, key path and line)."""

    def __init__(self, validator, doc: dict, family, suite):
        self.v, self.doc, self.family, self.suite = validator, doc, family, suite
        self._configs = None
        self._options = None

    @property
    def configs(self) -> list:
        if self._configs is None:
            self._configs = list(self.suite.configs())
        return self._configs

    def fail(self, keypath, message, line=None):
        self.v.fail(keypath, message, line)

    def line(self, container, key):
        return self.v.line(container, key)

    def number(self, entry, name: str, keypath: str, positive: bool = False) -> float:
        number = entry.get(name)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) or number < 0 \
                or (positive and number == 0):
            kind = "a positive number" if positive else "a non-negative number"
            self.fail(keypath, f"must be {kind}, got {number!r}", self.line(entry, name))
        return float(number)

    def count(self, entry, name: str, keypath: str, minimum: int = 1) -> int | None:
        count = entry.get(name)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < minimum):
            self.fail(keypath, f"must be an integer >= {minimum}, got {count!r}", self.line(entry, name))
        return count

    def metric_names(self) -> list[str]:
        return [metric.name for metric in self.family.metrics]

    # -- report: ---------------------------------------------------------

    def options(self) -> dict:
        """``baseline``: a method of the suite's runs, which the report compares every other
        method with; ``margin``: the equivalence margin δ in the headline metric's units, or
        a mapping metric -> δ (stored as the mapping)."""
        if self._options is None:
            self._options = self._read_options()
        return self._options

    def _read_options(self) -> dict:
        options = self.v.mapping(self.doc.get("report", {}), "report", self.doc, "report")
        self.v.known_keys(options, REPORT_OPTIONS, "report")
        result = dict(options)
        if "baseline" in options:
            line = self.line(options, "baseline")
            baseline = self.v.config_value("method", options["baseline"], "report.baseline", line)
            methods = sorted({config["method"] for config in self.configs})
            if baseline not in methods:
                self.fail("report.baseline", f"method {baseline!r} has no run in this suite (methods: {', '.join(methods)})", line)
        if "margin" in options:
            margin = options["margin"]
            if isinstance(margin, dict):
                self.v.known_keys(margin, self.metric_names(), "report.margin")
                result["margin"] = {name: self.number(margin, name, f"report.margin.{name}", positive=True) for name in margin}
            else:
                result["margin"] = {self.family.headline.name: self.number(options, "margin", "report.margin", positive=True)}
        return result

    # -- reported: -------------------------------------------------------

    def reported(self) -> tuple:
        """The paper's numbers: each entry names config values (a cell), the metric (default:
        the family's first), the value, its ± and what it covers; it must match runs."""
        value = self.doc.get("reported", [])
        if not isinstance(value, list):
            self.fail("reported", "must be a list of entries", self.line(self.doc, "reported"))
        fields = ("value", "interval", "kind", "over", "seeds", "samples", "episodes", "source", "metric", "margin", "cost")
        keys = self.v.keys
        seen: dict[tuple, int] = {}
        found = []
        self.unknown_seeds: dict[str, list] = {}
        for i, item in enumerate(value):
            keypath = f"reported[{i}]"
            entry = self.v.mapping(item, keypath, value, i)
            line = self.line(value, i)
            self.v.known_keys(entry, tuple(keys) + fields, keypath)
            for required in ("value", "source"):
                if required not in entry:
                    self.fail(f"{keypath}.{required}", "missing (required)", line)
            cell = tuple((name, self.v.config_value(name, entry[name], f"{keypath}.{name}", self.line(entry, name)))
                         for name in entry if name in keys and entry[name] is not None)
            if not cell:
                self.fail(keypath, "names no config value (which runs is it the number of?)", line)
            metric = entry.get("metric", self.metric_names()[0])
            if metric not in self.metric_names():
                self.fail(f"{keypath}.metric", f"unknown metric {metric!r} of family {self.family.name} "
                                               f"(known: {', '.join(self.metric_names())})", self.line(entry, "metric") or line)
            number = self.number(entry, "value", f"{keypath}.value")
            interval = self.number(entry, "interval", f"{keypath}.interval") if entry.get("interval") is not None else None
            kind = entry.get("kind")
            if interval is None and "kind" in entry:
                self.fail(f"{keypath}.kind", "given without an interval", self.line(entry, "kind"))
            if interval is not None and kind not in INTERVAL_KINDS:
                self.fail(f"{keypath}.kind", f"must say what the interval is: one of {', '.join(INTERVAL_KINDS)}, got {kind!r}",
                          self.line(entry, "kind") or line)
            seeds = self.count(entry, "seeds", f"{keypath}.seeds")
            samples, episodes = (self.count(entry, name, f"{keypath}.{name}") for name in ("samples", "episodes"))
            if samples is not None and episodes is not None:
                self.fail(f"{keypath}.episodes", "give samples or episodes (the same thing), not both", self.line(entry, "episodes"))
            units = samples or episodes
            over = self.over(entry, keypath, line, seeds, units, kind, interval)
            source = self.v.mapping(entry["source"], f"{keypath}.source", entry, "source")
            self.v.known_keys(source, ("paper", "table", "section"), f"{keypath}.source")
            if not isinstance(source.get("paper"), str):
                self.fail(f"{keypath}.source.paper", "must name the paper", self.line(entry, "source"))
            for name in ("table", "section"):
                if not isinstance(source.get(name, ""), (str, int)):
                    self.fail(f"{keypath}.source.{name}", "must be text or a number", self.line(source, name))
            table = source.get("table", source.get("section"))
            reported = Reported(
                cell=cell, metric=metric, value=number, interval=interval, kind=kind if interval is not None else None,
                seeds=seeds, samples=units, paper=source["paper"], table=str(table) if table is not None else None,
                over=over, margin=self.number(entry, "margin", f"{keypath}.margin", positive=True) if "margin" in entry else None,
                cost=self.cost(entry, keypath) if "cost" in entry else None,
            )
            matched = frozenset(n for n, config in enumerate(self.configs) if reported.matches(config))
            if not matched:
                given = ", ".join(f"{k}={v}" for k, v in cell)
                self.fail(keypath, f"matches no run of the grid ({given}): check its values against the grid, "
                                   "overrides and exclude rules", line)
            self.check_scale(reported, keypath, line)
            if (metric, matched) in seen:  # the same number given twice for the same runs
                self.fail(keypath, f"duplicate reported entry for {reported.name} (first at reported[{seen[metric, matched]}])", line)
            seen[metric, matched] = i
            found.append(reported)
        self.warn_unknown_seeds()
        return tuple(found)

    def over(self, entry, keypath: str, line, seeds, units, kind, interval) -> str:
        """What the ±covers: given, or implied by the one count given; else refused (the
        verdict depends on it: a one-model number carries seed variance a mean over seeds
        does not)."""
        over = entry.get("over")
        if over is None:
            if seeds is not None and units is None:
                over = "seeds"
            elif units is not None and seeds is None:
                over = "episodes"
            else:
                self.fail(f"{keypath}.over", "missing: say what the paper's number is over: `over: seeds` (a mean over "
                                             "k trained models, with `seeds: k`) or `over: episodes` (ONE trained model, "
                                             "± over its test episodes, with `episodes: n`)", line)
        elif over not in OVER:
            self.fail(f"{keypath}.over", f"must be seeds or episodes, got {over!r}", self.line(entry, "over"))
        if over == "episodes" and seeds is not None and seeds > 1:
            self.fail(f"{keypath}.seeds", f"over: episodes is ONE trained model; {seeds} seeds contradict it", self.line(entry, "seeds"))
        if over == "seeds" and seeds is None and interval is not None:
            self.unknown_seeds.setdefault(kind, []).append(keypath.partition("[")[2].rstrip("]"))
        return over

    def warn_unknown_seeds(self) -> None:
        """One line per interval kind given over an unknown number of seeds, and how it is read."""
        for kind, entries in self.unknown_seeds.items():
            how = {"std": "taken as the standard error (conservative)", "ci95": "read with the normal quantile 1.96",
                   "sem": "given infinite degrees of freedom"}[kind]
            self.v.warnings.append(f"{self.v.path}: reported[{', '.join(entries)}]: kind {kind} over an unknown number "
                                   f"of seeds: the ± is {how}; give seeds: k where the paper says")

    def cost(self, entry, keypath: str) -> dict:
        cost = self.v.mapping(entry["cost"], f"{keypath}.cost", entry, "cost")
        self.v.known_keys(cost, ("train_gpu_hours", "hardware"), f"{keypath}.cost")
        for required in ("train_gpu_hours", "hardware"):
            if required not in cost:
                self.fail(f"{keypath}.cost.{required}", "missing (required: the training GPU-hours per run, and the "
                                                        "hardware they were measured on)", self.line(entry, "cost"))
        hours = self.number(cost, "train_gpu_hours", f"{keypath}.cost.train_gpu_hours", positive=True)
        if not isinstance(cost["hardware"], str) or not cost["hardware"].strip():
            self.fail(f"{keypath}.cost.hardware", "must name the hardware (e.g. \"1 V100, AWS p3\")", self.line(cost, "hardware"))
        return {"train_gpu_hours": hours, "hardware": cost["hardware"]}

    def check_scale(self, reported: Reported, keypath: str, line) -> None:
        """Warn about a number that looks like it is on another scale than its metric."""
        metric = next(m for m in self.family.metrics if m.name == reported.metric)
        bounds = getattr(metric, "bounds", None)
        where = f"{self.v.path}:{line}: {keypath}.value"
        if metric.unit == "%" and 0 < reported.value < 1:
            self.v.warnings.append(f"{where}: {reported.value:g} looks like a fraction, but {metric.name} is in %: "
                                   f"did you mean {reported.value * 100:g}?")
        elif metric.unit == "%" and reported.value > 100:
            self.v.warnings.append(f"{where}: {reported.value:g} is above 100, but {metric.name} is in %: "
                                   f"did you mean {reported.value / 10:g}?")
        elif bounds and not bounds[0] <= reported.value <= bounds[1]:
            self.v.warnings.append(f"{where}: {reported.value:g} is outside {metric.name}'s range "
                                   f"[{bounds[0]:g}, {bounds[1]:g}]")

    # -- claims: ---------------------------------------------------------

    def claims(self) -> tuple:
        value = self.doc.get("claims", [])
        if not isinstance(value, list):
            self.fail("claims", "must be a list of claims", self.line(self.doc, "claims"))
        fields = ("name", "test", "a", "b", "where", "metric", "margin", "ratio", "cost", "versus", "quote", "source")
        found, names = [], {}
        for i, item in enumerate(value):
            keypath = f"claims[{i}]"
            entry = self.v.mapping(item, keypath, value, i)
            line = self.line(value, i)
            self.v.known_keys(entry, fields, keypath)
            for required in ("name", "test", "a", "b", "quote", "source"):
                if required not in entry:
                    self.fail(f"{keypath}.{required}", "missing (required)", line)
            name = entry["name"]
            if not isinstance(name, str) or not CLAIM_NAME.match(name):
                self.fail(f"{keypath}.name", f"must be letters, digits, '_', '.', '-', got {name!r}", self.line(entry, "name"))
            if name in names:
                self.fail(f"{keypath}.name", f"{name!r} is used twice (first: claims[{names[name]}])", self.line(entry, "name"))
            names[name] = i
            test = entry["test"]
            if test not in CLAIM_TESTS:
                self.fail(f"{keypath}.test", f"must be one of {', '.join(CLAIM_TESTS)}, got {test!r}", self.line(entry, "test"))
            a, b = (self.v.rule(entry[side], f"{keypath}.{side}", entry, side) for side in ("a", "b"))
            where = self.v.rule(entry["where"], f"{keypath}.where", entry, "where") if "where" in entry else {}
            self.claim_sides(a, b, where, keypath, entry)
            cost_test = test == "cost_at_most"
            metric = None
            if not cost_test:
                metric = entry.get("metric", self.metric_names()[0])
                if metric not in self.metric_names():
                    self.fail(f"{keypath}.metric", f"unknown metric {metric!r} (known: {', '.join(self.metric_names())})",
                              self.line(entry, "metric"))
            for name_, allowed in (("margin", test in ("equivalent", "not_worse")), ("ratio", cost_test), ("cost", cost_test),
                                   ("metric", not cost_test)):
                if name_ in entry and not allowed:
                    self.fail(f"{keypath}.{name_}", f"does not apply to test {test}", self.line(entry, name_))
            if cost_test and "ratio" not in entry:
                self.fail(f"{keypath}.ratio", "missing: cost_at_most needs the ratio r (A's cost <= r x B's)", line)
            cost = entry.get("cost", "train_seconds") if cost_test else None
            if cost_test and cost not in COSTS:
                self.fail(f"{keypath}.cost", f"must be one of {', '.join(COSTS)}, got {cost!r}", self.line(entry, "cost"))
            versus = entry.get("versus", "each")
            if versus not in VERSUS:
                self.fail(f"{keypath}.versus", f"must be each or best, got {versus!r}", self.line(entry, "versus"))
            if versus == "best" and test not in ("not_worse", "better"):
                self.fail(f"{keypath}.versus", "best applies to not_worse and better only", self.line(entry, "versus"))
            quote = entry["quote"]
            if not isinstance(quote, str) or not quote.strip():
                self.fail(f"{keypath}.quote", "must be the paper's words (a non-empty string)", self.line(entry, "quote"))
            source = self.v.mapping(entry["source"], f"{keypath}.source", entry, "source")
            self.v.known_keys(source, ("paper", "section", "table"), f"{keypath}.source")
            if not isinstance(source.get("paper"), str):
                self.fail(f"{keypath}.source.paper", "must name the paper", self.line(entry, "source"))
            section = source.get("section", source.get("table"))
            found.append(Claim(
                name=name, test=test, a=a, b=b, where=where, metric=metric,
                margin=self.number(entry, "margin", f"{keypath}.margin", positive=True) if "margin" in entry else None,
                ratio=self.number(entry, "ratio", f"{keypath}.ratio", positive=True) if cost_test else None,
                cost=cost, versus=versus, quote=quote.strip(), paper=source["paper"],
                section=str(section) if section is not None else None))
            if test in ("equivalent", "not_worse") and found[-1].margin is None:
                self.margin_for(metric, keypath, line)
        return tuple(found)

    def claim_sides(self, a: dict, b: dict, where: dict, keypath: str, entry) -> None:
        """A and B name the same keys (what is compared), select runs, and no run is on both."""
        if set(a) != set(b):
            self.fail(keypath, f"a and b must name the same keys (what the claim compares), got "
                               f"{', '.join(sorted(a))} and {', '.join(sorted(b))}", self.line(entry, "b"))
        if set(where) & set(a):
            self.fail(f"{keypath}.where", f"names {', '.join(sorted(set(where) & set(a)))}, which a and b compare",
                      self.line(entry, "where"))
        kept = [config for config in self.configs if matches(config, where)]
        for side, rule in (("a", a), ("b", b)):
            if not any(matches(config, rule) for config in kept):
                self.fail(f"{keypath}.{side}", "matches no run of the grid" + (" where the claim applies" if where else ""),
                          self.line(entry, side))
        if any(matches(config, a) and matches(config, b) for config in kept):
            self.fail(f"{keypath}.b", "selects runs that a selects too", self.line(entry, "b"))

    def margin_for(self, metric: str, keypath: str, line) -> None:
        margins = self.options().get("margin") or {}
        if metric not in margins:
            self.fail(f"{keypath}.margin", f"missing: an equivalence or non-inferiority claim needs a margin δ in "
                                           f"{metric}'s units (here, or the suite's report: {{margin: ...}})", line)

    # -- budget: and select: --------------------------------------------

    def budget(self) -> Budget | None:
        if "budget" not in self.doc:
            return None
        budget = self.v.mapping(self.doc["budget"], "budget", self.doc, "budget")
        self.v.known_keys(budget, ("max_seeds", "seeds_per_round"), "budget")
        for required in ("max_seeds", "seeds_per_round"):
            if required not in budget:
                self.fail(f"budget.{required}", "missing (required)", self.line(self.doc, "budget"))
        max_seeds = self.count(budget, "max_seeds", "budget.max_seeds", minimum=2)
        per_round = self.count(budget, "seeds_per_round", "budget.seeds_per_round")
        seeds = len(self.suite.grid.get("seed", []))
        if max_seeds < seeds:
            self.fail("budget.max_seeds", f"{max_seeds} is below the {seeds} seeds the grid already runs",
                      self.line(budget, "max_seeds"))
        return Budget(max_seeds, per_round)

    def select(self) -> Selection | None:
        if "select" not in self.doc:
            return None
        select = self.v.mapping(self.doc["select"], "select", self.doc, "select")
        self.v.known_keys(select, ("over", "by", "per", "seeds", "confirm"), "select")
        for required in ("over", "by"):
            if required not in select:
                self.fail(f"select.{required}", "missing (required)", self.line(self.doc, "select"))
        over = select["over"] if isinstance(select["over"], list) else [select["over"]]
        axes = self.suite.axes
        for i, axis in enumerate(over):
            if axis not in self.v.keys:
                self.fail(f"select.over[{i}]", f"unknown key {axis!r}", self.line(select, "over"))
            if axis in ("seed", "dataset", "method"):
                self.fail(f"select.over[{i}]", f"{axis} cannot be selected over (it names what is compared)",
                          self.line(select, "over"))
            if axis not in axes:
                self.fail(f"select.over[{i}]", f"{axis!r} takes one value in the grid: nothing to select",
                          self.line(select, "over"))
        validation = [metric.name for metric in self.family.validation]
        by = select["by"]
        if by not in validation:
            known = ", ".join(validation) if validation else f"none: family {self.family.name} declares no validation metric"
            self.fail("select.by", f"must be a validation metric of the family ({known}), got {by!r}: "
                                   "never a test metric", self.line(select, "by"))
        per = select.get("per", "mean")
        if per not in SELECT_PER:
            self.fail("select.per", f"must be mean (the seed mean of each configuration) or seed, got {per!r}",
                      self.line(select, "per"))
        grid_seeds = self.suite.grid.get("seed", [])
        seeds = self.seed_list(select, "seeds")
        if seeds is not None:
            outside = [seed for seed in seeds if seed not in grid_seeds]
            if outside:
                self.fail("select.seeds", f"seeds {', '.join(map(str, outside))} are in no grid", self.line(select, "seeds"))
        confirm = self.seed_list(select, "confirm") or []
        chosen_on = set(seeds if seeds is not None else grid_seeds)
        if chosen_on & set(confirm):
            self.fail("select.confirm", f"seeds {', '.join(map(str, sorted(chosen_on & set(confirm))))} choose the "
                                        "configuration: confirmation needs seeds that played no part in it",
                      self.line(select, "confirm"))
        if confirm and per == "seed":
            self.fail("select.confirm", "confirmation reruns ONE chosen configuration per cell: use per: mean "
                                        "(per: seed chooses one per seed)", self.line(select, "confirm"))
        return Selection(tuple(over), by, per, tuple(seeds) if seeds is not None else None, tuple(confirm))

    def seed_list(self, select, name: str) -> list | None:
        if name not in select:
            return None
        seeds = select[name]
        if not isinstance(seeds, list) or not seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            self.fail(f"select.{name}", "must be a non-empty list of seeds (integers >= 0)", self.line(select, name))
        if len(set(seeds)) != len(seeds):
            self.fail(f"select.{name}", "repeats a seed", self.line(select, name))
        return seeds
