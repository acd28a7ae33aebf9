"""The RL family's declaration and config schema: it validates, plans without torch or
metaworld, and bad values give one clear line; the shipped RL suites validate and carry
the per-method settings of the paper's scripts."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.api import Family, load_target
from harness.keys import REQUIRED, check_value
from harness.rl.config import KEYS, combination_problem, config_problem, resolved
from harness.rl.family import FAMILY

SUITES = Path(__file__).resolve().parents[2] / "suites"


def rl_family() -> Family:
    """The family as the core finds it (its entry point; loaded by module name until that exists)."""
    from harness import plugins

    if "rl" not in plugins.index().families:
        plugins.activate(["harness.rl.family"])
    return plugins.family("rl")


def test_the_declaration_validates_and_names_importable_targets():
    assert isinstance(FAMILY, Family) and FAMILY.name == "rl" and FAMILY.headline.name == "success"
    assert FAMILY.axes_required == ("dataset", "method", "seed")
    assert set(FAMILY.registries) == {"dataset", "method"}
    assert FAMILY.datasets.names() == ["mt10", "mt50"]
    from harness.multitask.optimizers import OPTIMIZERS

    assert FAMILY.methods is OPTIMIZERS and len(OPTIMIZERS.names()) == 12  # the multi-task family's registry itself
    for name, key in KEYS.items():
        assert key.help.strip(), name
    assert FAMILY.run_label({"dataset": "mt10", "method": "pcgrad", "seed": 1}) == "mt10 pcgrad seed 1"
    assert load_target(FAMILY.report).__name__ == "build"
    assert load_target(FAMILY.check) is config_problem
    assert load_target(FAMILY.trainer).__name__ == "Trainer"
    assert FAMILY.metrics_problem({"success": 40.0}) is None
    assert FAMILY.metrics_problem({"tasks": {}}) == "done but without metrics.success"
    assert rl_family() is FAMILY


def test_planning_imports_neither_torch_nor_metaworld():
    code = textwrap.dedent("""
        import json, sys
        import harness.rl.family, harness.rl.report
        from harness.rl.benchmarks import BENCHMARKS
        prints = {name: BENCHMARKS.get(name).fingerprint() for name in BENCHMARKS.names()}
        print(json.dumps({"loaded": sorted(m for m in ("torch", "metaworld", "gymnasium", "mujoco") if m in sys.modules),
                          "fingerprints": prints}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["loaded"] == []
    assert len(set(found["fingerprints"].values())) == 2


@pytest.mark.parametrize("name, value, problem", [
    ("horizon", 0, "must be >= 1"),
    ("steps", 1.5, "must be an integer"),
    ("lr", 0.0, "must be > 0"),
    ("discount", -0.1, "must be > 0"),
    ("reward_function_version", "v3", "unknown reward_function_version 'v3'"),
    ("mgda_normalization", "l1", "unknown mgda_normalization"),
    ("method", "sgd", "unknown method 'sgd'"),
    ("dataset", "mt25", "unknown dataset 'mt25'"),
    ("task_one_hot", "yes", "must be true or false"),
    ("alpha_uses_method", 1, "must be true or false or null"),
    ("actor_weight_decay", -1e-4, "must be >= 0"),
])
def test_bad_values_are_named_by_the_key_table(name, value, problem):
    _, message = check_value(name, value, KEYS)
    assert message is not None and problem in message


def test_bad_combinations_are_found_before_dispatch():
    base = {"dataset": "mt10", "method": "unitary", "seed": 0}
    assert combination_problem(resolved(base)) is None
    assert "use 150 or 300" in combination_problem({**base, "eval_every": 200})
    assert "shorter than one episode" in combination_problem({**base, "steps": 100})
    assert "500 steps at most" in combination_problem({**base, "horizon": 501, "eval_every": 501})
    assert "more than the 50 goals" in combination_problem({**base, "eval_episodes": 51})
    assert combination_problem({**base, "eval_episodes": 50}) is None
    assert config_problem({**base, "eval_every": 200}, "local", 0).startswith("eval_every")
    import torch

    if not torch.cuda.is_available():
        assert "no usable GPU" in config_problem({**base, "device": "cuda"}, "local", 0)
    assert "asks Slurm for no GPU" in config_problem({**base, "device": "cuda"}, "slurm", 0)
    assert config_problem({**base, "device": "cuda"}, "slurm", 1) is None
    with pytest.raises(ValueError, match="missing required rl config keys"):
        resolved({"dataset": "mt10", "method": "unitary"})
    assert all(resolved(base)[k] == key.default for k, key in KEYS.items() if key.default is not REQUIRED)


def test_a_suite_with_a_bad_value_fails_with_its_key_path(tmp_path):
    pytest.importorskip("metaworld")  # run ids hash the installed metaworld version
    from harness.suite import SuiteError, load_suite

    rl_family()
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""
        name: bad
        family: rl
        paper: "test"
        defaults: {horizon: 150, reward_function_version: v9}
        grid: {dataset: [mt10], method: [unitary], seed: [0]}
    """))
    with pytest.raises(SuiteError, match="reward_function_version"):
        load_suite(path)


def configs_of(name: str) -> list[dict]:
    from harness.spec import expand
    from harness.suite import load_suite

    rl_family()
    return [spec.config for spec in expand(load_suite(SUITES / name))]


def test_the_quick_start_suite_is_four_cpu_runs():
    pytest.importorskip("metaworld")
    configs = configs_of("quickstart_rl.yaml")
    assert sorted((c["method"], c["seed"]) for c in configs) == [("pcgrad", 0), ("pcgrad", 1), ("unitary", 0), ("unitary", 1)]
    assert {c["device"] for c in configs} == {"cpu"} and {c["dataset"] for c in configs} == {"mt10"}
    assert all(combination_problem(c) is None for c in configs)


def test_the_paper_suite_has_the_scripts_per_method_settings():
    pytest.importorskip("metaworld")
    configs = configs_of("kurin2022_rl.yaml")
    by = {(c["dataset"], c["method"], c["actor_weight_decay"]): c for c in configs}
    for dataset in ("mt10", "mt50"):
        assert {(m, wd) for d, m, wd in by if d == dataset} == {
            ("unitary", 0.0), ("unitary", 3e-4), ("pcgrad", 1e-4), ("graddrop", 1e-4), ("rlw_dirichlet", 3e-4),
            ("rlw_normal", 3e-4), ("mgda_ub", 0.0), ("imtl", 3e-4 if dataset == "mt10" else 0.0)}
    assert by[("mt10", "imtl", 3e-4)]["clip_targets"] and by[("mt10", "imtl", 3e-4)]["lr"] == 3e-4
    assert by[("mt50", "imtl", 0.0)]["lr"] == 3e-5 and not by[("mt50", "imtl", 0.0)]["clip_targets"]
    assert all(c["steps"] == 2_000_000 and c["batch_size"] == 1280 and c["buffer_capacity"] == 4_000_000
               and c["horizon"] == 150 and c["mgda_normalization"] == "l2" and not c["imtl_learn_scales"]
               for c in configs)
    assert all(c[key] == "official" for c in configs for method, key in (("imtl", "imtl_solver"), ("mgda_ub", "mgda_solver"))
               if c["method"] == method)
    assert all(combination_problem(c) is None for c in configs)
