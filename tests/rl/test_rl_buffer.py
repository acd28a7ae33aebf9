"""The shared replay buffer: reward normalisation against numpy, uniform sampling, and its disk
image (memmap + redo files) surviving a crash at each step of a checkpoint."""
import numpy as np
import pytest
import torch

from harness.rl.buffer import ReplayBuffer
from harness.rl.replay_disk import ReplayImage

CPU = torch.device("cpu")
TASKS, OBS, ACT = 3, 5, 2


def add_steps(buffer, rng, steps, rewards_log=None):
    for _ in range(steps):
        reward = rng.normal(loc=[0.0, 5.0, -2.0], scale=[1.0, 3.0, 0.5])
        buffer.add(rng.normal(size=(TASKS, OBS)), rng.uniform(-1, 1, (TASKS, ACT)), reward,
                   rng.normal(size=(TASKS, OBS)), np.ones(TASKS), np.arange(TASKS))
        if rewards_log is not None:
            rewards_log.append(reward)


def test_rewards_are_divided_by_the_std_of_every_reward_ever_added_for_their_task():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(40, OBS, ACT, TASKS, CPU)  # 40 rows < 90 transitions: overwritten rows still count
    log = []
    add_steps(buffer, rng, 30, log)
    rewards = np.array(log)  # (steps, tasks)
    std = np.sqrt(rewards.var(axis=0) + 1e-8)  # population variance: no mean subtraction in the division
    assert np.allclose(buffer.reward_std(), std)
    raw = buffer.sample(500, np.random.default_rng(1), normalise=False)
    normalised = buffer.sample(500, np.random.default_rng(1), normalise=True)
    task = raw.task.numpy()
    assert np.allclose(normalised.reward.numpy(), raw.reward.numpy() / std[task], rtol=1e-5)
    assert np.allclose(normalised.max_reward.numpy(), rewards.max(axis=0)[task] / std[task], rtol=1e-5)
    assert np.allclose(raw.max_reward.numpy(), rewards.max(axis=0)[task], rtol=1e-6)
    assert set(task.tolist()) == {0, 1, 2} and raw.obs.shape == (500, OBS) and raw.next_obs.shape == (500, OBS)


def test_samples_are_uniform_over_the_filled_rows_and_keep_each_rows_fields():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(100, OBS, ACT, TASKS, CPU)
    add_steps(buffer, rng, 4)  # 12 rows filled
    batch = buffer.sample(6000, np.random.default_rng(2), normalise=False)
    rows = buffer.rows[:12]
    matches = (batch.obs[:, None, :] == rows[None, :, :OBS]).all(-1)
    assert matches.any(1).all()  # every sample is one of the 12 filled rows
    counts = matches.float().sum(0).numpy()
    assert counts.min() > 6000 / 12 * 0.8 and counts.max() < 6000 / 12 * 1.2
    assert torch.equal(batch.task, rows[:, -1][matches.float().argmax(1)].long())


def test_pending_rows_cover_what_was_written_since_the_last_save_across_the_wrap():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(10, OBS, ACT, TASKS, CPU)
    add_steps(buffer, rng, 2)
    buffer.mark_saved()
    add_steps(buffer, rng, 2)  # rows 6..11 -> positions 6, 7, 8, 9, 0, 1
    start, rows = buffer.pending()
    assert start == 6 and len(rows) == 6
    assert np.array_equal(rows, buffer.rows[[6, 7, 8, 9, 0, 1]].numpy())
    add_steps(buffer, rng, 5)  # more than the capacity since the save: every row
    start, rows = buffer.pending()
    assert len(rows) == 10 and np.array_equal(rows, buffer.rows[(start + np.arange(10)) % 10].numpy())


def saved_image(tmp_path, buffer, image, states):
    """One checkpoint as the trainer takes it; ``states`` keeps each checkpoint's buffer state."""
    start, rows = buffer.pending()

    def write_checkpoint(name):
        states.append({"redo": name, **buffer.state_dict(), "rows": buffer.rows.clone()})

    image.save(len(states) + 1, start, rows, write_checkpoint)
    buffer.mark_saved()


def restore(tmp_path, state, capacity):
    buffer = ReplayBuffer(capacity, OBS, ACT, TASKS, CPU)
    image = ReplayImage(tmp_path, capacity, buffer.width)
    image.recover(state["redo"])
    buffer.load_state_dict(state)
    buffer.load_rows(image.read(buffer.size))
    return buffer


@pytest.mark.parametrize("crash", ["none", "before_checkpoint", "after_checkpoint", "mid_apply"])
def test_the_disk_image_matches_the_last_checkpoint_whatever_step_of_a_save_is_cut(tmp_path, crash, monkeypatch):
    rng = np.random.default_rng(0)
    capacity = 12
    buffer = ReplayBuffer(capacity, OBS, ACT, TASKS, CPU)
    image = ReplayImage(tmp_path, capacity, buffer.width)
    states = []
    add_steps(buffer, rng, 3)
    saved_image(tmp_path, buffer, image, states)
    add_steps(buffer, rng, 3)  # wraps: overwrites rows the first checkpoint holds
    if crash == "before_checkpoint":
        def no_checkpoint(name):
            raise KeyboardInterrupt  # the redo file is on disk; checkpoint.pt is not
        with pytest.raises(KeyboardInterrupt):
            image.save(2, *buffer.pending(), no_checkpoint)
        expected = states[0]
    elif crash in ("after_checkpoint", "mid_apply"):
        def interrupted_apply(self, name):
            if crash == "mid_apply":  # half the rows reach the memmap
                with np.load(self.folder / name) as redo:
                    rows = redo["rows"][: len(redo["rows"]) // 2]
                    self.rows[(int(redo["start"]) + np.arange(len(rows))) % self.capacity] = rows
            raise KeyboardInterrupt
        monkeypatch.setattr(ReplayImage, "apply", interrupted_apply)
        with pytest.raises(KeyboardInterrupt):
            saved_image(tmp_path, buffer, image, states)
        monkeypatch.undo()
        expected = states[1]
    else:
        saved_image(tmp_path, buffer, image, states)
        expected = states[1]
    del image
    restored = restore(tmp_path, expected, capacity)
    assert torch.equal(restored.rows[:restored.size], expected["rows"][:expected["size"]])
    assert restored.cursor == expected["cursor"] and restored.added == expected["added"]
    assert np.array_equal(restored.reward_sum, expected["reward_sum"])
    assert not list(tmp_path.glob("replay-*.redo*"))  # applied or stale: gone after recovery


def test_a_missing_image_is_noticed(tmp_path):
    image = ReplayImage(tmp_path, 8, 4)
    assert not image.existed
    assert ReplayImage(tmp_path, 8, 4).existed
    assert not ReplayImage(tmp_path, 9, 4).existed  # another size: not this run's image
    image.remove()
    assert not (tmp_path / "replay.f32").exists()
