"""Which device runs the work (train.device, and --device of the tools): auto, cpu, gpu or gpu:N.

auto takes GPU 0 when Paddle is a CUDA build and sees a GPU, else the CPU. Asking for a GPU that
is not there is a ConfigError before anything is written. The choice goes through the same
paddle.set_device call whatever the build, so `cpu` on a CUDA build is honoured exactly as here.
Checkpoints do not depend on the device that wrote them: they hold NumPy arrays (safepickle), and
set_state_dict puts them on the device in use.
"""
from __future__ import annotations

import re

import paddle

from .errors import ConfigError

CHOICES = ("auto", "cpu", "gpu", "gpu:N")  # train.device, --device
_GPU = re.compile(r"^gpu(?::(\d+))?$")


def valid(choice: str) -> bool:
    """Whether `choice` names a device (not whether this machine has it: resolve says that)."""
    c = choice.strip().lower()
    return c in ("auto", "cpu") or bool(_GPU.match(c))


def build() -> str:
    """This Paddle as a person would name it, e.g. 'Paddle 3.3.1, CPU build' or '..., CUDA 12.6 build'."""
    cuda = paddle.version.cuda() if paddle.is_compiled_with_cuda() else None
    return f"Paddle {paddle.__version__}, " + (f"CUDA {cuda} build" if cuda and cuda != "False" else "CPU build")


def gpu_count() -> int:
    if not paddle.is_compiled_with_cuda():
        return 0
    try:
        return paddle.device.cuda.device_count()
    except Exception:  # a CUDA build without a usable driver
        return 0


def resolve(choice: str, key: str = "train.device") -> str:
    """The Paddle device string for a choice (cpu, gpu:N); ConfigError naming `key` if unavailable."""
    choice = choice.strip().lower()
    if choice == "cpu":
        return "cpu"
    if choice == "auto":
        return "gpu:0" if gpu_count() else "cpu"
    m = _GPU.match(choice)
    if not m:
        raise ConfigError(f"{key}: {choice!r} is not a device ({' | '.join(CHOICES)})")
    index, count = int(m.group(1) or 0), gpu_count()
    if not paddle.is_compiled_with_cuda():
        raise ConfigError(f"{key}: {choice} asked for, but this is a {build()} (install paddlepaddle-gpu, see "
                          f"README 'GPU'), or use {key.split('.')[-1]} cpu")
    if index >= count:
        raise ConfigError(f"{key}: {choice} asked for, but Paddle sees {count} GPU(s)")
    return f"gpu:{index}"


def use(choice: str, key: str = "train.device") -> str:
    """Resolve the choice and make it Paddle's device; returns the device string."""
    device = resolve(choice, key)
    paddle.set_device(device)
    return device
