"""Suite files at the library level: grid expansion, run ids, selection, validation errors."""
from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
import yaml

import harness
import harness.spec
from harness import families
from harness.fewshot.config import KEYS
from harness.keys import REQUIRED, choices_of
from harness.spec import expand, run_id, select
from harness.suite import Reported, Resources, SuiteError, load_suite

# the family's full schema: its own keys and those its components declare (harness.schema)
SCHEMA_DEFAULTS = {name: key.default for name, key in families.get("fewshot").keys.items() if key.default is not REQUIRED}


def write_suite(tmp_path: Path, content, name: str = "suite.yaml") -> Path:
    """Write a suite from a dict (dumped as YAML, key order kept), text (dedented) or bytes."""
    path = tmp_path / name
    if isinstance(content, dict):
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


def minimal(**grid) -> dict:
    """The smallest valid suite, with grid axes replaced or added."""
    return {
        "name": "t",
        "paper": "p",
        "grid": {"dataset": ["omniglot"], "shots": [1], "method": ["mtl"], "seed": [0], **grid},
    }


def configs(suite) -> list[dict]:
    return list(suite.configs())


def cells(suite, *keys) -> list[tuple]:
    return [tuple(config[key] for key in keys) for config in suite.configs()]


HAND = """\
    name: hand
    paper: p
    defaults:
      steps: 50
      device: cpu
    grid:
      dataset: [omniglot]
      shots: [1, 5]
      method: [mtl, protonet]
      seed: [0, 1]
"""


# -- grid expansion -----------------------------------------------------------------


def test_hand_checked_suite_expands_to_exact_configs_in_product_order(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND))
    expected_cells = [
        (1, "mtl", 0), (1, "mtl", 1), (1, "protonet", 0), (1, "protonet", 1),
        (5, "mtl", 0), (5, "mtl", 1), (5, "protonet", 0), (5, "protonet", 1),
    ]  # itertools.product order: the last axis varies fastest
    expected = [
        {**SCHEMA_DEFAULTS, "steps": 50, "device": "cpu",
         "dataset": "omniglot", "shots": shots, "method": method, "seed": seed}
        for shots, method, seed in expected_cells
    ]
    assert configs(suite) == expected
    assert len(list(expand(suite))) == 8
    assert suite.axes == ["shots", "method", "seed"]


def test_every_schema_default_is_filled_in(tmp_path):
    suite = load_suite(write_suite(tmp_path, minimal()))
    (config,) = configs(suite)
    # required keys come from the grid, the rest from the schema (the family's keys and its components')
    assert set(config) == set(families.get("fewshot").keys) > set(KEYS)
    for name, value in SCHEMA_DEFAULTS.items():
        assert name in config and config[name] == value, name
    # a few defaults pinned by hand, so a silent change of the schema shows up here
    assert (config["ways"], config["queries"], config["backbone"], config["steps"]) == (5, 15, "conv4", 1000)
    assert (config["lr"], config["optimizer"], config["patience"], config["eval_head"]) == (0.001, "adam", None, None)


def test_defaults_override_schema_and_grid_overrides_defaults(tmp_path):
    suite = load_suite(write_suite(tmp_path, {**minimal(steps=[7, 8]), "defaults": {"steps": 3, "lr": 0.5, "ways": 10}}))
    assert [(c["steps"], c["lr"], c["ways"]) for c in configs(suite)] == [(7, 0.5, 10), (8, 0.5, 10)]


