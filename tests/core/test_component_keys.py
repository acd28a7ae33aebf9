"""Keys a component declares in its register call: the argument it is built with
(``arg``, ``Registry.options``), variants (``versions``: a run of a non-default variant has
its version in its id, a run at the default keeps the id it had), keys no used component
reads (left out of the id, named once), and a family's own default for a component's key."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import HarnessError, families, spec
from harness.api import REQUIRED, Family, Key, Metric, Registry
from harness.registry import REGISTRIES, make_entry
from harness.sources import PluginError, Source
from harness.spec import RunSpec, identity, ignored_key_warnings, run_id

IMPL = {"type": "str", "default": "ours", "choices": ["ours", "official", "legacy"], "arg": "implementation",
        "versions": {"official": "1", "legacy": "1"}, "help": "fast: our code, or the official code's"}
ALPHA = {"type": "float", "default": 0.5, "minimum": 0.0, "arg": "alpha", "help": "fast: its alpha"}
# the id of {dataset d, method fast, seed 0} at every default: the sha256 of the canonical JSON of
# {"family": ["made", "1"], "config": {...}, "components": {"dataset": ["d", "1"], "method": ["fast", "1"]}, "data": null}
PINNED = "20a5d8521835"


@pytest.fixture
def made(monkeypatch):
    """make(methods, **family_keys): a family 'made' whose methods (name -> (version, keys spec))
    are given to its registry by hand; datasets have no fingerprint."""
    monkeypatch.setattr(spec, "dataset_fingerprint", lambda family, name: None)

    def make(methods: dict, **family_keys) -> Family:
        for id in ("made.dataset", "made.method"):
            REGISTRIES.forget(id)
        datasets, registry = Registry("made.dataset"), Registry("made.method")
        source = Source(Path(__file__), None, "test")
        datasets.add([make_entry("d", "1", source, 1, {})])
        registry.add([make_entry(name, version, source, line, {"keys": keys})
                      for line, (name, (version, keys)) in enumerate(methods.items(), start=1)])
        keys = {"dataset": Key(str, REQUIRED, "d", choices=datasets), "method": Key(str, REQUIRED, "m", choices=registry),
                "seed": Key(int, REQUIRED, "s", minimum=0), **family_keys}
        return Family(name="made", version="1", help="h", keys=keys, trainer="harness.api:Family", metrics=(Metric("m"),))

    yield make
    for id in ("made.dataset", "made.method"):
        REGISTRIES.forget(id)


def config(family: Family, **values) -> dict:
    """A resolved config: every default of the family's schema, then ``values``."""
    return {**{name: key.default for name, key in family.keys.items() if key.default is not REQUIRED},
            "dataset": "d", "seed": 0, **values}


def test_a_run_at_the_default_variant_keeps_the_id_it_had_before_the_variants(made):
    before = made({"fast": ("1", {}), "slow": ("1", {})})
    old = run_id(config(before, method="fast"), before)
    assert old == PINNED
    after = made({"fast": ("1", {"fast_impl": IMPL}), "slow": ("1", {})})
    assert after.keys["fast_impl"].default == "ours" and after.schema.selectors == ("fast_impl",)
    assert run_id(config(after, method="fast"), after) == old
    official = config(after, method="fast", fast_impl="official")
    assert identity(after, official)["components"]["method"] == ["fast", "1", {"fast_impl": ["official", "1"]}]
    assert run_id(official, after) != old
    assert official["fast_impl"] == "official" and identity(after, official)["config"]["fast_impl"] == "official"


def test_bumping_one_variants_version_makes_only_that_variants_runs_new(made):
    runs = [("fast", {}), ("fast", {"fast_impl": "official"}), ("fast", {"fast_impl": "legacy"}), ("slow", {})]
    family = made({"fast": ("1", {"fast_impl": IMPL}), "slow": ("1", {})})
    before = [run_id(config(family, method=method, **values), family) for method, values in runs]
    bumped = made({"fast": ("1", {"fast_impl": {**IMPL, "versions": {"official": "2", "legacy": "1"}}}), "slow": ("1", {})})
    after = [run_id(config(bumped, method=method, **values), bumped) for method, values in runs]
    assert [b == a for b, a in zip(before, after)] == [True, False, True, True]
    assert len(set(before)) == 4


def test_options_are_the_declared_keys_under_their_argument_names(made):
    family = made({"fast": ("1", {"fast_impl": IMPL, "fast_alpha": ALPHA}), "slow": ("1", {})})
    methods = family.methods
    resolved = config(family, method="fast", fast_alpha=0.25)
    assert methods.options("fast", resolved) == {"implementation": "ours", "alpha": 0.25}
    assert methods.options("slow", resolved) == {}
    with pytest.raises(HarnessError, match="made.method 'fast': the config has no fast_alpha"):
        methods.options("fast", {"method": "fast", "fast_impl": "ours"})


