"""harness-example: a worked plugin package for harness.

- ``harness_example.simpleshot``: the SimpleShot method for harness's few-shot family;
- ``harness_example.digits``: a whole family, ``digits``, on scikit-learn's handwritten digits.

Both are found through this distribution's ``harness.plugins`` entry points (see its
``pyproject.toml``). Nothing here imports torch at import time.
"""

__version__ = "0.1.0"