def test_override_with_scalar_when(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    overrides:
      - when: {method: mtl}
        set: {meta_batch: 2, feature_norm: true}
    """))
    got = cells(suite, "method", "meta_batch", "feature_norm")
    assert got == [("mtl", 2, True)] * 2 + [("protonet", 1, False)] * 2 + [("mtl", 2, True)] * 2 + [("protonet", 1, False)] * 2


def test_override_with_list_when_and_several_keys(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    overrides:
      - when: {seed: [1, 7], method: protonet}
        set: {steps: 99}
    """))
    assert cells(suite, "shots", "method", "seed", "steps") == [
        (1, "mtl", 0, 50), (1, "mtl", 1, 50), (1, "protonet", 0, 50), (1, "protonet", 1, 99),
        (5, "mtl", 0, 50), (5, "mtl", 1, 50), (5, "protonet", 0, 50), (5, "protonet", 1, 99),
    ]


def test_overrides_apply_in_order_and_the_later_wins(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    overrides:
      - when: {method: mtl}
        set: {lr: 0.01, meta_batch: 4}
      - when: {shots: 5}
        set: {lr: 0.02}
    """))
    lrs = {(shots, method): (lr, mb) for shots, method, lr, mb in cells(suite, "shots", "method", "lr", "meta_batch")}
    assert lrs == {
        (1, "mtl"): (0.01, 4),
        (1, "protonet"): (0.001, 1),
        (5, "mtl"): (0.02, 4),  # both match: the later override wins for lr, the earlier's meta_batch stays
        (5, "protonet"): (0.02, 1),
    }


def test_exclude_with_scalar_and_list_values(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    exclude:
      - {seed: 1, shots: 1}
      - {method: [protonet], shots: [5, 20]}
    """))
    assert cells(suite, "shots", "method", "seed") == [(1, "mtl", 0), (1, "protonet", 0), (5, "mtl", 0), (5, "mtl", 1)]


