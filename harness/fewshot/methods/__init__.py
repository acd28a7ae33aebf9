"""Few-shot methods, one module each; the module name is the registered name."""
from harness.registry import Registry

METHODS = Registry("fewshot.method", package=__name__)
register = METHODS.register
