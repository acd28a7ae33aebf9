"""Evaluation as the paper's code does it (U ``mtrl/experiment/metaworld.py``), over several
goals: episodes of ``horizon`` steps from a reset, deterministic (mean) actions; an episode
is a success if ``info["success"]`` is set at ANY of its steps. Returns success in %.

Episode k of task i runs on goal ``goals[i][k]`` of the task's metaworld goals
(``FixedGoalEnvs.goal_sweep``: the training goal first). With a deterministic policy,
episodes on the same goal repeat exactly, so only the number of distinct goals matters; one
episode on the training goal is the paper's evaluation.
"""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def evaluate(envs, actor, goals: list[list[int]], device: torch.device) -> dict[str, float]:
    episodes = len(goals[0])
    hits = np.zeros(envs.num_tasks)
    try:
        for episode in range(episodes):
            envs.set_goals([indices[episode] for indices in goals])
            obs = envs.reset()
            success = np.zeros(envs.num_tasks, dtype=bool)
            for _ in range(envs.horizon):
                action = actor.mean_action(torch.as_tensor(obs, dtype=torch.float32, device=device))
                obs, _, step_success = envs.step(action.cpu().numpy())
                success |= step_success > 0
            hits += success
    finally:
        envs.set_goals(envs.training_goals)
    return {task: float(100.0 * hits[i] / episodes) for i, task in enumerate(envs.tasks)}
