"""The networks of multi-task SAC as the paper's code builds them (rl.md section 2): MLPs of
``layers`` hidden ReLU layers of ``hidden`` units, Xavier-uniform weights and zero biases;
a tanh-squashed Gaussian actor whose log-std goes through tanh and is rescaled to
[-20, 2]; twin Q-networks on the concatenated observation and action. No task id enters
(unless the observation carries the one-hot).

Every forward takes an optional ``tape`` (a list): each linear layer appends
``(layer, input, output)`` to it, which is what ``task_gradients.segment`` needs to build
per-task gradients from one backward pass.
"""
from __future__ import annotations

import math

import torch
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class MLP(nn.Module):
    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int, generator: torch.Generator | None = None):
        super().__init__()
        widths = [inputs] + [hidden] * layers + [outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, tape: list | None = None) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            out = layer(x)
            if tape is not None:
                tape.append((layer, x, out))
            x = torch.relu(out) if i < last else out
        return x


class Actor(nn.Module):
    def __init__(self, observation_dim: int, action_dim: int, hidden: int, layers: int, generator=None):
        super().__init__()
        self.action_dim = action_dim
        self.net = MLP(observation_dim, hidden, layers, 2 * action_dim, generator)

    def forward(self, obs: torch.Tensor, generator: torch.Generator | None = None, tape: list | None = None):
        """(squashed sample, its log-probability (B,)), the noise drawn from ``generator``."""
        mu, log_std = self.net(obs, tape).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        pre_tanh = mu + noise * log_std.exp()
        log_pi = (-0.5 * noise.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * self.action_dim
        action = torch.tanh(pre_tanh)
        log_pi = log_pi - torch.log(torch.relu(1 - action.pow(2)) + 1e-6).sum(-1)
        return action, log_pi

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action of evaluation: tanh of the Gaussian's mean."""
        return torch.tanh(self.net(obs).chunk(2, dim=-1)[0])


class Critic(nn.Module):
    def __init__(self, observation_dim: int, action_dim: int, hidden: int, layers: int, generator=None):
        super().__init__()
        self.q1 = MLP(observation_dim + action_dim, hidden, layers, 1, generator)
        self.q2 = MLP(observation_dim + action_dim, hidden, layers, 1, generator)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, tape: list | None = None):
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x, tape).squeeze(-1), self.q2(x, tape).squeeze(-1)
