"""Few-shot heads, one module each; the module name is the registered name."""
from harness.registry import Registry

HEADS = Registry("evaluation head", __name__)
register = HEADS.register
