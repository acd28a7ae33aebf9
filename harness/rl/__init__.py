"""Reinforcement learning (Kurin et al. 2022, the RL half): Meta-World MT10 and MT50 with
multi-task SAC, one shared network per role, and the multi-task optimizers of
``harness.multitask.optimizers`` applied to the per-task actor and critic losses.

Importing this package imports neither torch nor metaworld; ``family.py`` declares the
family, ``train.py`` is what a worker runs.
"""
