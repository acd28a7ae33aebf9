"""Few-shot heads, one module each; the module name is the registered name."""
from harness.registry import Registry

HEADS = Registry("fewshot.eval_head", package=__name__)
register = HEADS.register
