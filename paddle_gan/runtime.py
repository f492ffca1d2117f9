"""CPU runtime defaults, applied when paddle_gan is imported and before Paddle loads.

Paddle's CPU math library uses one thread unless told otherwise, and MKL may pick a slow code path
on some CPUs. Defaults set here: MKL_NUM_THREADS = usable cores (shared out among the processes a
paddle.distributed.launch starts on this machine, PADDLE_LOCAL_SIZE), MKL_DEBUG_CPU_TYPE=5, and
Paddle's own CPU math thread count to match. OMP_NUM_THREADS is left alone: Paddle warns unless it is 1, and
it did not change the measured speed. A variable already set in the environment wins;
PADDLE_GAN_CPU_TUNING=0 turns all of it off.
"""
from __future__ import annotations

import os


def enabled() -> bool:
    return os.environ.get("PADDLE_GAN_CPU_TUNING", "1") != "0"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_process() -> int:
    """Usable cores divided among the training processes on this machine (1 without a launcher)."""
    local = int(os.environ.get("PADDLE_LOCAL_SIZE") or 1)
    return max(1, usable_cores() // local)


def configure_env() -> None:
    """Thread and MKL variables; must run before Paddle (and its MKL) is loaded."""
    if not enabled():
        return
    n = str(threads_per_process())
    os.environ.setdefault("MKL_NUM_THREADS", n)
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")


def configure_paddle() -> None:
    """Paddle's CPU math thread count (MKL_NUM_THREADS alone does not raise it)."""
    if not enabled():
        return
    import paddle

    n = int(os.environ.get("MKL_NUM_THREADS") or threads_per_process())
    paddle.base.core.set_num_threads(max(1, n))
