"""Data-parallel training under torchrun (`torchrun --nproc_per_node=N -m fewlabels train CONFIG`).

Every rank runs the same loop with the same random streams: each draws the *global* batch (data,
z, the gradient penalty's ε) and keeps its 1/N slice, computes the mean loss on it, and the
gradients are averaged over ranks before every optimiser step, as DistributedDataParallel does.
So N processes take exactly the steps of one process with the same global batch (up to float
summation order), every rank holds the same weights, and rank 0 alone writes the run directory
(config, metrics, checkpoints, report). Backend: NCCL on CUDA, gloo on the CPU and where ranks share a GPU (`backend`).

A family opts in (`DISTRIBUTED = True` on its config) by calling `shard` on what it draws and
`average_gradients` after backward: the GANs, diffusion and the few-labels family do. Policy gradients (A2C, PPO) and
Go self-play draw apart instead: each rank steps its own share of the environments or plays its
share of the games (seeded by `rank_seed`), learns from its own experience, and averages its
gradients (rl/deep/pg.py, rl/go/). What does not train under torchrun (DQN, REINFORCE) refuses to
start with more than one process, in one sentence (`torchrun_refusal` on the config). Batch norm is
the one layer whose forward couples the samples of a batch: `BatchNorm2d` below takes its
statistics over the global batch, so it too computes what one process would.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn

from fewlabels.errors import UserError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


# How long a rank waits in a collective for the others: rank 0 evaluates alone (Go matches against
# GNU Go, FID on many samples) while the others wait in their next all-reduce; gloo's default
# of 30 minutes is too short for that. A rank that dies is noticed at once (peer_failed), not by this.
TIMEOUT = datetime.timedelta(hours=2)


def backend(device: torch.device, ranks_here: int, gpus: int) -> str:
    """NCCL where every rank on this machine has a GPU of its own; gloo on the CPU and where ranks
    share GPUs (more ranks than GPUs: NCCL refuses two ranks on one device). Sharing pays where the
    work is mostly on the CPU, such as Go self-play's tree search, whose ranks only call the
    network on the GPU; their collectives then travel by way of the CPU (`_wire`)."""
    return "nccl" if device.type == "cuda" and ranks_here <= gpus else "gloo"


def init(device: torch.device) -> None:
    """Join the process group torchrun set up (no-op for a single process); on CUDA, local rank r
    takes GPU r mod the number of GPUs."""
    if world_size() > 1 and not dist.is_initialized():
        gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        here = int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))
        dist.init_process_group(backend(device, here, gpus), timeout=TIMEOUT)
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % gpus)


def finish() -> None:
    """Leave the process group together: every rank waits until rank 0 has written the run, then
    the group is destroyed. A rank that simply exits while the others still hold the group can
    die in gloo's teardown ("terminate called without an active exception"; seen here once in
    seven runs)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# Rank r's own streams (its environments, its sampled actions) start from seed + r·stride: far
# apart enough that rank r's environments, seeded seed + r·stride + i, never meet another rank's.
RANK_SEED_STRIDE = 100_003


def rank_seed(seed: int) -> int:
    """The seed of what each rank must draw apart: `seed` itself on rank 0 (one process is unchanged)."""
    return seed + RANK_SEED_STRIDE * rank()


def per_rank(total: int, what: str) -> int:
    """This rank's share of a global count (environments, minibatch size): total / N, exactly."""
    n = world_size()
    if total % n:
        raise UserError(f"{what} {total} is not divisible by the {n} processes; use a multiple of {n}")
    return total // n


