"""Meta-World benchmarks, one module each; the module name is the registered name.

Listing names (``BENCHMARKS.names()``) imports nothing; a benchmark module imports neither
torch nor metaworld (metaworld only inside the methods that build environments). What a
benchmark provides is in ``_base.py``.
"""
from harness.registry import Registry

BENCHMARKS = Registry("rl.dataset", package=__name__)
register = BENCHMARKS.register
