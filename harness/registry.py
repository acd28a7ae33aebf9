"""Name registries that can list their entries without importing them.

Each entry lives in its own module, named after the entry (``methods/mtl.py``
registers ``mtl``). Listing names only scans the package folder, so planning and
validating a suite never imports torch; ``get`` imports the one module needed.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from harness import HarnessError


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._entries: dict[str, Any] = {}

    def names(self) -> list[str]:
        module = importlib.import_module(self.package)
        return sorted(
            info.name
            for info in pkgutil.iter_modules(module.__path__)
            if not info.name.startswith("_")
        )

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorate(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = obj
            return obj

        return decorate

    def get(self, name: str) -> Any:
        if name not in self.names():
            known = ", ".join(self.names())
            raise HarnessError(f"unknown {self.kind} {name!r} (known: {known})")
        importlib.import_module(f"{self.package}.{name}")
        if name not in self._entries:
            raise RuntimeError(f"module {self.package}.{name} does not register {self.kind} {name!r}")
        return self._entries[name]
