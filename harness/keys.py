"""Config keys: the schema entry of one run-config key (type, default, meaning, bounds,
choices), the checks every family's values go through, and the key spec a component
declares in its register call. Pure Python: no torch, and no other harness module.

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
TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str}
KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SPEC_FIELDS = ("type", "default", "help", "minimum", "exclusive", "choices", "nullable", "arg", "versions")


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    minimum: float | None = None  # lower bound for numbers
    exclusive: bool = False  # the bound itself is not allowed
    choices: Any = None  # a Registry, or a tuple of allowed strings
    nullable: bool = False
    # The family declares a key that components declare too, only to give it this family's
    # default and help: it still counts in a run's identity only where a used component
    # declares it (see harness.api, "Component keys").
    overrides_component: bool = False

    @property
    def names_component(self) -> bool:
        """Its value is a registered component's name (choices is a Registry)."""
        return self.choices is not None and not isinstance(self.choices, tuple)

    def same_meaning(self, other: Key) -> bool:
        """Two declarations of one key agree on everything but the help text."""
        return (self.type, self.default, self.minimum, self.exclusive, self.choices, self.nullable) == (
            other.type, other.default, other.minimum, other.exclusive, other.choices, other.nullable)


@dataclass(frozen=True)
class ComponentKey:
    """A key a component declares (``keys={name: spec}`` in its register call): the Key, the
    argument the value is passed to the component as, and, for a variant selector, the
    version of each variant but the default one."""

    key: Key
    arg: str
    versions: dict | None = None  # choice -> version: the key selects a variant of its component

    def variant(self, value) -> list | None:
        """``[choice, version]`` when ``value`` selects a variant other than the default one."""
        if not self.versions or value == self.key.default:
            return None
        return [value, self.versions[value]]


def component_key(name: str, spec, owner: str) -> tuple[ComponentKey | None, str | None]:
    """(the ComponentKey a spec of component ``owner`` declares, None) or (None, what is wrong with it)."""
    if not isinstance(spec, dict) or spec.get("type") not in TYPE_NAMES or "default" not in spec:
        return None, "declare it as {'type': 'int'|'float'|'bool'|'str', 'default': ..., 'help': ...}"
    unknown = set(spec) - set(SPEC_FIELDS)
    if unknown:
        return None, f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(SPEC_FIELDS)})"
    choices = spec.get("choices")
    if choices is not None and (not isinstance(choices, (list, tuple)) or not choices):
        return None, "choices must be a non-empty list of values"
    key = Key(TYPE_NAMES[spec["type"]], spec["default"], spec.get("help") or f"{owner}'s {name}", minimum=spec.get("minimum"),
              exclusive=spec.get("exclusive", False), choices=tuple(choices) if choices else None,
              nullable=spec.get("nullable", False))
    problem = next(key_problems(name, key), None)
    if problem:
        return None, problem
    arg = spec.get("arg", name)
    if not isinstance(arg, str) or not arg.isidentifier():
        return None, f"arg must be the name of the argument the value is passed as, got {arg!r}"
    versions = spec.get("versions")
    if versions is not None:
        problem = _versions_problem(key, versions)
        if problem:
            return None, problem
        versions = {choice: str(version) for choice, version in versions.items()}
    return ComponentKey(key, arg, versions), None


def _versions_problem(key: Key, versions) -> str | None:
    if not isinstance(versions, dict) or not key.choices:
        return "versions makes a variant selector: give choices, and versions as {choice: version}"
    for choice, version in versions.items():
        if choice not in key.choices:
            return f"versions names {choice!r}, which is not one of its choices"
        if choice == key.default:
            return f"versions names the default {choice!r}: its version is the component's own"
        if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
            return f"version of variant {choice!r} must be a non-empty string or an integer, got {version!r}"
    missing = [choice for choice in key.choices if choice != key.default and choice not in versions]
    if missing:
        return f"versions gives no version for variant(s) {', '.join(map(repr, missing))}"
    return None


def key_problems(name, key):
    """What is wrong with one key declaration (nothing: a well-formed key)."""
    if not isinstance(name, str) or not KEY_NAME.match(name):
        yield f"key name {name!r} must be letters, digits and '_', starting with a letter"
        return
    if not isinstance(key, Key):
        yield f"key {name!r} must be a harness.api.Key, got {type(key).__name__}"
        return
    if key.type not in TYPES:
        yield f"key {name!r}: type must be one of int, float, bool, str, got {getattr(key.type, '__name__', key.type)!r}"
        return
    if key.default is REQUIRED:
        return
    if key.default is None:
        if not key.nullable:
            yield f"key {name!r}: default None needs nullable=True"
        return
    ok = isinstance(key.default, key.type) and not (isinstance(key.default, bool) and key.type is not bool)
    if key.type is float and isinstance(key.default, int) and not isinstance(key.default, bool):
        ok = True
    if not ok:
        yield f"key {name!r}: default {key.default!r} is not of its type {key.type.__name__}"
    if key.choices is not None and not isinstance(key.choices, tuple) and not hasattr(key.choices, "names"):
        yield f"key {name!r}: choices must be a tuple of values or a harness.api.Registry"
    elif isinstance(key.choices, tuple) and key.default not in key.choices:
        yield f"key {name!r}: default {key.default!r} is not one of its choices"


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
        note = key.choices.missing_note() if key.names_component else ""  # a broken plugin may be why
        return value, f"unknown {name} {value!r} (known: {', '.join(allowed)}){note}"
    return value, None


def _type_name(key: Key) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names[key.type] + (" or null" if key.nullable else "")


def describe(key: Key) -> str:
    """'float > 0', 'int >= 1, or null', 'str: a, b, c': a key's type and bounds in a few words."""
    text = key.type.__name__
    if key.minimum is not None:
        text += f" {'>' if key.exclusive else '>='} {key.minimum:g}"
    if isinstance(key.choices, tuple):
        text += f" (one of {', '.join(map(str, key.choices))})"
    return text + (", or null" if key.nullable else "")


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
