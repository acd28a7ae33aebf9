"""The multi-task config schema: every key typed, defaulted and explained; options reach their optimizer."""
from __future__ import annotations

import subprocess
import sys

import pytest

from harness.keys import REQUIRED, Key, choices_of
from harness.multitask.config import AXES_REQUIRED, KEYS, OPTIMIZER_OPTIONS, optimizer_options, resolved
from harness.multitask.optimizers import OPTIMIZERS


def test_every_key_is_a_documented_schema_entry():
    required = {"dataset", "method", "seed", "optimizer", "lr", "weight_decay", "lr_decay", "epochs", "batch_size",
                "dropout", "patience", "device", "cagrad_c", "graddrop_p", "dwa_temperature"}
    assert required <= set(KEYS)
    for name, key in KEYS.items():
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
    assert set(config) == set(KEYS) and config["lr_decay"] == 1.0 and config["dropout"] is None
    with pytest.raises(ValueError, match="unknown"):
        resolved({"dataset": "multi_mnist", "method": "unitary", "seed": 0, "shots": 1})
    with pytest.raises(ValueError, match="missing"):
        resolved({"dataset": "multi_mnist", "seed": 0})


def test_optimizer_options_reach_their_optimizer_only():
    base = resolved({"dataset": "multi_mnist", "method": "unitary", "seed": 0})
    assert optimizer_options(base) == {}
    for method, options in OPTIMIZER_OPTIONS.items():
        config = {**base, "method": method}
        built = OPTIMIZERS.get(method)(2, **optimizer_options(config))
        for argument, key in options.items():
            assert getattr(built, argument) == config[key]
