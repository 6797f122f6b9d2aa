"""Multi-process data-parallel training: process group, sharding, reductions, rank-0 writes.

Launched by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), ``sepconv train`` joins a process group (``nccl`` on GPU, ``gloo`` on CPU),
wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged
across ranks in the backward pass) and gives each rank every ``world_size``-th sample of the
epoch's permutation with :class:`~torch.utils.data.DistributedSampler`. Each global batch of
``batch_size`` is then split into ``world_size`` equal local batches, the same samples a single
process would see in that step: with a model without batch-norm (or whose statistics do not
matter), 2 processes train the same weights as 1 process on the same global batch (a test checks
this). BatchNorm in DDP normalises per rank (local batch statistics), as everywhere in PyTorch
on CPU; ``SyncBatchNorm`` needs GPUs.

Only rank 0 writes files; the others wait at a barrier so that no rank runs ahead of a
checkpoint. Without ``torchrun`` everything here is a no-op for one process.

Example::

    $ torchrun --standalone --nproc_per_node 2 -m sepconv train mobilenet_v2 --data digits --batch-size 128
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistInfo", "all_reduce_sum", "barrier", "broadcast_object", "cleanup", "device_for", "setup", "wrap"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: rank among ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def device_for(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` (a GPU when torch sees one), ``"cpu"`` or ``"cuda"`` as this rank's device."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={name!r} must be 'auto', 'cpu' or 'cuda'")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA GPU (this torch build or machine has none)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device: str = "auto") -> DistInfo:
    """Join torchrun's process group if ``WORLD_SIZE > 1``; return this process's :class:`DistInfo`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = device_for(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank, world, local_rank, dev)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    """``model`` in DDP when distributed (parameters broadcast from rank 0), else itself."""
    if not info.distributed:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks (``t`` itself for one process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank (``obj`` itself for one process); JSON-like data."""
    if not info.distributed:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0, device=info.device if info.device.type == "cuda" else None)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()

