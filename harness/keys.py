"""Config keys: the schema entry of one run-config key (type, default, meaning, bounds,
choices) and the checks every family's values go through. Pure Python: no torch.

A family declares its keys as a ``dict[str, Key]`` (see ``harness.api``). A key whose
``choices`` is a ``Registry`` names a component (a method, a dataset, a backbone...):
its value must be one of the registry's names, and the run id hashes that
component's version.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # marker: the suite must set this key (in defaults or the grid)
TYPES = (int, float, bool, str)


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    minimum: float | None = None  # lower bound for numbers
    exclusive: bool = False  # the bound itself is not allowed
    choices: Any = None  # a Registry, or a tuple of allowed strings
    nullable: bool = False

    @property
    def names_component(self) -> bool:
        """Its value is a registered component's name (choices is a Registry)."""
        return self.choices is not None and not isinstance(self.choices, tuple)


FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def choices_of(key: Key) -> tuple[str, ...] | None:
    if key.choices is None:
        return None
    if isinstance(key.choices, tuple):
        return key.choices
    return tuple(key.choices.names())


def check_value(name: str, value: Any, keys: dict) -> tuple[Any, str | None]:
    """Return (normalised value, error message or None) for one config value of ``keys``
    (a family's schema)."""
    key = keys[name]
    if value is None:
        return (None, None) if key.nullable else (None, "must not be null")
    if key.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key.type is float and isinstance(value, str) and FLOAT_TEXT.match(value):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as text
    if isinstance(value, bool) and key.type is not bool or not isinstance(value, key.type):
        return value, f"must be {_type_name(key)}, got {type(value).__name__} {value!r}"
    if key.type is float and not math.isfinite(value):
        return value, f"must be a finite number, got {value!r}"
    if key.minimum is not None and (value < key.minimum or (key.exclusive and value == key.minimum)):
        bound = f"> {key.minimum:g}" if key.exclusive else f">= {key.minimum:g}"
        return value, f"must be {bound}, got {value!r}"
    allowed = choices_of(key)
    if allowed is not None and value not in allowed:
        note = ""
        if key.names_component:
            from harness.plugins import broken_note  # a broken installed plugin may be why

            note = broken_note()
        return value, f"unknown {name} {value!r} (known: {', '.join(allowed)}){note}"
    return value, None


def _type_name(key: Key) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names[key.type] + (" or null" if key.nullable else "")


def parse_text(name: str, text: str, keys: dict) -> Any:
    """Parse a command-line value (``--filter shots=5``) to the key's type."""
    key = keys[name]
    if text.lower() in ("null", "none") and key.nullable:
        return None
    if key.type is bool:
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(f"{name} must be true or false, got {text!r}")
    try:
        return key.type(text)
    except ValueError:
        raise ValueError(f"{name} must be {_type_name(key)}, got {text!r}") from None
