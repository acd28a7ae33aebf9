"""Few-shot methods, one module each; the module name is the registered name."""
from harness.registry import Registry

METHODS = Registry("method", __name__)
register = METHODS.register
