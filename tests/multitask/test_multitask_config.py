"""The multi-task config schema: every key typed, defaulted and explained; options reach their optimizer."""
from __future__ import annotations

import subprocess
import sys

import pytest

from harness.keys import REQUIRED, Key, choices_of
from harness.multitask.config import (
    AXES_REQUIRED,
    KEYS,
    optimizer_options,
    resolved,
    schema,
)
from harness.multitask.optimizers import OPTIMIZERS


def test_every_key_is_a_documented_schema_entry():
    required = {"dataset", "method", "seed", "optimizer", "lr", "weight_decay", "lr_decay", "epochs", "batch_size",
                "dropout", "patience", "device"}
    assert required <= set(KEYS)
    options = {"cagrad_c", "graddrop_p", "dwa_temperature", "nash_max_norm", "mgda_normalization", "imtl_learn_scales"}
    assert not options & set(KEYS) and options <= set(schema())  # the optimizers declare their own
    for name, key in schema().items():
        assert isinstance(key, Key) and key.help, name
        assert key.default is REQUIRED or key.default is None and key.nullable or isinstance(key.default, key.type), name
    assert [name for name, key in KEYS.items() if key.default is REQUIRED] == list(AXES_REQUIRED)
    assert choices_of(KEYS["method"]) == tuple(OPTIMIZERS.names())
    assert choices_of(KEYS["dataset"]) == ("celeba", "cityscapes", "multi_mnist")


def test_the_schema_does_not_import_torch():
    code = "import sys; import harness.multitask.config; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resolved_fills_defaults_and_rejects_unknown_or_missing_keys():
    config = resolved({"dataset": "multi_mnist", "method": "unitary", "seed": 0})
    assert set(config) == set(schema()) and config["lr_decay"] == 1.0 and config["dropout"] is None
    assert config["cagrad_c"] == 0.5 and config["mgda_normalization"] == "loss+"  # the optimizers' own defaults
    with pytest.raises(ValueError, match="unknown"):
        resolved({"dataset": "multi_mnist", "method": "unitary", "seed": 0, "shots": 1})
    with pytest.raises(ValueError, match="missing"):
        resolved({"dataset": "multi_mnist", "seed": 0})


# optimizer -> {constructor argument: config key}, as the multi-task family had it written out
OPTIONS = {
    "cagrad": {"c": "cagrad_c"},
    "graddrop_random": {"p": "graddrop_p"},
    "dwa": {"temperature": "dwa_temperature"},
    "nash_mtl": {"max_norm": "nash_max_norm"},
    "mgda_ub": {"normalization": "mgda_normalization"},
    "imtl": {"learn_scales": "imtl_learn_scales"},
}


def test_optimizer_options_reach_their_optimizer_only():
    base = resolved({"dataset": "multi_mnist", "method": "unitary", "seed": 0})
    assert optimizer_options(base) == {}
    for method in OPTIMIZERS.names():
        declared = {spec.arg: key for key, spec in OPTIMIZERS.keys(method).items()}
        assert OPTIONS.get(method, {}).items() <= declared.items(), method
    changed = {"cagrad_c": 0.25, "graddrop_p": 0.75, "dwa_temperature": 3.0, "nash_max_norm": 0.5,
               "mgda_normalization": "l2", "imtl_learn_scales": False}
    for method, options in OPTIONS.items():
        for config in (base, {**base, **changed}):
            config = {**config, "method": method}
            given = optimizer_options(config)
            assert given == {spec.arg: config[key] for key, spec in OPTIMIZERS.keys(method).items()}
            assert {argument: config[key] for argument, key in options.items()}.items() <= given.items()
            built = OPTIMIZERS.get(method)(2, **given)
            for argument, key in options.items():
                assert getattr(built, argument) == config[key]
