"""Few-shot datasets, one module each; the module name is the registered name."""
from harness.registry import Registry

DATASETS = Registry("fewshot.dataset", package=__name__)
register = DATASETS.register
