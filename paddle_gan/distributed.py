"""Data-parallel training on Paddle's own engine: `python -m paddle.distributed.launch`.

    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c configs/quickstart.yaml

The launcher starts one tools/train.py per device (on a CPU-only machine: per process, over gloo)
and tells each its rank through PADDLE_TRAINER_ID / PADDLE_TRAINERS_NUM. A plain
`python tools/train.py` is world size 1, and nothing here changes what it computes.

With world size W > 1:
- train.batch_size is per process; each step trains on W * batch_size images. The global batch of a
  step is the same slice of the same shuffled order a single process with batch W * batch_size
  would take, cut into W disjoint parts; so is the noise. Only the split differs.
- G and D are each wrapped in paddle.DataParallel (parameters broadcast from rank 0 at the start,
  gradients averaged over ranks in every backward). On GPU, BatchNorm becomes SyncBatchNorm; on CPU
  each process normalises its own part of the batch (plain per-replica BatchNorm).
- Rank 0 alone writes the run folder (lock, checkpoints, sample grids, the metrics log, VisualDL,
  evaluation). Logged losses are means over ranks, and every step the ranks agree on whether a
  signal asks them to stop, so all stop after the same step and rank 0 saves it.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def writer(self) -> bool:
        """The one process that writes the run folder."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


SINGLE = World()


def from_env() -> World:
    """Rank and world size as paddle.distributed.launch sets them (world size 1 without it)."""
    size = int(os.environ.get("PADDLE_TRAINERS_NUM") or 1)
    rank = int(os.environ.get("PADDLE_TRAINER_ID") or 0)
    return World(rank, size)


def init() -> World:
    """Join the process group if launched with several processes; a no-op otherwise."""
    world = from_env()
    if world.parallel:
        import paddle.distributed as dist

        dist.init_parallel_env()  # gloo on CPU, NCCL on GPU
    return world


def on_gpu() -> bool:
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.get_device().startswith("gpu")


def sync_batchnorm(model, world: World):
    """BatchNorm -> SyncBatchNorm for multi-GPU runs (statistics over the global batch). On CPU,
    Paddle has no SyncBatchNorm kernel, so each process keeps plain BatchNorm over its own part.
    Parameter names and state-dict keys do not change, so checkpoints stay interchangeable."""
    if world.parallel and on_gpu():
        import paddle.nn as nn

        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap(model, world: World):
    """paddle.DataParallel(model) when world size > 1 (broadcasts rank 0's weights now)."""
    if not world.parallel:
        return model
    import paddle

    return paddle.DataParallel(model)


def unwrap(model):
    """The plain Layer inside a DataParallel wrapper (or the model itself)."""
    return getattr(model, "_layers", model)


def wait_for_writer(world: World) -> None:
    """Hold every rank until rank 0 has written its last checkpoint: when one process of a launch
    exits, paddle.distributed.launch gives the others only 3 seconds before it kills them."""
    if world.parallel:
        import paddle.distributed as dist

        dist.barrier()


TIME_UP = 0  # what stops a run whose train.minutes have passed (signals are numbered from 1)


def agree(world: World, values: dict[str, float], signum: int | None) -> tuple[dict[str, float], int | None]:
    """(means of `values` over ranks, what stops the run: a signal, TIME_UP, or None), the same on every
    rank. One small all-reduce per step; with world size 1 the inputs come back unchanged."""
    if not world.parallel:
        return values, signum
    import paddle
    import paddle.distributed as dist

    keys = list(values)
    t = paddle.to_tensor([values[k] for k in keys] + [float(signum == TIME_UP), float(signum == signal.SIGINT),
                                                       float(signum == signal.SIGTERM)], dtype="float64")
    dist.all_reduce(t)  # sum
    out = t.numpy()
    means = {k: float(out[i]) / world.size for i, k in enumerate(keys)}
    stop = (signal.SIGTERM if out[-1] > 0 else signal.SIGINT if out[-2] > 0 else TIME_UP if out[-3] > 0 else None)
    return means, stop
