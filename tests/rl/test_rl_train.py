"""The RL trainer end to end on real MT10 envs, tiny networks: determinism, a stop request
mid-episode, and kills (real SIGKILLs of a subprocess) at a random instant and at the two
instants a checkpoint is most fragile, all with a buffer that has wrapped around; each
resumed run must end with exactly the record of an uninterrupted one."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("metaworld")

from conftest import kill_after_a_checkpoint, quiet  # noqa: E402

from harness.rl import train as rl_train  # noqa: E402
from harness.rl.train import StopRequested, Trainer  # noqa: E402

pytestmark = pytest.mark.slow

# 6 episodes of 20 steps x 10 tasks = 1200 transitions into a 500-row ring: it wraps twice
TINY = {"dataset": "mt10", "method": "pcgrad", "seed": 3, "steps": 120, "horizon": 20, "init_steps": 20,
        "eval_every": 40, "batch_size": 32, "buffer_capacity": 500, "hidden_dim": 16, "hidden_layers": 1,
        "device": "cpu"}


def comparable(result: dict) -> dict:
    """What must not change with interruptions: the metrics, and numbers every update moves."""
    details = result["details"]
    return json.loads(json.dumps({"metrics": result["metrics"], "last_losses": details["last_losses"],
                                  "temperature": details["temperature"], "updates": result["timing"]["updates"],
                                  "steps": result["timing"]["steps"]}))


@pytest.fixture(scope="module")
def reference():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = Trainer(TINY, log=quiet).run()
    finally:
        torch.set_num_threads(threads)
    assert result["details"]["buffer_wrapped"] and result["timing"]["updates"] == 20 + 99
    return result


def test_two_identical_runs_give_the_same_record(reference, one_torch_thread):
    again = Trainer(TINY, log=quiet).run()
    assert comparable(again) == comparable(reference)
    metrics = again["metrics"]
    assert [point["step"] for point in metrics["curve"]] == [0, 40, 80, 120]
    assert set(metrics["tasks"]) == set(again["details"]["tasks"]) and len(metrics["tasks"]) == 10
    assert metrics["success"] == pytest.approx(sum(metrics["tasks"].values()) / 10)
    timing = again["timing"]
    assert timing["env_steps"] == 1200 and timing["env_steps_per_second"] > 0 and timing["seconds_per_update"] > 0
    assert again["details"]["resumed_from_step"] is None and "peak_gpu_bytes" not in again["details"]  # the worker's


def training_of(result: dict) -> dict:
    details = result["details"]
    return {"last_losses": details["last_losses"], "temperature": details["temperature"],
            "updates": result["timing"]["updates"]}


@pytest.mark.parametrize("score_evaluations", [2, 1])
def test_the_score_averages_the_last_evaluations_and_validation_the_last_training_episodes(
        reference, monkeypatch, one_torch_thread, score_evaluations):
    """Scripted evaluations and training successes; with score_evaluations 1 the score is the
    final evaluation's (the paper's). Evaluating (the reference did, on 10 goals) never
    changes training."""
    calls = iter(range(4))  # evaluation i gives task t a success of 10 i + t
    monkeypatch.setattr(rl_train, "evaluate", lambda envs, actor, goals, device:
                        dict(zip(envs.tasks, (10.0 * next(calls) + np.arange(envs.num_tasks)).tolist())))
    trainer = Trainer({**TINY, "score_evaluations": score_evaluations, "train_success_episodes": 4}, log=quiet)
    real_step, steps = trainer.envs.step, iter(range(TINY["steps"]))

    def step(actions):  # env t succeeds at the 5th step of training episode e when (e + t) % 3 == 0
        obs, reward, _ = real_step(actions)
        episode, at = divmod(next(steps), TINY["horizon"])
        return obs, reward, np.array([float(at == 5 and (episode + t) % 3 == 0) for t in range(10)])

    monkeypatch.setattr(trainer.envs, "step", step)
    result = trainer.run()
    metrics = result["metrics"]
    assert [point["step"] for point in metrics["curve"]] == [0, 40, 80, 120]
    last = [[10.0 * i + t for t in range(10)] for i in (2, 3)][-score_evaluations:]
    assert list(metrics["tasks"].values()) == [float(np.mean(column)) for column in zip(*last)]
    assert metrics["success"] == pytest.approx(np.mean(last))
    assert result["details"]["scored_steps"] == [80, 120][-score_evaluations:]
    if score_evaluations == 1:
        final = metrics["curve"][-1]
        assert metrics["success"] == final["success"] and metrics["tasks"] == final["tasks"]
    # the last 4 of the 6 training episodes
    expected = [100.0 * np.mean([(e + t) % 3 == 0 for e in range(2, 6)]) for t in range(10)]
    assert list(metrics["train_tasks"].values()) == expected
    assert metrics["train_success"] == pytest.approx(np.mean(expected))
    assert training_of(result) == training_of(reference)


def test_a_stop_mid_episode_finishes_the_episode_saves_and_resumes_exactly(reference, tmp_path, monkeypatch,
                                                                           one_torch_thread):
    monkeypatch.setattr(rl_train, "CHECKPOINT_SECONDS", 1e9)  # only the stop saves
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    trainer = Trainer(TINY, checkpoint=checkpoint, log=quiet)
    requested_at = {}
    update = trainer._update

    def update_then_request():
        update()
        if trainer.updates == 45:
            requested_at["step"] = trainer.step
            trainer.stop_requested = True

    trainer._update = update_then_request
    with pytest.raises(StopRequested):
        trainer.run()
    assert trainer.step % TINY["horizon"] == 0 and trainer.step > requested_at["step"]
    assert checkpoint.exists() and (checkpoint.parent / "replay.f32").exists()
    resumed = Trainer(TINY, checkpoint=checkpoint, log=quiet)
    assert resumed.resumed_from == trainer.step
    result = resumed.run()
    assert comparable(result) == comparable(reference)
    assert result["details"]["resumed_from_step"] == trainer.step
    # over: the buffer files are gone and the finished checkpoint answers without training
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["checkpoint.pt"]
    assert comparable(Trainer(TINY, checkpoint=checkpoint, log=quiet).run()) == comparable(reference)


WORKER = """
import json, os, signal, sys
import numpy as np, torch
torch.set_num_threads(1)
from harness.rl import replay_disk, train
config, checkpoint, out, fault, nth = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == nth