def test_exclude_rule_matches_values_set_by_overrides(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    overrides:
      - when: {method: mtl}
        set: {meta_batch: 2}
    exclude:
      - {meta_batch: 2, shots: 5}
    """))
    assert cells(suite, "shots", "method", "seed") == [
        (1, "mtl", 0), (1, "mtl", 1), (1, "protonet", 0), (1, "protonet", 1), (5, "protonet", 0), (5, "protonet", 1),
    ]


def test_configs_that_resolve_identically_are_expanded_once(tmp_path):
    suite = load_suite(write_suite(tmp_path, HAND + """\
    overrides:
      - when: {seed: 1}
        set: {seed: 0}
    """))
    assert len(configs(suite)) == 8
    specs = list(expand(suite))
    assert [(s.config["shots"], s.config["method"], s.config["seed"]) for s in specs] == [
        (1, "mtl", 0), (1, "protonet", 0), (5, "mtl", 0), (5, "protonet", 0),
    ]


def test_a_10000_run_grid_plans_10000_distinct_runs(tmp_path):
    # how long planning takes is measured by benchmarks/store_scale.py, not here
    path = write_suite(tmp_path, minimal(
        seed=list(range(10)),
        lr=[round(0.1 * i, 1) for i in range(1, 11)],
        meta_batch=list(range(1, 11)),
        steps=list(range(100, 1100, 100)),
    ))
    specs = list(expand(load_suite(path)))
    assert len(specs) == 10_000
    assert len({spec.run_id for spec in specs}) == 10_000


# -- run ids ------------------------------------------------------------------------


@pytest.fixture
def fixed_identity(monkeypatch):
    """Make every dataset fingerprint a constant."""
    monkeypatch.setattr(harness.spec, "dataset_fingerprint", lambda family, name: "0123456789abcdef")


def test_run_id_hashing_is_stable(fixed_identity):
    # Computed once with the original code. If this fails, hashing or canonical JSON
    # changed, and every existing results folder would silently stop matching its plan.
    config = {"dataset": "omniglot", "shots": 1, "method": "mtl", "seed": 0, "lr": 0.001}
    assert run_id(config) == "668876766f65"
    assert run_id(dict(reversed(list(config.items())))) == "668876766f65"


def test_run_id_of_the_smallest_suite_is_stable(tmp_path):
    # Pins the hashing, the identity's layout, the versions of the family and of the
    # components the run uses, and the shipped Omniglot fingerprint together. Keys at
    # their default are not hashed, so adding a key with a default does not change it;
    # bumping a used component's or the family's version does (on purpose).
    (spec,) = expand(load_suite(write_suite(tmp_path, minimal())))
    assert spec.run_id == "a520301e6b38"


def test_run_ids_are_12_hex_and_distinct(tmp_path):
    specs = list(expand(load_suite(write_suite(tmp_path, HAND))))
    assert all(re.fullmatch(r"[0-9a-f]{12}", spec.run_id) for spec in specs)
    assert len({spec.run_id for spec in specs}) == len(specs) == 8


def test_same_suite_loaded_twice_gives_the_same_ids(tmp_path):
    path = write_suite(tmp_path, HAND)
    assert [s.run_id for s in expand(load_suite(path))] == [s.run_id for s in expand(load_suite(path))]


def test_key_order_and_int_vs_float_spelling_do_not_change_ids(tmp_path):
    one = {
        "name": "a", "paper": "p", "defaults": {"lr": 1, "steps": 10, "weight_decay": 0},
        "grid": {"dataset": ["omniglot"], "shots": [1, 5], "method": ["mtl", "protonet"], "seed": [0, 1]},
    }
    other = {
        "grid": {"seed": [1, 0], "method": ["protonet", "mtl"], "shots": [5, 1], "dataset": ["omniglot"]},
        "defaults": {"weight_decay": 0.0, "steps": 10, "lr": 1.0},
        "paper": "p", "name": "a",
    }
    first = {s.run_id: s.config for s in expand(load_suite(write_suite(tmp_path, one, "one.yaml")))}
    second = {s.run_id: s.config for s in expand(load_suite(write_suite(tmp_path, other, "other.yaml")))}
    assert "lr: 1\n" in (tmp_path / "one.yaml").read_text() and "lr: 1.0\n" in (tmp_path / "other.yaml").read_text()
    assert len(first) == 8
    assert first == second


def _other_value(name: str, value):
    """A different value of the same key that still passes validation."""
    key = KEYS[name]
    allowed = choices_of(key)
    if allowed is not None:
        # run_id does not validate; a made-up name stands in where only one is shipped
        # (fingerprints are patched out, so an unknown dataset is fine here)
        return next((choice for choice in allowed if choice != value), f"another_{name}")
    if value is None:
        return {int: 3, float: 0.5}[key.type]
    if key.type is bool:
        return not value
    return value * 2 + 1 if key.type is int else value * 2 + 0.25


@pytest.mark.parametrize("name", sorted(KEYS))
def test_changing_any_config_value_changes_the_id(tmp_path, fixed_identity, name):
    (spec,) = expand(load_suite(write_suite(tmp_path, minimal())))
    changed = {**spec.config, name: _other_value(name, spec.config[name])}
    assert changed != spec.config
    assert run_id(changed) != spec.run_id
    assert run_id(dict(spec.config)) == spec.run_id


def test_upgrading_the_harness_version_keeps_the_id(tmp_path, monkeypatch):
    suite = load_suite(write_suite(tmp_path, minimal()))
    (before,) = expand(suite)
    monkeypatch.setattr(harness, "__version__", harness.__version__ + ".post1")
    (after,) = expand(suite)
    assert after.config == before.config and after.run_id == before.run_id


def test_changing_the_dataset_fingerprint_changes_the_id(tmp_path, monkeypatch):
    suite = load_suite(write_suite(tmp_path, minimal()))
    (before,) = expand(suite)
    monkeypatch.setattr(harness.spec, "dataset_fingerprint", lambda family, name: "something else")
    (after,) = expand(suite)
    assert after.run_id != before.run_id


@pytest.fixture
def fresh_fingerprints():
    harness.spec.dataset_fingerprint.cache_clear()
    yield
    harness.spec.dataset_fingerprint.cache_clear()


def test_the_datasets_own_fingerprint_flows_into_the_id(tmp_path, monkeypatch, fresh_fingerprints):
    from harness.fewshot.datasets import DATASETS

    suite = load_suite(write_suite(tmp_path, minimal()))
    (before,) = expand(suite)
    omniglot = DATASETS.get("omniglot")
    monkeypatch.setattr(omniglot, "fingerprint", staticmethod(lambda: "new data"))
    harness.spec.dataset_fingerprint.cache_clear()
    (after,) = expand(suite)
    assert after.run_id != before.run_id


# -- select -------------------------------------------------------------------------


@pytest.mark.parametrize("filters, expected", [
    ({}, 8),
    ({"method": ["mtl"]}, 4),
    ({"method": ["mtl", "protonet"]}, 8),  # same key: any of its values
    ({"method": ["mtl"], "seed": [1]}, 2),  # different keys: all of them
    ({"method": ["mtl"], "seed": [1], "shots": [5]}, 1),
    ({"shots": [2]}, 0),
    ({"steps": [50]}, 8),  # a non-axis key: matched against the resolved config
    ({"steps": [1000]}, 0),
])
def test_select(tmp_path, filters, expected):
    specs = list(expand(load_suite(write_suite(tmp_path, HAND))))
    chosen = list(select(specs, filters))
    assert len(chosen) == expected
    assert all(all(spec.config[k] in v for k, v in filters.items()) for spec in chosen)
    assert [s for s in specs if s in chosen] == chosen  # order kept


# -- validation errors --------------------------------------------------------------

BASE = """\
name: t
paper: p
grid:
  dataset: [omniglot]
  shots: [1, 5]
  method: [mtl, protonet]
  seed: [0]
"""  # lines 1-7; text appended below starts on line 8


def billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    previous = "a"
    for label in "bcdefghijklmnop"[: levels - 1]:
        text += f"{label}: &{label} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = label
    return text


ANY_LINE = "any"


def _unreadable(tmp_path):
    path = write_suite(tmp_path, BASE)
    path.chmod(0)
    return path


# (id, content: text / bytes / callable(tmp_path) -> path, expected line or None or ANY_LINE, fragments[, mark])
ERROR_CASES = [
    ("unknown-top-level-key", "name: t\npaper: p\ngrdi:\n  dataset: [omniglot]\n", 3, ["grdi", "unknown key", "did you mean 'grid'"]),
    ("unknown-key-in-defaults", BASE + "defaults:\n  ways: 5\n  lrr: 0.1\n", 10, ["defaults.lrr", "unknown key", "'lr'"]),
    ("shots-string", BASE.replace("shots: [1, 5]", 'shots: "five"'), 5, ["grid.shots", "integer", "five"]),
    ("shots-string-in-list", BASE.replace("shots: [1, 5]", "shots: [1, five]"), 5, ["grid.shots[1]", "integer"]),
    ("lr-string", BASE + "defaults:\n  lr: fast\n", 9, ["defaults.lr", "number", "fast"]),
    ("feature-norm-int", BASE + "defaults:\n  feature_norm: 3\n", 9, ["defaults.feature_norm", "true or false"]),
    ("seed-bool", BASE.replace("seed: [0]", "seed: [true]"), 7, ["grid.seed", "integer", "bool"]),
    ("unknown-dataset", BASE.replace("[omniglot]", "[omniglott]"), 4, ["grid.dataset", "omniglott", "omniglot"]),
    ("unknown-method", BASE.replace("[mtl, protonet]", "[mtl, mamll]"), 6, ["grid.method[1]", "mamll", "protonet"]),
    ("shots-zero", BASE.replace("shots: [1, 5]", "shots: [0]"), 5, ["grid.shots", ">= 1", "0"]),
    ("shots-negative", BASE.replace("shots: [1, 5]", "shots: [1, -1]"), 5, ["grid.shots[1]", ">= 1", "-1"]),
    ("ways-zero-in-grid", BASE + "  ways: [5, 0]\n", 8, ["grid.ways[1]", ">= 2"]),
    ("ways-negative-in-defaults", BASE + "defaults:\n  ways: -1\n", 9, ["defaults.ways", ">= 2"]),
    ("empty-axis", BASE.replace("seed: [0]", "seed: []"), 7, ["grid.seed", "empty axis"]),
    ("axis-repeats-a-value", BASE.replace("seed: [0]", "seed: [0, 1, 0]"), 7, ["grid.seed", "repeats"]),
    ("axis-repeats-1-and-1.0", BASE + "  lr: [1, 1.0]\n", 8, ["grid.lr", "repeats"]),
    ("missing-axis", BASE.replace("  seed: [0]\n", ""), 3, ["grid", "missing axis 'seed'"]),
    ("missing-name", BASE.replace("name: t\n", ""), None, ["name", "missing"]),
    ("duplicate-top-level-key", BASE + "name: u\n", 8, ["name: duplicate key", "line 1"]),
    ("duplicate-nested-key", BASE + "  seed: [1]\n", 8, ["grid.seed: duplicate key", "line 7"]),
    ("duplicate-reported-entry", BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: 90.0, source: {paper: x}}
  - {dataset: omniglot, ways: 5, shots: 1, method: mtl, over: seeds, value: 91.0, source: {paper: y}}
""", 10, ["reported[1]", "duplicate reported entry", "reported[0]"]),
    ("reported-interval-without-kind", BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: 90.0, interval: 0.5, source: {paper: x}}
