"""The precision policy of training (train.amp): plain float32, or mixed precision with the loss
scaling it needs; train_step calls it around every forward, backward and optimizer step."""
from __future__ import annotations

import contextlib

import numpy as np
import paddle


class Float32:
    """Plain float32 training: what train_step does when train.amp is off."""

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


class MixedPrecision(Float32):
    """train.amp: forward passes under paddle.amp.auto_cast (O1: matmuls and convolutions in `dtype`,
    numerically sensitive ops in float32); for float16 one GradScaler per optimizer, because G's and
    D's losses differ in scale. bfloat16 has float32's range and needs no scaling. Paddle turns both
    off on CPU (the run stays float32 there), so on CPU this is the same computation as Float32."""

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


FLOAT32 = Float32()


PRECISIONS = {"": Float32, "float16": MixedPrecision, "bfloat16": MixedPrecision}  # train.amp


def make_precision(amp: str) -> Float32:
    return FLOAT32 if not amp else PRECISIONS[amp](amp)
