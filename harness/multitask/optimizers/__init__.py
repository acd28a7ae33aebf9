"""Multi-task optimizers, one module each; the module name is the registered name.

Importing this package does not import torch: ``OPTIMIZERS.names()`` only scans the
folder, and ``OPTIMIZERS.get(name)`` imports the one module needed. The contract with
the training loop is in ``_base.py``.
"""
from harness.registry import Registry

OPTIMIZERS = Registry("multitask.method", package=__name__)
register = OPTIMIZERS.register