def _wire() -> torch.device:
    """Where a collective's tensors must be: NCCL takes CUDA tensors only, gloo CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_sum(x: Tensor) -> Tensor:
    """The sum over ranks of x (a new tensor on x's device; x itself on one process). Counts and
    statistics kept on the CPU travel by way of the GPU under NCCL."""
    if world_size() == 1:
        return x
    y = x.to(_wire(), copy=True)
    dist.all_reduce(y)
    return y.to(x.device)


def all_gather(x: Tensor) -> list[Tensor]:
    """Every rank's x, in rank order, on x's device (x alone on one process)."""
    if world_size() == 1:
        return [x]
    y = x.to(_wire()).contiguous()
    out = [torch.empty_like(y) for _ in range(world_size())]
    dist.all_gather(out, y)
    return [o.to(x.device) for o in out]


def peer_failed(error: BaseException) -> bool:
    """Is `error` a collective that failed because another rank is gone (it raised, or was
    killed)? gloo says "Connection closed by peer" (or reset); NCCL raises DistError."""
    if world_size() == 1:
        return False
    text = str(error)
    return isinstance(error, dist.DistError) or "closed by peer" in text or "Connection reset" in text


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
    flat = torch.cat([g.reshape(-1) for g in grads]).to(_wire())
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def agree(losses: dict[str, Tensor], stopping: bool, out_of_time: bool = False
          ) -> tuple[dict[str, float], bool, bool]:
    """What every rank must agree on after a step, in one all-reduce: the losses averaged over
    ranks (the global batch's, as one process would log them; so a NaN on any rank is a NaN on
    all, and all stop together), whether any rank received a stop signal (SIGTERM can reach
    them at different steps; a rank leaving alone would leave the others waiting in an all-reduce)
    and whether any rank found the time budget (train.max_minutes) spent."""
    if world_size() == 1:
        return {k: float(v) for k, v in losses.items()}, stopping, out_of_time
    device = _wire()  # the losses may be Python floats or CPU tensors (RL, Go) under NCCL too
    values = [torch.as_tensor(v).detach().float().reshape(()).to(device) for v in losses.values()]
    flags = torch.tensor([float(stopping), float(out_of_time)], device=device)
    flat = torch.cat([torch.stack(values) if values else flags[:0], flags])
    dist.all_reduce(flat)
    flat = flat.cpu()
    means = (flat[:-2] / world_size()).tolist()
    return dict(zip(losses, means, strict=True)), bool(flat[-2] > 0), bool(flat[-1] > 0)


def _global_sum(x: Tensor) -> Tensor:
    """Sum over ranks, differentiable: the backward pass sums the ranks' gradients, as the
    chain rule asks when every rank's loss depends on the global statistic."""
    return dist_fn.all_reduce(x, op=dist.ReduceOp.SUM)


class _GlobalBatchNorm:
    """Batch norm whose training statistics are those of the global batch under torchrun (what
    SyncBatchNorm does on CUDA, also on gloo/CPU, which SyncBatchNorm refuses). One process:
    exactly torch's batch norm. The state dict is torch's, so checkpoints move freely between one
    and N processes.

        μ = Σ_ranks Σ x / N,  σ² = Σ_ranks Σ (x - μ)² / N,  y = γ (x - μ) / √(σ² + ε) + β

    Two all-reduces (mean, then the centred second moment) rather than one of Σx and Σx², whose
    difference loses digits in float32. Statistics over every dimension but the channels (dim 1)."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        xf = x.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # Σx and the number of values per channel in one all-reduce: the ranks' slices may differ
        # in size (Go self-play samples from replay buffers that fill at different rates).
        summed = _global_sum(torch.cat([xf.sum(dim=dims), xf.new_tensor([xf.numel() // xf.shape[1]])]))
        mean, count = summed[:-1] / summed[-1], summed[-1].item()
        centred = xf - mean.view(shape)
        var = _global_sum(centred.pow(2).sum(dim=dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / (count - 1), m)  # unbiased, as torch's
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class BatchNorm1d(_GlobalBatchNorm, nn.BatchNorm1d):
    """nn.BatchNorm1d over the global batch under torchrun (see _GlobalBatchNorm)."""


class BatchNorm2d(_GlobalBatchNorm, nn.BatchNorm2d):
    """nn.BatchNorm2d over the global batch under torchrun (see _GlobalBatchNorm)."""


def standardise(x: Tensor) -> Tensor:
    """(x - mean x) / (std x + 1e-8) over the global batch (rows = this rank's part, of any size):
    what one process computes on all ranks' rows together (advantage normalisation)."""
    if world_size() == 1:
        return (x - x.mean()) / (x.std() + 1e-8)
    x64 = x.double()
    total, square, n = all_sum(torch.stack([x64.sum(), (x64 * x64).sum(), x64.new_tensor(len(x))]))
    mean = total / n
    std = ((square - n * mean * mean) / (n - 1)).clamp_min(0).sqrt()
    return (x - mean.float()) / (std.float() + 1e-8)


def global_mean(x: Tensor) -> Tensor:
    """The mean over the global batch of x (rows = this rank's slice), differentiable: what one
    process would compute on the whole batch (equal slices on every rank)."""
    if world_size() == 1:
        return x.mean(0)
    return _global_sum(x.sum(0)) / (x.shape[0] * world_size())
