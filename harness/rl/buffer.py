"""The replay buffer: one ring of transitions shared by every task, storing each one's task
index, sampled uniformly (U ``mtrl/replay_buffer.py``), with the per-task reward moments
of its buffer-side normalisation.

Rows are float32 ``[obs, action, reward, next_obs, not_done, task]`` in one (capacity, width)
tensor on the run's device (the working copy sampled from). Reward normalisation: each
sampled reward is divided by sqrt(E[r^2] - E[r]^2 + 1e-8), the moments of EVERY reward
ever added for its task (rows overwritten after a wrap still count), no mean subtracted;
kept here as float64 sums (the paper's code keeps float32 running means). The running
max reward per task gives the target cap of ``clip_targets``.

``pending()`` is what was written since ``mark_saved()``: the rows a checkpoint must make
durable (``harness.rl.replay_disk``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor  # (B,), normalised when asked
    next_obs: torch.Tensor
    not_done: torch.Tensor  # (B,)
    task: torch.Tensor  # (B,) int64
    max_reward: torch.Tensor  # (B,) the task's max reward so far, on the reward's scale


class ReplayBuffer:
    def __init__(self, capacity: int, observation_dim: int, action_dim: int, num_tasks: int, device: torch.device):
        self.capacity, self.observation_dim, self.action_dim, self.num_tasks = capacity, observation_dim, action_dim, num_tasks
        self.width = 2 * observation_dim + action_dim + 3
        self.device = device
        self.rows = torch.zeros((capacity, self.width), dtype=torch.float32, device=device)
        self.cursor = self.size = self.added = 0
        self.saved_cursor, self.unsaved = 0, 0
        self.reward_count = np.zeros(num_tasks, dtype=np.int64)
        self.reward_sum = np.zeros(num_tasks, dtype=np.float64)
        self.reward_square_sum = np.zeros(num_tasks, dtype=np.float64)
        self.reward_max = np.full(num_tasks, -np.inf)

    # -- adding ---------------------------------------------------------

    def add(self, obs, action, reward, next_obs, not_done, task) -> None:
        """One row per entry of the (n, ...) numpy arrays."""
        reward = np.asarray(reward, dtype=np.float64)
        task = np.asarray(task, dtype=np.int64)
        rows = np.concatenate([np.asarray(obs, np.float32), np.asarray(action, np.float32), reward[:, None].astype(np.float32),
                               np.asarray(next_obs, np.float32), np.asarray(not_done, np.float32)[:, None],
                               task[:, None].astype(np.float32)], axis=1)
        n = len(rows)
        positions = (self.cursor + np.arange(n)) % self.capacity
        self.rows[torch.from_numpy(positions).to(self.device)] = torch.from_numpy(rows).to(self.device)
        np.add.at(self.reward_count, task, 1)
        np.add.at(self.reward_sum, task, reward)
        np.add.at(self.reward_square_sum, task, reward * reward)
        np.maximum.at(self.reward_max, task, reward)
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.added += n
        self.unsaved = min(self.unsaved + n, self.capacity)

    # -- sampling -------------------------------------------------------

    def reward_std(self) -> np.ndarray:
        """(T,) per-task normaliser; a task with no reward yet gets 1 (as the paper's initial moments)."""
        count = np.maximum(self.reward_count, 1)
        mean, square = self.reward_sum / count, self.reward_square_sum / count
        variance = np.where(self.reward_count > 0, square - mean * mean, 1.0)
        return np.sqrt(variance + 1e-8)

    def sample(self, batch_size: int, rng: np.random.Generator, normalise: bool) -> Batch:
        index = torch.from_numpy(rng.integers(0, self.size, size=batch_size)).to(self.device)
        rows = self.rows[index]
        d, a = self.observation_dim, self.action_dim
        task = rows[:, -1].long()
        reward, max_reward = rows[:, d + a], torch.as_tensor(self.reward_max, dtype=torch.float32, device=self.device)[task]
        if normalise:
            std = torch.as_tensor(self.reward_std(), dtype=torch.float32, device=self.device)[task]
            reward, max_reward = reward / std, max_reward / std
        return Batch(obs=rows[:, :d], action=rows[:, d:d + a], reward=reward, next_obs=rows[:, d + a + 1:2 * d + a + 1],
                     not_done=rows[:, 2 * d + a + 1], task=task, max_reward=max_reward)

    # -- persistence ----------------------------------------------------

    def pending(self) -> tuple[int, np.ndarray]:
        """(first ring position, rows in ring order) written since ``mark_saved``."""
        positions = (self.saved_cursor + np.arange(self.unsaved)) % self.capacity
        return self.saved_cursor, self.rows[torch.from_numpy(positions).to(self.device)].cpu().numpy()

    def mark_saved(self) -> None:
        self.saved_cursor, self.unsaved = self.cursor, 0

    def load_rows(self, rows: np.ndarray) -> None:
        """The first ``len(rows)`` ring positions, from the disk image."""
        self.rows[:len(rows)] = torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)

    def state_dict(self) -> dict:
        """Everything but the rows (those live on disk)."""
        return {"capacity": self.capacity, "width": self.width, "cursor": self.cursor, "size": self.size,
                "added": self.added, "reward_count": self.reward_count.copy(), "reward_sum": self.reward_sum.copy(),
                "reward_square_sum": self.reward_square_sum.copy(), "reward_max": self.reward_max.copy()}

    def load_state_dict(self, state: dict) -> None:
        if (state["capacity"], state["width"]) != (self.capacity, self.width):
            raise RuntimeError(f"checkpoint buffer is {state['capacity']} x {state['width']}, this run's is "
                               f"{self.capacity} x {self.width}")
        self.cursor, self.size, self.added = state["cursor"], state["size"], state["added"]
        for name in ("reward_count", "reward_sum", "reward_square_sum", "reward_max"):
            getattr(self, name)[:] = state[name]
        self.mark_saved()
