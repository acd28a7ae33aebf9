"""What every trainer shares: device choice, optimisers, derived seeds, random generator
states, and atomic checkpoints.

A trainer that mixes in ``Resumable`` provides ``state_dict``, ``load_state_dict``,
``step``, ``checkpoint`` (a path or None), ``stop_requested`` and ``log``; ``save`` writes
its state atomically, ``resume`` restores it, so a restarted run continues exactly, and
``save_or_stop`` is what a trainer calls at a step boundary when a checkpoint is due or a
stop was requested.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from harness.api import StopRequested

__all__ = ["CHECKPOINT_SECONDS", "StopRequested", "Resumable", "pick_device", "synchronize", "make_optimizer",
           "save_atomic", "derived_seed", "rng_state", "load_rng_state"]

CHECKPOINT_SECONDS = float(os.environ.get("HARNESS_CHECKPOINT_SECONDS", 300))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {name}, but this machine has no usable GPU (torch.cuda.is_available() is False)")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_optimizer(config: dict, parameters) -> torch.optim.Optimizer:
    kind, lr, decay = config["optimizer"], config["lr"], config["weight_decay"]
    if kind == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if kind == "radam":
        return torch.optim.RAdam(parameters, lr=lr, weight_decay=decay)
    return torch.optim.SGD(parameters, lr=lr, weight_decay=decay, momentum=0.9, nesterov=True)


def derived_seed(seed: int, stream: str) -> int:
    """An independent seed for one named random stream of a run (63 bits of sha256)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") >> 1


def rng_state(device: torch.device, generators: dict) -> dict:
    """Every random state a trainer draws from: torch's global generator, the device's CUDA
    one, and ``generators`` ({name: torch.Generator, numpy Generator or None}), saved as
    ``torch_rng``, ``cuda_rng`` and ``<name>_rng``."""
    state = {"torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    for name, generator in generators.items():
        state[f"{name}_rng"] = (None if generator is None else generator.bit_generator.state
                                if isinstance(generator, np.random.Generator) else generator.get_state())
    return state


def load_rng_state(state: dict, device: torch.device, generators: dict) -> None:
    """Put back what ``rng_state`` saved into the same generators."""
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    for name, generator in generators.items():
        if isinstance(generator, np.random.Generator):
            generator.bit_generator.state = state[f"{name}_rng"]
        elif generator is not None:
            generator.set_state(state[f"{name}_rng"])


def save_atomic(state: dict, path: Path) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class Resumable:
    def where(self) -> str:
        return f"step {self.step}"

    def save(self) -> None:
        if self.checkpoint is not None:
            save_atomic(self.state_dict(), self.checkpoint)

    def save_or_stop(self) -> None:
        """At a step boundary: save; when a stop was requested, then raise StopRequested."""
        self.save()
        if self.stop_requested:
            raise StopRequested(f"stopped at {self.where()}; checkpoint saved")

    def resume(self) -> int | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        # Loaded to the CPU: RNG states must stay CPU byte tensors; load_state_dict moves the rest.
        self.load_state_dict(torch.load(self.checkpoint, map_location="cpu", weights_only=False))
        self.log(f"resumed from checkpoint at {self.where()}")
        return self.step


def device_problem(config: dict, cluster: str, gpus: int) -> str | None:
    """Why a run's ``device`` key cannot work where it is sent, or None (a family's ``check``):
    ``cuda`` needs a GPU on this machine for local runs, and a GPU request on Slurm."""
    if config.get("device") != "cuda":
        return None
    if cluster == "slurm":
        return None if gpus > 0 else "device: cuda, but the run asks Slurm for no GPU (resources.gpus: 0)"
    if not torch.cuda.is_available():
        return "device: cuda, but this machine has no usable GPU (torch.cuda.is_available() is False)"
    return None