if fault == "before_checkpoint":  # this save's redo file is on disk, its checkpoint.pt is not
    save_atomic = train.save_atomic
    def killing_save_atomic(state, path):
        if due():
            os.kill(os.getpid(), signal.SIGKILL)
        save_atomic(state, path)
    train.save_atomic = killing_save_atomic
elif fault == "mid_apply":  # checkpoint.pt is written, half its new rows are in the memmap
    apply = replay_disk.ReplayImage.apply
    def killing_apply(self, name):
        if due():
            with np.load(self.folder / name) as redo:
                start, rows = int(redo["start"]), redo["rows"]
            half = len(rows) // 2
            self.rows[(start + np.arange(half)) % self.capacity] = rows[:half]
            self.rows.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        apply(self, name)
    replay_disk.ReplayImage.apply = killing_apply
result = train.Trainer(config, checkpoint=checkpoint, log=lambda line: None).run()
json.dump({"result": result}, open(out, "w"))
"""


def run_worker(config, checkpoint, out, fault="none", nth=0, wait=True):
    command = [sys.executable, "-c", WORKER, json.dumps(config), str(checkpoint), str(out), fault, str(nth)]
    env = {**os.environ, "HARNESS_CHECKPOINT_SECONDS": "0"}  # a checkpoint at every episode boundary
    if wait:
        return subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def resume_here(checkpoint, monkeypatch) -> dict:
    monkeypatch.setattr(rl_train, "CHECKPOINT_SECONDS", 0.0)
    return Trainer(TINY, checkpoint=checkpoint, log=quiet).run()


def test_killed_at_a_random_instant_and_resumed_gives_the_same_record(reference, tmp_path, monkeypatch,
                                                                       one_torch_thread):
    checkpoint, out = tmp_path / "checkpoint.pt", tmp_path / "result.json"
    worker = run_worker(TINY, checkpoint, out, wait=False)
    kill_after_a_checkpoint(worker, checkpoint, out)
    result = resume_here(checkpoint, monkeypatch)
    assert result["details"]["resumed_from_step"] is not None
    assert comparable(result) == comparable(reference)


def test_killed_inside_checkpoints_after_the_buffer_wrapped_resumes_exactly(reference, tmp_path, monkeypatch,
                                                                            one_torch_thread):
    """Saves come at steps 0, 20, 40, ... (every boundary); from step 60 on, each one's rows
    overwrite ring rows the previous checkpoint still holds."""
    checkpoint, out = tmp_path / "checkpoint.pt", tmp_path / "result.json"
    # 1. killed in the save at step 80 (the 5th) after its redo file, before its checkpoint.pt
    killed = run_worker(TINY, checkpoint, out, "before_checkpoint", 5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in tmp_path.glob("replay-*.redo")] == ["replay-5.redo"]  # stale: must not be applied
    # 2. resumed from step 60 and killed in its 3rd save (step 100): checkpoint.pt written, half its rows copied
    killed = run_worker(TINY, checkpoint, out, "mid_apply", 3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in tmp_path.glob("replay-*.redo")] == ["replay-7.redo"]  # must be applied again
    # 3. resumed from step 100
    result = resume_here(checkpoint, monkeypatch)
    assert result["details"]["resumed_from_step"] == 100
    assert comparable(result) == comparable(reference)


def test_bad_config_combinations_fail_before_anything_is_built():
    with pytest.raises(ValueError, match="eval_every: 50 is not a multiple of horizon 20"):
        Trainer({**TINY, "eval_every": 50}, log=quiet)
    with pytest.raises(ValueError, match="longer than metaworld 3's episodes"):
        Trainer({**TINY, "horizon": 600, "steps": 1200, "eval_every": 600}, log=quiet)
    with pytest.raises(ValueError, match="unknown rl config keys"):
        Trainer({**TINY, "learning_rate": 0.1}, log=quiet)
