"""Digits datasets, one module each (read as text to plan; see ``family.py``)."""
from harness_example.digits.family import DATASETS

register = DATASETS.register
