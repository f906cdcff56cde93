"""DistributedDataParallel under torchrun: gloo on CPU, NCCL on GPU."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init(device: str) -> World:
    """Joins the process group torchrun describes (env RANK, WORLD_SIZE, MASTER_ADDR/PORT), or a
    world of one when not launched by torchrun."""
    if not launched_by_torchrun():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size())


def wrap(task, world: World) -> None:
    """Replaces each trainable network the task's step calls by its DDP wrapper."""
    if world.size == 1:
        return
    if not task.supports_ddp:
        raise ValueError(f"{task.name}: its training recipe does not run under DistributedDataParallel "
                         "(use a single process)")
    from torch.nn.parallel import DistributedDataParallel as DDP

    for key, net in task.nets.items():
        if any(p.requires_grad for p in net.parameters()):
            ids = [torch.cuda.current_device()] if task.s.device.startswith("cuda") else None
            task.fwd[key] = DDP(net, device_ids=ids)


def finish(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
