"""What a benchmark is: a metaworld 3 multi-task benchmark under a fixed list of tasks.

A benchmark class sets ``name``, ``env_id`` (the gymnasium id of its vector env) and
``tasks`` (the env names in metaworld's order, which is the order of the task indices
the buffer stores), and offers:

- ``fingerprint()``: part of every run id; a hash of the installed metaworld version and
  of the task list, read without importing metaworld (``importlib.metadata``);
- ``require_prepared()``: nothing to prepare, but metaworld 3 must be installed;
- ``sources()``: where the environments come from;
- ``make_envs(...)``: the fixed-goal vector env of a run (``harness.rl.envs``).
"""
from __future__ import annotations

import hashlib
from importlib import metadata

from harness import HarnessError

REQUIRED_MAJOR = "3"
INSTALL = "pip install 'metaworld>=3.1,<4'"


def metaworld_version() -> str:
    """The installed metaworld version; HarnessError (with the install command) if missing or not 3.x."""
    try:
        version = metadata.version("metaworld")
    except metadata.PackageNotFoundError:
        raise HarnessError(f"the rl benchmarks need metaworld 3, which is not installed: {INSTALL}") from None
    if version.split(".")[0] != REQUIRED_MAJOR:
        raise HarnessError(f"the rl benchmarks need metaworld 3.x (its v3 envs and vector API), found {version}: {INSTALL}")
    return version


class Benchmark:
    name: str = ""
    env_id: str = ""
    tasks: tuple = ()

    @classmethod
    def fingerprint(cls) -> str:
        text = "\n".join([f"metaworld {metaworld_version()}", cls.env_id, *cls.tasks])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def require_prepared(cls, root=None) -> None:
        metaworld_version()
        return None

    @classmethod
    def sources(cls) -> list[tuple[str, str]]:
        return [("metaworld", f"{cls.name}: {len(cls.tasks)} simulated tasks from the metaworld 3 package "
                              f"({INSTALL}); nothing to prepare")]

    @classmethod
    def make_envs(cls, seed: int, horizon: int, reward_function_version: str, one_hot: bool):
        """The run's vector env: one env per task, each with one goal fixed from ``seed``."""
        from harness.rl.envs import FixedGoalEnvs

        return FixedGoalEnvs(cls.env_id, cls.tasks, seed=seed, horizon=horizon,
                             reward_function_version=reward_function_version, one_hot=one_hot)
