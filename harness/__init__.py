"""harness: reproduce ML papers' benchmark tables from YAML suites."""

__version__ = "0.1.0"


class HarnessError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits 2."""
