"""Multi-task models, one module each; the module name is the registered name.

``MODELS.names()`` does not import torch; ``MODELS.get(name)`` imports the one module.
The interface every model offers the training loop is in ``_base.py``.
"""
from harness.registry import Registry

MODELS = Registry("multitask.model", package=__name__)
register = MODELS.register
