"""Multi-task datasets, one module each; the module name is the registered name.

Listing names (``DATASETS.names()``) imports neither torch nor the modules; each
module uses numpy and PIL only. What a dataset provides is in ``_base.py``.
"""
from harness.registry import Registry

DATASETS = Registry("multitask.dataset", package=__name__)
register = DATASETS.register
