"""The ``digits`` family: classify scikit-learn's 1,797 real 8x8 handwritten digits.

``family.py`` declares it (torch-free: imported to plan); ``datasets/`` and
``methods/`` hold one component per file; ``train.py`` is the trainer a worker runs;
``api.py`` is what a method author builds on.
"""
