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
    result = evaluate(envs, StillActor(), envs.goal_sweep(2, np.random.default_rng(0)), device=torch.device("cpu"))
    assert list(result) == list(envs.tasks)
    assert result["reach-v3"] == 0.0 and all(value == 100.0 for task, value in result.items() if task != "reach-v3")


def test_the_goal_sweep_starts_at_the_training_goal_and_visits_distinct_goals(envs):
    sweep = envs.goal_sweep(5, np.random.default_rng(3))
    assert sweep == envs.goal_sweep(5, np.random.default_rng(3))  # fixed by the seed
    assert len(sweep) == envs.num_tasks and all(len(goals) == 5 == len(set(goals)) for goals in sweep)
    assert [goals[0] for goals in sweep] == envs.training_goals
    assert all(0 <= index < 50 for goals in sweep for index in goals)
    assert len(envs.goal_sweep(50, np.random.default_rng(3))[0]) == 50  # metaworld's 50 goals: each once


def test_evaluation_sees_the_swept_goals_and_leaves_training_as_it_was(envs):
    import torch

    class Recorder:
        """Still actions; notes the goal (last 3 observation entries) of each episode's first step."""

        def __init__(self):
            self.goals, self.t = [], 0

        def mean_action(self, obs):
            if self.t % HORIZON == 0:
                self.goals.append(np.asarray(obs, dtype=np.float64)[:, -3:])  # float32, as the actor sees it
            self.t += 1
            return torch.zeros(len(obs), 4)

    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(HORIZON, envs.num_tasks, envs.action_dim))
    before = episode(envs, actions)
    recorder = Recorder()
    sweep = envs.goal_sweep(3, np.random.default_rng(1))
    evaluate(envs, recorder, sweep, device=torch.device("cpu"))
    first, second, third = recorder.goals
    assert np.allclose(first, before[0][0][:, -3:], atol=1e-6)  # episode 0: the training goal
    assert all((~np.isclose(second[i], first[i])).any() for i in range(envs.num_tasks))  # then other goals
    assert all((~np.isclose(third[i], second[i])).any() for i in range(envs.num_tasks))
    assert all(map(np.array_equal, envs.current_goals(), envs.goals))  # the training goals are back
    after = episode(envs, actions)
    for a, b in zip(before, after):
        assert np.array_equal(a, b)  # and a training episode is what it was
