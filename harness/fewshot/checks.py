"""The few-shot family's check before dispatch (``Family.check``): a config the worker would
refuse, or a device that cannot work where the run is sent, stops `harness run` with one line
before anything is launched.

The method and backbone constraints come from the components themselves (their class
attributes, their factory's keyword arguments, the config keys their ``register(...)``
declares), so a plugin's components are checked the same way. The preflight imports every
component a run uses before calling this, so importing them here costs nothing more.
"""
from __future__ import annotations

import inspect

from harness.fewshot.backbones import BACKBONES
from harness.fewshot.config import schema
from harness.fewshot.methods import METHODS
from harness.fewshot.train import BACKBONE_OPTIONS, backbone_options


def run_problem(config: dict, cluster: str | None = None, gpus: int = 0) -> str | None:
    """Why this run cannot work, in one line, or None."""
    problem = config_problem(config)
    if problem or config.get("device") != "cuda":
        return problem
    from harness.training import device_problem

    return device_problem(config, cluster, gpus)


def value(config: dict, name: str):
    return config.get(name, schema()[name].default)


def config_problem(config: dict) -> str | None:
    method_name, backbone_name = config["method"], value(config, "backbone")
    method = METHODS.get(method_name)
    ways, train_ways = value(config, "ways"), value(config, "train_ways")
    if train_ways is not None and train_ways != ways and getattr(method, "fixed_ways", False):
        return (f"train_ways: {train_ways}, but {method_name}'s head has `ways` = {ways} outputs "
                f"(it trains on {ways}-way tasks: leave train_ways null)")
    if value(config, "separate_passes") and not getattr(method, "supports_separate_passes", False):
        return f"separate_passes: true, but {method_name} embeds each task in one pass (only protonet, metaoptnet_svm, r2d2 take it)"
    if value(config, "label_smoothing") >= 1:
        return f"label_smoothing: {value(config, 'label_smoothing')} must be < 1"
    if value(config, "lr_patience") is not None and value(config, "lr_schedule") != "constant":
        return f"lr_patience and lr_schedule: {value(config, 'lr_schedule')} both set the learning rate: choose one"
    return backbone_problem(config, backbone_name)


def backbone_problem(config: dict, backbone_name: str) -> str | None:
    """An option key set that the backbone's factory does not take (e.g. backbone_width on resnet12)."""
    parameters = inspect.signature(BACKBONES.get(backbone_name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    keys = {arg: key for key, arg in BACKBONE_OPTIONS.items()}
    refused = [keys[arg] for arg in backbone_options(config) if arg not in parameters]
    if refused:
        settings = ", ".join(f"{key}: {_text(config[key])}" for key in refused)
        return f"{settings}, but backbone {backbone_name} takes no {' or '.join(refused)}"
    return None


def _text(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
