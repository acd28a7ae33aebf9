"""Evaluation as the paper's code does it (U ``mtrl/experiment/metaworld.py``): ``episodes``
episodes per task of ``horizon`` steps from a reset, deterministic (mean) actions; an episode
is a success if ``info["success"]`` is set at ANY of its steps. Returns success in %.

With the goals fixed and a deterministic policy, metaworld 3's episodes repeat exactly, so
``episodes > 1`` gives the same answer as 1 (the paper used 1).
"""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def evaluate(envs, actor, episodes: int, device: torch.device) -> dict[str, float]:
    hits = np.zeros(envs.num_tasks)
    for _ in range(episodes):
        obs = envs.reset()
        success = np.zeros(envs.num_tasks, dtype=bool)
        for _ in range(envs.horizon):
            action = actor.mean_action(torch.as_tensor(obs, dtype=torch.float32, device=device))
            obs, _, step_success = envs.step(action.cpu().numpy())
            success |= step_success > 0
        hits += success
    return {task: float(100.0 * hits[i] / episodes) for i, task in enumerate(envs.tasks)}
