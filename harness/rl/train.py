"""Train one RL run: multi-task SAC on a Meta-World benchmark, the run's multi-task optimizer on
the actor and critic losses; evaluate along the way; return metrics, timing and details.

Schedule (U ``mtrl/experiment/multitask.py``): episodes of ``horizon`` vector steps, every env
reset together; ``init_steps`` vector steps of uniformly random actions, then at that step
``init_steps`` updates in one go, then one update per vector step (each step: act, update,
step the envs, store the T transitions, time-limit steps as not done). Evaluations at step
0, every ``eval_every`` steps and at the end (``harness.rl.evaluate``): ``eval_episodes``
episodes per task on its goal sweep (the training goal, then other goals fixed by the seed).

``metrics``: ``success`` (%), the mean over tasks of ``tasks``, each task's success averaged
over the last ``score_evaluations`` evaluations; ``curve``: per evaluation ``step``,
``success`` and ``tasks`` (each task's success over that evaluation's episodes);
``train_success`` (the family's validation figure), the mean over tasks of
``train_tasks``, each task's success in its last ``train_success_episodes`` training
episodes.

Contract (as every trainer): ``Trainer(config, checkpoint=Path|None, log=print)``,
``stop_requested`` (checked at episode boundaries: the current episode is finished, the
checkpoint saved, ``StopRequested`` raised), ``run() -> {"metrics", "timing", "details"}``.

Checkpoints are taken at episode boundaries, where no env is mid-episode (resets are
deterministic with fixed goals), every ``CHECKPOINT_SECONDS`` and on a stop: networks,
optimizers, temperature, the multi-task optimizers' state, counters, the curve, clocks,
every RNG (torch generators, numpy generators, metaworld's own) in ``checkpoint.pt``;
the buffer's rows in the run folder (``harness.rl.replay_disk``: a memmap plus one redo
file per checkpoint, consistent whatever instant a kill lands at). On the CPU a killed and
resumed run ends with the metrics of an uninterrupted one. When training is over, the
result is checkpointed and the buffer files deleted, so a kill before the record is
written costs nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.rl.benchmarks import BENCHMARKS
from harness.rl.benchmarks._base import metaworld_version
from harness.rl.buffer import ReplayBuffer
from harness.rl.config import alpha_uses_method, optimizer_options, resolved
from harness.rl.evaluate import evaluate
from harness.rl.replay_disk import ReplayImage
from harness.rl.sac import SAC
from harness.training import (
    CHECKPOINT_SECONDS,
    Resumable,
    StopRequested,
    derived_seed,
    load_rng_state,
    pick_device,
    rng_state,
    save_atomic,
    synchronize,
)

__all__ = ["Trainer", "StopRequested", "CHECKPOINT_SECONDS"]

PER_TASK_GRADIENTS = "segment"  # see harness.rl.task_gradients and benchmarks/rl_step.py
PROGRESS_EVERY = 20  # episodes between progress lines in the log
CLOCKS = ("train_seconds", "eval_seconds", "update_seconds", "env_seconds", "checkpoint_seconds")


class Trainer(Resumable):
    def __init__(self, config: dict, checkpoint: Path | None = None, log: Callable[[str], None] = print):
        self.config = config = resolved(config)
        self.log, self.stop_requested = log, False
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.device = device = pick_device(config["device"])
        started = time.perf_counter()
        seed = config["seed"]

        benchmark = BENCHMARKS.get(config["dataset"])
        benchmark.require_prepared()
        self.envs = envs = benchmark.make_envs(seed, config["horizon"], config["reward_function_version"],
                                               config["task_one_hot"])
        self.horizon = config["horizon"]
        self.total_steps = config["steps"] // self.horizon * self.horizon
        self.agent = SAC(envs.observation_dim, envs.action_dim, envs.num_tasks, config, device,
                         torch.Generator().manual_seed(derived_seed(seed, "init")), optimizer_options(config),
                         alpha_uses_method(config), PER_TASK_GRADIENTS)
        capacity = min(config["buffer_capacity"], self.total_steps * envs.num_tasks)  # no larger than ever filled
        self.buffer = ReplayBuffer(capacity, envs.observation_dim, envs.action_dim, envs.num_tasks, device)
        self.image = ReplayImage(self.checkpoint.parent, capacity, self.buffer.width) if self.checkpoint else None
        self.noise = torch.Generator(device=device).manual_seed(derived_seed(seed, "policy"))
        self.method_generator = torch.Generator(device=device).manual_seed(derived_seed(seed, "method"))
        self.explore = np.random.default_rng(derived_seed(seed, "explore"))
        self.sampler = np.random.default_rng(derived_seed(seed, "batches"))
        eval_order = np.random.default_rng(derived_seed(seed, "eval goals"))
        self.eval_goals = envs.goal_sweep(config["eval_episodes"], eval_order)  # per task: goal indices, training first

        self.step, self.updates, self.saves = 0, 0, 0
        self.curve: list[dict] = []
        self.train_successes: list[list[bool]] = []  # the last train_success_episodes episodes: per task, a success?
        self.clocks = dict.fromkeys(CLOCKS, 0.0)
        self.result: dict | None = None
        self.load_seconds = time.perf_counter() - started
        self.resumed_from = self.resume()
        if self.resumed_from is None and self.image is not None:
            self.image.recover(None)  # a fresh start: redo files of an attempt that never checkpointed

    # -- checkpoints ----------------------------------------------------

    def where(self) -> str:
        return f"step {self.step} (episode {self.step // self.horizon} of {self.total_steps // self.horizon})"

    def state_dict(self) -> dict:
        return {
            "config": self.config, "finished": False, "step": self.step, "updates": self.updates, "saves": self.saves,
            "curve": self.curve, "train_successes": self.train_successes, "clocks": dict(self.clocks),
            "agent": self.agent.state_dict(), "buffer": self.buffer.state_dict(), "envs": self.envs.state_dict(),
            **rng_state(self.device, self.generators()),
        }

    def generators(self) -> dict:
        return {"noise": self.noise, "method": self.method_generator, "explore": self.explore, "sampler": self.sampler}

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != self.config:
            raise RuntimeError(f"{self.checkpoint} belongs to another config; delete it to start over")
        if state["finished"]:
            self.result, self.step = state["result"], state["result"]["timing"]["steps"]
            self.image.remove()
            return
        if not self.image.existed and state["buffer"]["size"]:
            raise RuntimeError(f"{self.image.path} is missing or damaged, and {self.checkpoint} needs it: delete the "
                               "checkpoint to start the run over")
        self.image.recover(state["buffer"]["redo"])
        self.buffer.load_state_dict(state["buffer"])
        self.buffer.load_rows(self.image.read(self.buffer.size))
        self.agent.load_state_dict(state["agent"])
        self.envs.load_state_dict(state["envs"])
        load_rng_state(state, self.device, self.generators())
        self.step, self.updates, self.saves = state["step"], state["updates"], state["saves"]
        self.curve, self.train_successes, self.clocks = state["curve"], state["train_successes"], dict(state["clocks"])

    def save(self) -> None:
        """At an episode boundary: the buffer's new rows and ``checkpoint.pt``, in the order
        ``harness.rl.replay_disk`` needs."""
        if self.checkpoint is None:
            return
        started = time.perf_counter()
        self.saves += 1
        start, rows = self.buffer.pending()

        def write_checkpoint(redo_name: str) -> None:
            state = self.state_dict()
            state["buffer"]["redo"] = redo_name
            save_atomic(state, self.checkpoint)

        self.image.save(self.saves, start, rows, write_checkpoint)
        self.buffer.mark_saved()
        self.clocks["checkpoint_seconds"] += time.perf_counter() - started

    # -- training -------------------------------------------------------

    def train(self) -> None:
        last_save = time.perf_counter()
        while self.step < self.total_steps:
            self._evaluate_if_due()
            if self.stop_requested or time.perf_counter() - last_save >= CHECKPOINT_SECONDS:
                self.save_or_stop()
                last_save = time.perf_counter()
            started = time.perf_counter()
            self._episode()
            self.agent.end_episode()
            self.clocks["train_seconds"] += time.perf_counter() - started
            episode = self.step // self.horizon
            if episode % PROGRESS_EVERY == 0:
                self._log_progress()
        self._evaluate_if_due(final=True)

    def _episode(self) -> None:
        config, envs = self.config, self.envs
        tasks = np.arange(envs.num_tasks)
        not_done = np.ones(envs.num_tasks)  # time limits are not terminal; metaworld 3 never terminates
        succeeded = np.zeros(envs.num_tasks, dtype=bool)
        obs = envs.reset()
        for _ in range(self.horizon):
            step = self.step
            if step < config["init_steps"]:
                action = self.explore.uniform(-1.0, 1.0, size=(envs.num_tasks, envs.action_dim)).astype(np.float32)
            else:
                action = self.agent.act(torch.as_tensor(obs, dtype=torch.float32, device=self.device), self.noise)
                action = action.cpu().numpy()
                for _ in range(config["init_steps"] if step == config["init_steps"] else 1):
                    self._update()
            started = time.perf_counter()
            next_obs, reward, success = envs.step(action)
            self.clocks["env_seconds"] += time.perf_counter() - started
            self.buffer.add(obs, action, reward, next_obs, not_done, tasks)
            succeeded |= success > 0
            obs = next_obs
            self.step += 1
        self.train_successes = [*self.train_successes, succeeded.tolist()][-config["train_success_episodes"]:]

    def _update(self) -> None:
        synchronize(self.device)
        started = time.perf_counter()
        batch = self.buffer.sample(self.config["batch_size"], self.sampler, self.config["reward_normalisation"])
        self.agent.update(batch, self.noise, self.method_generator)
        synchronize(self.device)
        self.clocks["update_seconds"] += time.perf_counter() - started
        self.updates += 1

    def _evaluate_if_due(self, final: bool = False) -> None:
        if not (final or self.step % self.config["eval_every"] == 0):
            return
        if self.curve and self.curve[-1]["step"] == self.step:
            return  # done before the checkpoint this run resumed from
        started = time.perf_counter()
        tasks = evaluate(self.envs, self.agent.actor, self.eval_goals, self.device)
        self.clocks["eval_seconds"] += time.perf_counter() - started
        success = float(np.mean(list(tasks.values())))
        self.curve.append({"step": self.step, "success": success, "tasks": tasks})
        solved = sum(value > 0 for value in tasks.values())
        self.log(f"step {self.step}: success {success:.1f}% ({solved} of {len(tasks)} tasks solved at least once)")

    def _log_progress(self) -> None:
        losses = self.agent.losses_summary()
        per_update = self.clocks["update_seconds"] / max(self.updates, 1)
        text = "  ".join(f"{role} loss {value:.3g}" for role, value in losses.items())
        self.log(f"{self.where()}: {self.updates} updates ({per_update * 1000:.1f} ms each)  {text}  "
                 f"alpha {float(self.agent.alpha.detach()):.3g}")

    # -- result ---------------------------------------------------------

    def run(self) -> dict:
        if self.result is None:
            self.train()
            self.result = self._result()
            if self.checkpoint is not None:
                save_atomic({"config": self.config, "finished": True, "result": self.result}, self.checkpoint)
                self.image.remove()
        self.envs.close()
        return self.result

    def _result(self) -> dict:
        clocks, names = self.clocks, self.envs.tasks
        env_steps = self.step * len(names)
        scored = self.curve[-self.config["score_evaluations"]:]
        scores = {task: float(np.mean([point["tasks"][task] for point in scored])) for task in names}
        recent = 100.0 * np.array(self.train_successes, dtype=float)  # (episodes, tasks)
        train_tasks = {task: float(recent[:, i].mean()) for i, task in enumerate(names)}
        return {
            "metrics": {"success": float(np.mean(list(scores.values()))), "tasks": scores, "curve": list(self.curve),
                        "train_success": float(np.mean(list(train_tasks.values()))), "train_tasks": train_tasks},
            "timing": {
                "load_seconds": self.load_seconds, **clocks, "steps": self.step, "env_steps": env_steps,
                "updates": self.updates, "seconds_per_update": clocks["update_seconds"] / max(self.updates, 1),
                "env_steps_per_second": env_steps / clocks["env_seconds"] if clocks["env_seconds"] else None,
            },
            "details": {
                "device": str(self.device),
                "resumed_from_step": self.resumed_from,
                "tasks": list(self.envs.tasks),
                "metaworld": metaworld_version(),
                "goals": [goal.tolist() for goal in self.envs.goals],
                "eval_goals": self.eval_goals,
                "scored_steps": [point["step"] for point in scored],
                "train_success_episodes": len(self.train_successes),
                "episodes": self.step // self.horizon,
                "buffer_rows": self.buffer.capacity,
                "transitions": self.buffer.added,
                "buffer_wrapped": self.buffer.added > self.buffer.capacity,
                "temperature": float(self.agent.alpha.detach()),
                "space": self.agent.combiners["actor"].space,
                "alpha_uses_method": self.agent.combiners["alpha"].method is not None,
                "per_task_gradients": PER_TASK_GRADIENTS,
                "parameters": {"actor": sum(p.numel() for p in self.agent.actor.parameters()),
                               "critic": sum(p.numel() for p in self.agent.critic.parameters())},
                "last_losses": self.agent.losses_summary(),
            },
        }
