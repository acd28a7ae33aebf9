"""A small torch MLP: 64 pixels (scaled to [0, 1]) -> ``mlp_hidden`` -> ``mlp_hidden``
-> 10, ReLU, cross-entropy, Adam, ``mlp_epochs`` passes in a fresh random order each
(``mlp_batch_size`` images per step). The seed sets the initial weights and the batch
order; the whole state (weights, Adam moments, the order generator) is checkpointed
after every epoch, so a killed run resumes to the same result."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness_example.digits.api import PIXEL_MAX, DigitsMethod
from harness_example.digits.methods import register


@register("mlp", version="1")
class MLP(DigitsMethod):
    def __init__(self, config):
        super().__init__(config)
        self.epochs = config["mlp_epochs"]
        hidden = config["mlp_hidden"]
        with torch.random.fork_rng(devices=[]):  # the seed sets the weights without touching global state
            torch.manual_seed(config["seed"])
            self.model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, 10))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["mlp_lr"],
                                          weight_decay=config["mlp_weight_decay"])
        self.order = torch.Generator().manual_seed(config["seed"])

    @staticmethod
    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(images / PIXEL_MAX, dtype=torch.float32)

    def train_epoch(self, images, labels, epoch):
        inputs, targets = self.tensor(images), torch.as_tensor(labels)
        self.model.train()
        total = 0.0
        for batch in torch.randperm(len(inputs), generator=self.order).split(self.config["mlp_batch_size"]):
            loss = F.cross_entropy(self.model(inputs[batch]), targets[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
        return f"loss {total / len(inputs):.4f}"

    @torch.no_grad()
    def predict(self, images):
        self.model.eval()
        return self.model(self.tensor(images)).argmax(1).numpy()

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "order": self.order.get_state()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.order.set_state(state["order"])
