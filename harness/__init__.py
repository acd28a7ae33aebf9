"""harness: reproduce ML papers' benchmark tables from YAML suites."""

__version__ = "0.1.0"

# `harness.runs` and `harness.cells` (harness.notebook) are imported on first use:
# `import harness` stays cheap for the command line and for every worker.
__all__ = ["HarnessError", "__version__", "cells", "runs"]


class HarnessError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits 2."""


def __getattr__(name: str):
    if name in ("runs", "cells"):
        from harness import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
