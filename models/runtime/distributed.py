"""DistributedDataParallel helpers for the training loop: the rank context read from torchrun's environment,
each rank's share of a batch, its own sampling seed, and the few collectives that keep the ranks in step.

Without torchrun (no WORLD_SIZE, or WORLD_SIZE=1) every helper is a no-op, so one loop serves both cases.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# Seeds of rank r > 0 are spread by a large prime stride, so that nearby seeds of other runs do not collide
# with them for any realistic world size; rank 0 keeps the configured seed (a 1-process run is unchanged).
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: its rank, the number of ranks, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, logs, writes checkpoints and the output."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device = "cpu") -> DistContext:
    """The rank context from torchrun's RANK / WORLD_SIZE / LOCAL_RANK, with the process group started.

    ``device`` is the kind to train on (``cpu`` or ``cuda``): CUDA ranks take GPU ``LOCAL_RANK`` and talk over
    NCCL, CPU ranks over gloo. Without torchrun's variables: rank 0 of 1 on ``device``, no process group.
    """
    device = torch.device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, device=device)


def shutdown(ctx: DistContext) -> None:
    """Stop the process group started by :func:`init_distributed` (once every rank is done)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The sampling seed of ``rank``, derived from the run's ``seed`` (rank 0 keeps it)."""
    return seed + rank * RANK_SEED_STRIDE


def local_batch_sizes(num_samples: int, batch_size: int, world_size: int) -> list[int]:
    """Samples each rank draws per step, so that the ranks together cover every batch of ``batch_size`` over
    ``num_samples`` triples. Every rank gets the same share (rounded up): DDP's gradient mean is then exactly
    the mean over the global batch, and no rank ever holds an empty batch."""
    return [math.ceil(min(batch_size, num_samples - start) / world_size)
            for start in range(0, num_samples, batch_size)]


def wrap(module: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when there are several ranks (gradients all-reduced in backward)."""
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def broadcast_float(value: float, ctx: DistContext) -> float:
    """Rank 0's ``value`` on every rank (every rank must call this)."""
    if not ctx.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def sum_float(value: float, ctx: DistContext) -> float:
    """The sum of ``value`` over the ranks (every rank must call this)."""
    if not ctx.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def gather_generator_states(generator: torch.Generator, ctx: DistContext) -> torch.Tensor:
    """Every rank's generator state stacked in rank order, ``(world_size, state_bytes)`` uint8, on every rank:
    a checkpoint needs them all to resume each rank's sampling stream exactly."""
    state = generator.get_state()
    if not ctx.distributed:
        return state.unsqueeze(0)
    local = state.to(ctx.device)
    states = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(states, local)
    return torch.stack(states).cpu()