""", 9, ["reported[0].kind", "ci95"]),
    ("reported-interval-bad-kind", BASE + """\
reported:
  - dataset: omniglot
    shots: 1
    method: mtl
    value: 90.0
    interval: 0.5
    kind: ci99
    source: {paper: x}
""", 14, ["reported[0].kind", "ci99"]),
    ("unclosed-bracket", BASE.replace("seed: [0]", "seed: [0, 1"), ANY_LINE, ["malformed YAML"]),
    ("tab-indent", BASE.replace("  seed: [0]", "\tseed: [0]"), 7, ["malformed YAML", "\\t"]),
    ("alias-bomb", BASE + billion_laughs(), ANY_LINE, ["alias bomb"]),
    ("recursive-alias", "name: t\npaper: p\ngrid: &a\n  dataset: [omniglot]\n  again: *a\n", 3, ["recursive alias"]),
    ("missing-file", lambda tmp_path: tmp_path / "nope.yaml", None, ["no such file"]),
    ("directory", lambda tmp_path: tmp_path, None, ["directory"]),
    (
        "unreadable-file", _unreadable, None, ["cannot read"],
        pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode"),
    ),
    ("invalid-utf8", BASE.encode() + b"description: caf\xe9 \xff\n", None, ["cannot read", "utf-8"]),
    ("empty-file", "", None, ["empty file"]),
    ("only-comments", "# nothing here\n\n", None, ["empty file"]),
    ("top-level-list", "- name: t\n- paper: p\n", None, ["must be a mapping"]),
    ("python-object-tag", BASE + 'description: !!python/object/apply:os.system ["echo hi"]\n', 8, ["python/object/apply:os.system"]),
    ("unknown-resources-key", BASE + "resources:\n  gpu: 1\n", 9, ["resources.gpu", "did you mean 'gpus'"]),
    ("resources-wrong-type", BASE + "resources:\n  cpus: two\n", 9, ["resources.cpus", "wrong type"]),
    ("resources-below-minimum", BASE + "resources:\n  gpus: -1\n", 9, ["resources.gpus", ">= 0"]),
    ("resources-not-a-mapping", BASE + "resources: [1, 2]\n", 8, ["resources", "mapping"]),
    ("unknown-override-key", BASE + "overrides:\n  - when: {method: mtl}\n    sett: {lr: 0.1}\n", 10, ["overrides[0].sett", "did you mean 'set'"]),
    ("override-missing-set", BASE + "overrides:\n  - when: {method: mtl}\n", 9, ["overrides[0].set", "missing"]),
    ("override-bad-value", BASE + "overrides:\n  - when: {method: mtl}\n    set: {lr: -1}\n", 10, ["overrides[0].set.lr", "> 0"]),
    ("exclude-unknown-key", BASE + "exclude:\n  - {shotz: 1}\n", 9, ["exclude[0].shotz", "did you mean 'shots'"]),
    ("suite-name-with-slash", BASE.replace("name: t", "name: a/b"), 1, ["name", "'a/b'"]),
    ("lr-nan", BASE + "defaults:\n  lr: .nan\n", 9, ["defaults.lr", "finite"]),
    ("lr-inf", BASE + "defaults:\n  lr: .inf\n", 9, ["defaults.lr", "finite"]),
    ("reported-value-nan", BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: .nan, source: {paper: x}}
""", 9, ["reported[0].value"]),
    ("reported-kind-without-interval", BASE + """\
reported:
  - {dataset: omniglot, shots: 1, method: mtl, over: seeds, value: 50, kind: std, source: {paper: x}}
""", 9, ["reported[0].kind", "without an interval"]),
]


