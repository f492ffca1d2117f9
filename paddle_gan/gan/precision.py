"""The precision policy of training (train.amp): plain float32, or mixed precision with the loss
scaling it needs; train_step calls it around every forward, backward and optimizer step. Each mode
is a class registered in PRECISIONS under its train.amp name, whose make(where) gives the policy for
this machine (a GPU, the CPU, with or without the oneDNN operator) and says what it chose.

On a GPU, train.amp is Paddle's autocast (O1) with a GradScaler per optimizer for float16. On a CPU,
Paddle's autocast does nothing (the run stays float32 and Paddle warns), so paddle_gan decides
itself and says so in one line: bfloat16 runs the convolutions in bfloat16 through the oneDNN
operator where the CPU has bfloat16 arithmetic (AMX or AVX512-BF16), after checking the primitives
against float32 once; elsewhere, and for float16, training stays float32.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import paddle

from ..registry import Registry

PRECISIONS = Registry("precision", chooser="train.amp")  # train.amp -> a Precision class


@dataclass
class Where:
    """What a precision mode may depend on: a GPU or the CPU, whether the convolutions run on the
    oneDNN operator, and note(text) to say what it chose (a few words: what runs in which precision)."""
    on_gpu: bool = False
    onednn: bool = True
    note: object = None

    def say(self, line: str) -> None:
        if self.note:
            self.note(line)


@PRECISIONS.register("")
class Precision:
    """The interface of a precision policy, and plain float32 training (train.amp off) as it is."""
    cpu_bfloat16 = False  # the operator's convolutions run in bfloat16 (CPUBFloat16)

    @classmethod
    def make(cls, where: Where) -> "Precision":
        return FLOAT32

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss, which: str) -> None:
        loss.backward()

    def step(self, opt, which: str) -> None:
        opt.step()

    def state_dict(self) -> dict:
        return {}

    def set_state_dict(self, state: dict) -> None:
        pass


class MixedPrecision(Precision):
    """train.amp: forward passes under paddle.amp.auto_cast (O1: matmuls and convolutions in `dtype`,
    numerically sensitive ops in float32); for float16 one GradScaler per optimizer, because G's and
    D's losses differ in scale. bfloat16 has float32's range and needs no scaling. Paddle turns both
    off on CPU (the run stays float32 there), so on CPU this is the same computation as plain float32."""

    def __init__(self, dtype: str):
        self.dtype = dtype
        self.scalers = {k: paddle.amp.GradScaler(enable=dtype == "float16") for k in ("D", "G")}

    def autocast(self):
        return paddle.amp.auto_cast(enable=True, level="O1", dtype=self.dtype)

    def backward(self, loss, which: str) -> None:
        self.scalers[which].scale(loss).backward()

    def step(self, opt, which: str) -> None:  # skips the update if the scaled gradients overflowed
        self.scalers[which].step(opt)
        self.scalers[which].update()

    def state_dict(self) -> dict:  # JSON-ready (the loss scale and its counters), saved in state.json
        return {k: {n: (v.tolist() if hasattr(v, "tolist") else v) for n, v in s.state_dict().items()}
                for k, s in self.scalers.items()}

    def set_state_dict(self, state: dict) -> None:
        for k, s in self.scalers.items():
            if state.get(k):
                s.load_state_dict({n: (np.asarray(v, np.float32) if isinstance(v, list) else v)
                                   for n, v in state[k].items()})


FLOAT32 = Precision()


@PRECISIONS.register("float16")
class Float16(Precision):
    """train.amp=float16: Paddle's autocast with loss scaling on a GPU; on a CPU, float32 (with a note)."""

    @classmethod
    def make(cls, where: Where) -> Precision:
        if where.on_gpu:
            where.say("float16 autocast (Paddle's, O1) with loss scaling")
            return MixedPrecision("float16")
        where.say("float32 (train.amp=float16 is for GPUs)")
        return FLOAT32


