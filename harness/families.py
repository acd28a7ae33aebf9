"""The experiment families a suite's ``family`` key selects, as the plugins declared them
(``harness.plugins``). The core asks a family only what ``harness.api.Family`` declares.
"""
from __future__ import annotations

from harness.api import Family
from harness.plugins import families as all_families
from harness.plugins import family as get

DEFAULT = "fewshot"  # a suite without a `family` key (the first family harness had)

__all__ = ["DEFAULT", "Family", "all_families", "get", "names"]


def names() -> list[str]:
    return [family.name for family in all_families()]
