"""Digits methods, one module each (read as text to plan; see ``family.py``).
Modules starting with ``_`` declare nothing."""
from harness_example.digits.family import METHODS

register = METHODS.register