@pytest.mark.parametrize("case_id, content, line, fragments", [
    pytest.param(*case[:4], id=case[0], marks=case[4:]) for case in ERROR_CASES
])
def test_validation_errors_are_one_line_with_path_line_and_key(tmp_path, case_id, content, line, fragments):
    path = content(tmp_path) if callable(content) else write_suite(tmp_path, content)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message and message
    if line == ANY_LINE:
        assert re.match(rf"{re.escape(str(path))}:\d+: ", message), message
    elif line is None:
        assert message.startswith(f"{path}: "), message
    else:
        assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_alias_bomb_is_rejected_without_expanding_it(tmp_path):
    # 9**15 strings if expanded: a loader that expanded it would never return
    path = write_suite(tmp_path, BASE + billion_laughs(levels=15))
    with pytest.raises(SuiteError, match="alias bomb"):
        load_suite(path)


def test_python_object_tag_is_rejected_without_running_it(tmp_path):
    marker = tmp_path / "EXECUTED"
    path = write_suite(tmp_path, BASE + f'description: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(SuiteError, match="python/object"):
        load_suite(path)
    top = write_suite(tmp_path, f'!!python/object/apply:os.system ["touch {marker}"]\n', "top.yaml")
    with pytest.raises(SuiteError):
        load_suite(top)
    assert not marker.exists()


# -- a complete, valid suite --------------------------------------------------------

COMPLETE = """\
    name: complete-1.0_suite
    paper: "Someone et al. (2021), A Paper"
    description: >
      Every top-level key,
      used once.
    defaults:
      ways: 5
      steps: 20
      lr: 1
      eval_head: logreg
      patience: null
    grid:
      dataset: omniglot
      shots: [1, 5]
      method: [mtl, protonet]
      seed: [0, 1, 2]
    overrides:
      - when: {method: mtl}
        set: {meta_batch: 2}
    exclude:
      - {method: protonet, seed: 2}
    resources:
      gpus: 1
      cpus: 4
      mem_gb: 7.5
      timeout_min: 90
      partition: gpu
      account: lab
      qos: high
      sbatch_args: {constraint: a100, exclusive: true, nice: 10}
    reported:
      - dataset: omniglot
        ways: 5
        shots: 1
        method: mtl
        value: 96.5
        interval: 0.2
        kind: ci95
        episodes: 2000
        source: {paper: "Someone et al. (2021)", table: 2}
      - {dataset: omniglot, shots: 5, method: mtl, value: 99, interval: 0.1, kind: std, seeds: 3,
         source: {paper: "Someone et al. (2021)", table: "3b"}}
      - {dataset: omniglot, shots: 1, method: protonet, over: seeds, value: 95.0, interval: 0.3, kind: sem,
         source: {paper: Other}}
      - {dataset: omniglot, shots: 5, method: protonet, over: seeds, value: 98.1, source: {paper: Other}}
"""


def test_complete_suite_loads_with_every_value(tmp_path):
    path = write_suite(tmp_path, COMPLETE)
    suite = load_suite(path)
    assert suite.path == path
    assert suite.name == "complete-1.0_suite"
    assert suite.paper == "Someone et al. (2021), A Paper"
    assert suite.description == "Every top-level key, used once.\n"
    assert suite.defaults == {"ways": 5, "steps": 20, "lr": 1.0, "eval_head": "logreg", "patience": None}
    assert isinstance(suite.defaults["lr"], float)
    assert suite.grid == {"dataset": ["omniglot"], "shots": [1, 5], "method": ["mtl", "protonet"], "seed": [0, 1, 2]}
    assert len(suite.overrides) == 1 and suite.overrides[0].when == {"method": ("mtl",)}
    assert suite.overrides[0].set == {"meta_batch": 2}
    assert suite.exclude == ({"method": ("protonet",), "seed": (2,)},)
    assert suite.resources == Resources(
        gpus=1, cpus=4, mem_gb=7.5, timeout_min=90, partition="gpu", account="lab", qos="high",
        sbatch_args={"constraint": "a100", "exclusive": True, "nice": 10},
    )
    assert suite.reported == (
        Reported((("dataset", "omniglot"), ("ways", 5), ("shots", 1), ("method", "mtl")), "accuracy",
                 96.5, 0.2, "ci95", None, 2000, "Someone et al. (2021)", "2", over="episodes"),
        Reported((("dataset", "omniglot"), ("shots", 5), ("method", "mtl")), "accuracy",
                 99.0, 0.1, "std", 3, None, "Someone et al. (2021)", "3b"),
        Reported((("dataset", "omniglot"), ("shots", 1), ("method", "protonet")), "accuracy",
                 95.0, 0.3, "sem", None, None, "Other", None),
        Reported((("dataset", "omniglot"), ("shots", 5), ("method", "protonet")), "accuracy",
                 98.1, None, None, None, None, "Other", None),
    )
    assert suite.reported[0].name == "omniglot/5/1/mtl"
    runs = configs(suite)
    assert len(runs) == 10  # 12 minus protonet seed 2 at two shot counts
    assert all(c["meta_batch"] == (2 if c["method"] == "mtl" else 1) for c in runs)
    assert all((c["steps"], c["lr"], c["eval_head"]) == (20, 1.0, "logreg") for c in runs)


def test_resources_default_when_absent(tmp_path):
    suite = load_suite(write_suite(tmp_path, minimal()))
    assert suite.resources == Resources()
    assert (suite.resources.gpus, suite.resources.cpus, suite.resources.mem_gb, suite.resources.timeout_min) == (0, 1, 4.0, 60)
    assert suite.reported == () and suite.overrides == () and suite.exclude == () and suite.description == ""


def test_shipped_quickstart_suite_is_valid():
    suite = load_suite(Path(__file__).resolve().parents[2] / "suites" / "quickstart.yaml")
    specs = list(expand(suite))
    assert len(specs) == 8
    assert all(s.config["feature_norm"] is (s.config["method"] == "mtl") for s in specs)


def test_float_written_without_a_dot_is_a_number(tmp_path):
    # YAML 1.1 reads `1e-3` as text; the schema knows lr is a float and takes it as 0.001.
    suite = load_suite(write_suite(tmp_path, BASE + "defaults:\n  lr: 1e-3\n"))
    assert suite.defaults["lr"] == 0.001 and isinstance(suite.defaults["lr"], float)
