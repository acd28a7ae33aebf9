"""The environments of a run: one metaworld 3 env per task, stepped together, each with ONE
goal for the whole run, as the paper's code had them (one task per env, drawn once from
the seed; rl.md section 2, "Goals and seeding").

Built with metaworld's own vector API (``gym.make_vec("Meta-World/MT10", seed=S, ...)``):
``MT10(seed=S)`` generates the 50 goals of each env, every sub-env is seeded with S, and
its ``RandomTaskSelectWrapper`` draws one of them at the first reset; switching
``sample_tasks_on_reset`` off afterwards keeps that goal at every later reset. (All
sub-envs share the seed, so they draw the same goal INDEX, each among its own goals.)
With the goal frozen, a reset is deterministic: an episode after a reset is bit-identical
to one in a freshly built env (tested), so a run resumes at an episode boundary with no
physics state saved. Evaluation reuses these envs between training episodes: it sets each
env's goal to one of its other metaworld goals for an episode (``goal_sweep``,
``set_goals``) and puts the training goal back after, and every env is reset before each
episode, so it cannot change the training trajectory (tested).

Autoreset is off: the trainer resets every env together at the horizon.
"""
from __future__ import annotations

import pickle

import numpy as np


class FixedGoalEnvs:
    def __init__(self, env_id: str, tasks: tuple, seed: int, horizon: int, reward_function_version: str,
                 one_hot: bool):
        import gymnasium as gym
        import metaworld  # noqa: F401  (registers the Meta-World/ ids)

        self.tasks, self.horizon = tuple(tasks), horizon
        self.vector = gym.make_vec(env_id, vector_strategy="sync", seed=seed, use_one_hot=one_hot,
                                   max_episode_steps=horizon, reward_function_version=reward_function_version,
                                   autoreset_mode=gym.vector.AutoresetMode.DISABLED)
        self.goal_tasks = [list(tasks_of) for tasks_of in self.vector.call("get_wrapper_attr", "tasks")]
        names = tuple(tasks_of[0].env_name for tasks_of in self.goal_tasks)
        if names != self.tasks:
            raise RuntimeError(f"{env_id} has tasks {names}, expected {self.tasks}: metaworld changed")
        self.vector.reset()  # the first reset draws each env's goal...
        self.vector.call("toggle_sample_tasks_on_reset", False)  # ...and it stays
        self.goals = self.current_goals()  # per env: its task's random vector (goal, object positions)
        self.training_goals = [_index_of(goal, tasks_of) for goal, tasks_of in zip(self.goals, self.goal_tasks)]
        self.observation_dim = int(self.vector.single_observation_space.shape[0])
        self.action_dim = int(self.vector.single_action_space.shape[0])

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def reset(self) -> np.ndarray:
        observations, _ = self.vector.reset()
        return observations

    def step(self, actions: np.ndarray):
        """(observations, rewards, successes) for (T, A) actions; observations are the next ones."""
        observations, rewards, terminated, _, info = self.vector.step(np.asarray(actions, dtype=np.float32))
        if terminated.any():  # metaworld 3 never terminates with terminate_on_success off
            raise RuntimeError("a metaworld env terminated before the horizon; this trainer stores every step as not done")
        return observations, np.asarray(rewards, dtype=np.float64), np.asarray(info["success"], dtype=np.float64)

    def goal_sweep(self, episodes: int, rng: np.random.Generator) -> list[list[int]]:
        """Per env, the goal indices of ``episodes`` evaluation episodes: its training goal
        first, then its other goals in an order drawn from ``rng``."""
        sweep = []
        for training, tasks_of in zip(self.training_goals, self.goal_tasks):
            others = [index for index in range(len(tasks_of)) if index != training]
            sweep.append([training, *(int(i) for i in rng.permutation(others))][:episodes])
        return sweep

    def set_goals(self, indices) -> None:
        """Give env i its goal ``indices[i]`` (from the next reset on)."""
        for env, tasks_of, index in zip(self.vector.envs, self.goal_tasks, indices):
            env.unwrapped.set_task(tasks_of[index])

    def current_goals(self) -> list[np.ndarray]:
        return [np.array(env.unwrapped._last_rand_vec, dtype=np.float64) for env in self.vector.envs]

    def state_dict(self) -> dict:
        """The goals and every RNG of every env (metaworld's own checkpoint of them)."""
        return {"goals": [goal.copy() for goal in self.goals], "envs": list(self.vector.call("get_checkpoint"))}

    def load_state_dict(self, state: dict) -> None:
        if len(state["goals"]) != len(self.goals) or not all(map(np.array_equal, state["goals"], self.goals)):
            raise RuntimeError("the rebuilt envs drew other goals than the checkpoint's: metaworld's goal sampling "
                               "changed under this run (a different metaworld version?)")
        self.vector.call("load_checkpoint", state["envs"])

    def close(self) -> None:
        self.vector.close()


def _index_of(goal: np.ndarray, tasks_of: list) -> int:
    """Which of an env's metaworld tasks has this random vector."""
    for index, task in enumerate(tasks_of):
        if np.array_equal(pickle.loads(task.data)["rand_vec"], goal):
            return index
    raise RuntimeError("an env's goal is none of its metaworld tasks: metaworld changed how goals are set")
