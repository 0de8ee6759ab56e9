"""Data-parallel training under torchrun (`torchrun --nproc_per_node=N -m fewlabels train CONFIG`).

Every rank runs the same loop with the same random streams: each draws the *global* batch (data,
z, the gradient penalty's ε) and keeps its 1/N slice, computes the mean loss on it, and the
gradients are averaged over ranks before every optimiser step, as DistributedDataParallel does.
So N processes take exactly the steps of one process with the same global batch (up to float
summation order), every rank holds the same weights, and rank 0 alone writes the run directory
(config, metrics, checkpoints, report). Backend: NCCL on CUDA, gloo on the CPU.

A family opts in by calling `shard` on what it draws and `average_gradients` after backward;
families that do not (diffusion, RL) refuse to start with more than one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

from fewlabels.errors import UserError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the process group torchrun set up (no-op for a single process)."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def shard(x: Tensor) -> Tensor:
    """This rank's contiguous slice of a global batch."""
    n = world_size()
    if n == 1:
        return x
    if x.shape[0] % n:
        raise UserError(f"train.batch_size {x.shape[0]} is not divisible by the {n} processes; "
                        f"use a multiple of {n}")
    size = x.shape[0] // n
    return x[rank() * size:(rank() + 1) * size]


def average_gradients(params: list[Tensor]) -> None:
    """grad <- mean over ranks of grad, in one all-reduce of the flattened gradients."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
