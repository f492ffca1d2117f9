"""The GAN step: one D update, then one G update, as a pure function of the models, optimizers
and inputs (train_step), with the precision policy (float32, or train.amp's mixed precision) and the
optimizers it updates. The training loop (train.py) only decides when to call it.
"""
from __future__ import annotations

import contextlib

import numpy as np
import paddle
import paddle.nn.functional as F

from .distributed import unwrap


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, paddle.full_like(logits, target))


@contextlib.contextmanager
def _frozen(model):
    """Parameters of `model` need no gradient inside the block. In the G step that skips the weight
    gradients of every D layer (about a sixth of a DCGAN step's arithmetic), which the next D step
    would clear unused anyway; G's gradients are computed exactly as before."""
    params = [p for p in model.parameters() if not p.stop_gradient]
    for p in params:
        p.stop_gradient = True
    try:
        yield
    finally:
        for p in params:
            p.stop_gradient = False


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


def make_precision(amp: str) -> Float32:
    return MixedPrecision(amp) if amp else FLOAT32


def train_step(G, D, opt_G, opt_D, real, z, precision: Float32 = FLOAT32) -> dict[str, float]:
    """One D update, then one G update. Returns plain floats."""
    # ---- D step: real -> 1, fake -> 0; the fake batch is detached so G gets no gradient here ----
    with precision.autocast():
        fake = G(z)
        logits_real = D(real)
        logits_fake = D(fake.detach())
        loss_D = _bce(logits_real, 1.0) + _bce(logits_fake, 0.0)
    opt_D.clear_grad()
    precision.backward(loss_D, "D")
    precision.step(opt_D, "D")
    # ---- G step: non-saturating loss (fake -> 1) through the just-updated D ----
    with _frozen(D):  # gradients flow through D to G, but D's own weight gradients are not computed
        with precision.autocast():
            loss_G = _bce(unwrap(D)(fake), 1.0)  # (no DataParallel sync for D: it has no gradients here)
        opt_G.clear_grad()
        precision.backward(loss_G, "G")
    precision.step(opt_G, "G")
    return {"loss_D": float(loss_D), "loss_G": float(loss_G),
            "D_real": float(F.sigmoid(logits_real).mean()), "D_fake": float(F.sigmoid(logits_fake).mean())}


def make_optimizers(cfg, G, D):
    """Two Adam optimizers, one for G (cfg.opt_G) and one for D (cfg.opt_D)."""
    opt_G = paddle.optimizer.Adam(learning_rate=cfg.opt_G.lr, beta1=cfg.opt_G.beta1, beta2=cfg.opt_G.beta2,
                                  parameters=G.parameters())
    opt_D = paddle.optimizer.Adam(learning_rate=cfg.opt_D.lr, beta1=cfg.opt_D.beta1, beta2=cfg.opt_D.beta2,
                                  parameters=D.parameters())
    return opt_G, opt_D