def test_a_key_no_used_component_reads_is_left_out_of_the_id_and_named_once(made):
    family = made({"fast": ("1", {"fast_impl": IMPL, "fast_alpha": ALPHA}), "slow": ("1", {})})
    at_default = run_id(config(family, method="slow"), family)
    changed = config(family, method="slow", fast_alpha=0.9, fast_impl="legacy")
    assert run_id(changed, family) == at_default
    assert identity(family, changed)["config"] == {"dataset": "d", "method": "slow", "seed": 0}
    assert run_id(config(family, method="fast", fast_alpha=0.9), family) != run_id(config(family, method="fast"), family)
    specs = [RunSpec("s", run_id(c, family), c, family="made")
             for c in (changed, {**changed, "seed": 1}, config(family, method="fast", fast_alpha=0.9))]
    ignoring = "set on 2 runs whose components do not use it (methods slow; only fast declares it): left out of their run ids"
    assert ignored_key_warnings(family, specs) == [f"fast_impl: {ignoring}", f"fast_alpha: {ignoring}"]
    assert ignored_key_warnings(family, specs[2:]) == []


def test_a_familys_own_declaration_of_a_components_key_wins_within_the_family(made):
    overriding = Key(float, 0.75, "made: alpha of its own", minimum=0.0, overrides_component=True)
    family = made({"fast": ("1", {"fast_alpha": ALPHA}), "slow": ("1", {})}, fast_alpha=overriding)
    assert family.keys["fast_alpha"] is overriding  # its default and help, in this family
    assert family.methods.options("fast", config(family, method="fast")) == {"alpha": 0.75}
    assert run_id(config(family, method="fast", fast_alpha=0.75), family) == run_id(config(family, method="fast"), family)
    assert run_id(config(family, method="slow", fast_alpha=0.5), family) == run_id(config(family, method="slow"), family)
    # declared as the family's own (no overrides_component): it counts for every run
    own = made({"fast": ("1", {"fast_alpha": ALPHA}), "slow": ("1", {})},
               fast_alpha=Key(float, 0.75, "made: alpha for everyone", minimum=0.0))
    assert run_id(config(own, method="slow", fast_alpha=0.5), own) != run_id(config(own, method="slow"), own)
    with pytest.raises(PluginError, match="family made declares 'fast_alpha' as str, the component as float"):
        made({"fast": ("1", {"fast_alpha": ALPHA})}, fast_alpha=Key(str, "x", "h")).keys  # noqa: B018
    with pytest.raises(PluginError, match="overrides_component=True.* no component of the family declares it"):
        made({"fast": ("1", {})}, fast_beta=Key(float, 1.0, "h", overrides_component=True)).keys  # noqa: B018


def test_rl_gives_the_optimizers_keys_its_own_defaults(monkeypatch):
    from harness.multitask.config import optimizer_options as multitask_options
    from harness.multitask.config import resolved as multitask_resolved
    from harness.rl.config import optimizer_options as rl_options
    from harness.rl.config import resolved as rl_resolved

    rl, multitask = families.get("rl"), families.get("multitask")
    assert (rl.keys["mgda_normalization"].default, multitask.keys["mgda_normalization"].default) == ("l2", "loss+")
    assert (rl.keys["imtl_learn_scales"].default, multitask.keys["imtl_learn_scales"].default) == (False, True)
    assert rl.keys["cagrad_c"] is multitask.keys["cagrad_c"]  # declared once, by cagrad
    assert rl_options(rl_resolved({"dataset": "mt10", "method": "mgda_ub", "seed": 0}))["normalization"] == "l2"
    assert multitask_options(multitask_resolved({"dataset": "multi_mnist", "method": "mgda_ub", "seed": 0}))[
        "normalization"] == "loss+"
    assert rl_options(rl_resolved({"dataset": "mt10", "method": "imtl", "seed": 0}))["learn_scales"] is False
    assert multitask_options(multitask_resolved({"dataset": "multi_mnist", "method": "imtl", "seed": 0}))[
        "learn_scales"] is True
    monkeypatch.setattr(spec, "dataset_fingerprint", lambda family, name: None)
    pcgrad = rl_resolved({"dataset": "mt10", "method": "pcgrad", "seed": 0})
    assert run_id({**pcgrad, "mgda_normalization": "loss+"}, rl) == run_id(pcgrad, rl)
    mgda = rl_resolved({"dataset": "mt10", "method": "mgda_ub", "seed": 0})
    assert run_id({**mgda, "mgda_normalization": "loss+"}, rl) != run_id(mgda, rl)


def test_the_key_spec_example_of_the_api_docstring_is_a_valid_declaration(tmp_path):
    import textwrap

    import harness.api
    from harness.sources import read_declarations

    doc = harness.api.__doc__
    block = doc.split("the key spec is a dict of literals::\n\n", 1)[1].split("\n\n", 1)[0]
    example = tmp_path / "example.py"
    example.write_text("from harness.api import register\n\n" + textwrap.dedent(block) + "\n")
    (declared,) = read_declarations(example)
    entry = make_entry(declared.name, declared.version, Source(example, None, "test"), declared.line, declared.meta)
    assert {key: spec.arg for key, spec in entry.keys.items()} == {"my_cagrad_c": "c", "my_cagrad_solver": "my_cagrad_solver"}
    assert entry.keys["my_cagrad_solver"].variant("official") == ["official", "1"]
    assert entry.keys["my_cagrad_solver"].variant("exact") is None
