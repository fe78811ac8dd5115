"""Data-parallel training on PyTorch's own engine (``torch.distributed``, started by ``torchrun``).

    torchrun --nproc_per_node=2 -m helpers finetune ...        # 2 processes on one machine (gloo on CPU)

Every rank builds the same loaders with the same seed, so all ranks see the same *global* batches in the
same order; each rank then keeps its own rows of every global batch (:func:`shard`: rows ``rank::world``),
computes the loss **summed** over its supervised tokens, and backpropagates it. Before the optimizer step
the gradients are summed over the ranks (:func:`all_reduce_gradients`, one ``all_reduce`` of one flat
buffer) and divided by the supervised-token count of the whole global step (:func:`sum_over_ranks`).

Why not plain ``DistributedDataParallel`` averaging? It averages the *per-rank mean* losses' gradients,
which weights a rank with 40 supervised tokens as much as one with 400: not the loss of the single-process
run. Summing first and dividing by the global count gives exactly the single-process gradient (up to the
order of float additions), so 2 ranks x 4 rows train like 1 process x 8 rows (``tests/test_distributed.py``).
Rank 0 alone writes checkpoints, plots and results; every rank resumes from the same checkpoint.
Outside ``torchrun`` (no process group) every function here is a no-op and ``world() == (0, 1)``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files."""
    return world()[0] == 0


def init_from_env(timeout_s: float = 600.0) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment); True if joined.

    NCCL on CUDA (each rank on GPU ``LOCAL_RANK``), gloo on a CPU.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return True


def device_for_rank() -> torch.device | None:
    """This rank's GPU under torchrun on CUDA, else None (the usual device choice applies)."""
    if dist.is_initialized() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def shard(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows ``rank::world`` of a global batch (B, T) -> (about B / world, T)."""
    rank, size = world()
    if size == 1:
        return inputs, targets
    if len(inputs) < size:
        raise ValueError(f"a global batch of {len(inputs)} rows cannot be split over {size} ranks: raise "
                         "batch_size to at least the number of processes")
    return inputs[rank::size], targets[rank::size]


def sum_over_ranks(value: float | int) -> float | int:
    """The sum of ``value`` over all ranks (``value`` itself in a single process)."""
    if world()[1] == 1:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    total = tensor.item()
    return int(total) if isinstance(value, int) else total


def any_over_ranks(flag: bool) -> bool:
    """True when ``flag`` is true on any rank (so every rank stops together)."""
    return bool(sum_over_ranks(int(bool(flag))))


def all_reduce_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over the ranks, in place, with one all_reduce of a flat buffer."""
    if world()[1] == 1:
        return
    for p in params:  # a rank whose rows have no supervised token left the head without a gradient
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters to every rank (all ranks start from the same weights)."""
    if world()[1] == 1:
        return
    for p in model.parameters():
        dist.broadcast(p.data, src=0)


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
