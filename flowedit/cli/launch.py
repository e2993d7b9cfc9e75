"""Several processes of one ``flowedit run`` (``accelerate launch``, ``torchrun``): each takes its share of the
edits; a CPU (gloo) group only makes them wait for each other at the end."""

from __future__ import annotations

__all__ = ["failures_of_all_processes", "join_process_group"]


def join_process_group() -> None:
    """Join the launch's group: a launcher stops all processes as soon as one exits non-zero, which must not cut
    the others' edits short."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(days=30))


def failures_of_all_processes(failed: int) -> int:
    """The failed edits of every process (also a barrier: returns once every process has finished its edits)."""
    import torch
    import torch.distributed as dist

    total = torch.tensor([failed])
    dist.all_reduce(total)
    dist.destroy_process_group()
    return int(total.item())