class CPUBFloat16(Precision):
    """train.amp=bfloat16 on a CPU: every oneDNN convolution reads bfloat16 (ops.bfloat16), and in the
    channels-last chains of a model (train.channels_last) the activations between layers are bfloat16
    too (ops.channels_last's low); weights, Adam, BatchNorm statistics, dense layers and losses stay
    float32, so no loss scaling is needed and the checkpoint is a float32 one."""
    cpu_bfloat16 = True

    def __init__(self, isa: str):
        self.isa = isa

    def autocast(self):
        from .. import ops

        return ops.bfloat16()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "this CPU")
    except OSError:
        return "this CPU"


def cpu_bfloat16() -> str | None:
    """Which bfloat16 arithmetic this CPU has: "AMX", "AVX512-BF16" or None (from /proc/cpuinfo).
    PADDLE_GAN_CPU_BF16 overrides what is read: "none", or a name (tests)."""
    forced = os.environ.get("PADDLE_GAN_CPU_BF16")
    if forced:
        return None if forced == "none" else forced
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return None
    return "AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else None


def _bfloat16_fails() -> str | None:
    """Why the operator's bfloat16 convolution cannot be trusted here, or None: it must run and agree
    with float32 to bfloat16's precision on a small convolution and its gradients."""
    from .. import ops

    try:
        rng = np.random.default_rng(0)
        x = paddle.to_tensor(rng.standard_normal((4, 16, 8, 8)).astype("float32"), stop_gradient=False)
        w = paddle.to_tensor(rng.standard_normal((8, 16, 3, 3)).astype("float32") * 0.1, stop_gradient=False)
        outs = []
        for low in (False, True):
            with ops.bfloat16(low):
                y = ops.conv(x, w, None, 1, 1)
            gx, gw = paddle.grad(y.square().sum(), [x, w])
            outs.append([t.numpy() for t in (y, gx, gw)])
    except Exception as e:  # oneDNN has no bfloat16 primitive here (it said so as an OSError)
        said = next((ln.strip() for ln in str(e).splitlines() if "dnnl_conv:" in ln), str(e).strip()[:160])
        return f"oneDNN refused its bfloat16 convolution ({said.replace('dnnl_conv: ', '')[:200]})"
    for ref, low in zip(*outs):
        err = np.abs(low - ref).max() / max(np.abs(ref).max(), 1e-12)
        if not np.isfinite(err) or err > 0.05:  # bfloat16 keeps 8 bits: ~0.4 % per value
            return f"its bfloat16 convolution is off by {err:.2g} (relative) from float32"
    return None


@PRECISIONS.register("bfloat16")
class BFloat16(Precision):
    """train.amp=bfloat16: Paddle's autocast on a GPU; on a CPU the oneDNN operator's bfloat16
    convolutions where the CPU has bfloat16 arithmetic and they check out, else float32."""

    @classmethod
    def make(cls, where: Where) -> Precision:
        if where.on_gpu:
            where.say("bfloat16 autocast (Paddle's, O1)")
            return MixedPrecision("bfloat16")
        isa = cpu_bfloat16()
        why = (f"this CPU ({cpu_name()}) has no bfloat16 arithmetic (AMX or AVX512-BF16)" if isa is None else
               "its convolutions run on Paddle's kernels (train.conv=paddle), not the oneDNN operator"
               if not where.onednn else _bfloat16_fails())
        if why:
            where.say(f"float32 (train.amp=bfloat16: {why})")
            return FLOAT32
        where.say(f"bfloat16 convolutions on {isa} (oneDNN, float32 sums; bfloat16 activations between the layers of "
                  f"channels-last models; weights, Adam, BatchNorm statistics, dense layers and losses float32)")
        return CPUBFloat16(isa)


def make_precision(amp: str, on_gpu: bool = False, onednn: bool = True, note=None) -> Precision:
    """The policy of train.amp for this machine (PRECISIONS[amp].make); note(text) is told what runs in
    which precision (the trainer's first line shows it), when that is not plain float32 as asked."""
    return PRECISIONS[amp].make(Where(on_gpu, onednn, note))
