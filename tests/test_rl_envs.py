"""The Meta-World benchmarks: task lists as metaworld 3 has them, fixed goals, deterministic
resets, the env checkpoint, and a random-action evaluation through the trainer's code."""
import numpy as np
import pytest

pytest.importorskip("metaworld")

from harness.rl.benchmarks import BENCHMARKS  # noqa: E402
from harness.rl.evaluate import evaluate  # noqa: E402

HORIZON = 25


@pytest.fixture(scope="module")
def envs():
    built = BENCHMARKS.get("mt10").make_envs(seed=7, horizon=HORIZON, reward_function_version="v1", one_hot=False)
    yield built
    built.close()


def test_task_lists_are_metaworlds_in_its_order():
    from metaworld import env_dict

    assert BENCHMARKS.get("mt10").tasks == tuple(env_dict.MT10_V3)
    assert BENCHMARKS.get("mt50").tasks == tuple(env_dict.MT50_V3)


def episode(envs, actions):
    observations, rewards, successes = [envs.reset()], [], []
    for action in actions:
        obs, reward, success = envs.step(action)
        observations.append(obs)
        rewards.append(reward)
        successes.append(success)
    return np.array(observations), np.array(rewards), np.array(successes)


def test_goals_stay_fixed_and_episodes_repeat_exactly_after_a_reset(envs):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(HORIZON, envs.num_tasks, envs.action_dim))
    first = episode(envs, actions)
    goals = envs.current_goals()
    for _ in range(2):  # full episodes, to the time limit
        episode(envs, rng.uniform(-1, 1, size=(HORIZON, envs.num_tasks, envs.action_dim)))
        assert all(map(np.array_equal, envs.current_goals(), goals))
    again = episode(envs, actions)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert first[0].shape == (HORIZON + 1, 10, 39)
    # the goal is visible in the observation's last 3 entries and differs between tasks
    assert len({tuple(np.round(obs[-3:], 6)) for obs in first[0][0]}) > 1


@pytest.mark.slow  # builds MT10 twice more
def test_the_same_seed_draws_the_same_goals_and_another_seed_others(envs):
    same = BENCHMARKS.get("mt10").make_envs(seed=7, horizon=HORIZON, reward_function_version="v1", one_hot=True)
    try:
        assert all(map(np.array_equal, same.goals, envs.goals))
        assert same.observation_dim == 39 + 10  # the task one-hot, on request
        assert np.array_equal(same.reset()[:, :39], envs.reset().astype(np.float32))  # its space is float32
        assert np.array_equal(same.reset()[:, 39:], np.eye(10))
        same.load_state_dict(envs.state_dict())  # same goals: accepted
    finally:
        same.close()
    other = BENCHMARKS.get("mt10").make_envs(seed=8, horizon=HORIZON, reward_function_version="v1", one_hot=False)
    try:
        assert not all(map(np.array_equal, other.goals, envs.goals))
        with pytest.raises(RuntimeError, match="other goals"):
            other.load_state_dict(envs.state_dict())
    finally:
        other.close()


def test_evaluation_counts_success_at_any_step(envs, monkeypatch):
    class Scripted:
        """Every env succeeds at step 3 only; task 0 never does."""

        def __init__(self):
            self.t = 0

        def __call__(self, actions):
            self.t = self.t % HORIZON + 1
            obs, reward, _ = real_step(actions)
            success = np.full(envs.num_tasks, float(self.t == 3))
            success[0] = 0.0
            return obs, reward, success

    import torch

    class StillActor:
        def mean_action(self, obs):
            return torch.zeros(len(obs), 4)

    real_step = envs.step
    monkeypatch.setattr(envs, "step", Scripted())
    result = evaluate(envs, StillActor(), episodes=2, device=torch.device("cpu"))
    assert list(result) == list(envs.tasks)
    assert result["reach-v3"] == 0.0 and all(value == 100.0 for task, value in result.items() if task != "reach-v3")
