"""Few-shot backbones, one module each; the module name is the registered name."""
from harness.registry import Registry

BACKBONES = Registry("fewshot.backbone", package=__name__)
register = BACKBONES.register
