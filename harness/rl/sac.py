"""Multi-task SAC as the paper's code runs it (U ``mtrl/agent/sac.py``; rl.md section 2), with a
multi-task optimizer deciding each role's update direction (``harness.rl.combine``).

One update, on one batch: the critic (twin-Q MSE against r + gamma * not_done *
(min target Q - alpha log pi'), optionally capped), then the actor (alpha log pi - min Q
under the updated critic), then the temperature (alpha * (-log pi - target entropy)),
then the soft update of the target critic. Adam for all three (lr, betas 0.9/0.999), the
actor's and critic's coupled L2 (``*_weight_decay``); one learned temperature shared by all
tasks; target entropy -|A|.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from harness.rl.buffer import Batch
from harness.rl.combine import PLAIN, TaskCombiner
from harness.rl.networks import Actor, Critic
from harness.rl.task_losses import split_by_task

ROLES = ("critic", "actor", "alpha")


class SAC:
    def __init__(self, observation_dim: int, action_dim: int, num_tasks: int, config: dict, device: torch.device,
                 init_generator: torch.Generator, method_options: dict, alpha_uses_method: bool,
                 gradients: str = "segment"):
        hidden, layers, lr = config["hidden_dim"], config["hidden_layers"], config["lr"]
        self.device, self.discount, self.tau = device, config["discount"], config["tau"]
        self.clip_targets = config["clip_targets"]
        self.actor = Actor(observation_dim, action_dim, hidden, layers, init_generator).to(device)
        self.critic = Critic(observation_dim, action_dim, hidden, layers, init_generator).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor([math.log(config["init_temperature"])], device=device))
        self.target_entropy = -float(action_dim)
        betas = (0.9, 0.999)
        self.optimizers = {
            "critic": torch.optim.Adam(self.critic.parameters(), lr=lr, betas=betas, weight_decay=config["critic_weight_decay"]),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=lr, betas=betas, weight_decay=config["actor_weight_decay"]),
            "alpha": torch.optim.Adam([self.log_alpha], lr=lr, betas=betas),
        }
        method = config["method"]
        self.combiners = {role: TaskCombiner(method if role != "alpha" or alpha_uses_method else PLAIN, num_tasks,
                                             method_options, lr, device, gradients) for role in ROLES}
        self.last_losses: dict[str, list] = {}

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.actor(obs, generator)[0]

    def update(self, batch: Batch, noise: torch.Generator, method_generator: torch.Generator) -> None:
        split = split_by_task(batch.task)
        alpha = self.alpha.detach()

        with torch.no_grad():
            next_action, next_log_pi = self.actor(batch.next_obs, noise)
            target_q = torch.min(*self.critic_target(batch.next_obs, next_action)) - alpha * next_log_pi
            target = batch.reward + batch.not_done * self.discount * target_q
            if self.clip_targets:
                target = torch.min(target, batch.max_reward / (1 - self.discount))
        tape: list = []
        q1, q2 = self.critic(batch.obs, batch.action, tape)
        self._step("critic", (q1 - target).pow(2) + (q2 - target).pow(2), split, list(self.critic.parameters()),
                   tape, method_generator)

        tape = []
        action, log_pi = self.actor(batch.obs, noise, tape)
        actor_q = torch.min(*self.critic(batch.obs, action))
        self._step("actor", alpha * log_pi - actor_q, split, list(self.actor.parameters()), tape, method_generator)

        entropy_gap = (-log_pi - self.target_entropy).detach()
        self._step("alpha", self.alpha * entropy_gap, split, [self.log_alpha], None, method_generator)

        with torch.no_grad():
            for target_p, p in zip(self.critic_target.parameters(), self.critic.parameters()):
                target_p.lerp_(p, self.tau)

    def _step(self, role, per_sample, split, params, tape, generator) -> None:
        optimizer = self.optimizers[role]
        optimizer.zero_grad(set_to_none=True)
        task_losses = self.combiners[role].set_gradients(per_sample, split, params, tape, generator)
        optimizer.step()
        self.combiners[role].step()
        self.last_losses[role] = [split.present, task_losses]

    def end_episode(self) -> None:
        for combiner in self.combiners.values():
            combiner.end_epoch()

    def losses_summary(self) -> dict:
        """The last update's mean loss of each role (over the tasks in its batch)."""
        return {role: float(losses.mean()) for role, (_, losses) in self.last_losses.items()}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "optimizers": {role: opt.state_dict() for role, opt in self.optimizers.items()},
                "combiners": {role: c.state_dict() for role, c in self.combiners.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for role, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][role])
        for role, combiner in self.combiners.items():
            combiner.load_state_dict(state["combiners"][role])
