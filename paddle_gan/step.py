"""The GAN step: train.n_critic D updates, then one G update, as a pure function of the models,
optimizers and inputs (train_step), for any objective of losses.py; with the precision policy
(float32, or train.amp's mixed precision) and the optimizers it updates. The training loop
(train.py) only decides when to call it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F

from .distributed import unwrap
from .losses import LOSSES, bce, gradient_penalty, input_gradient_norms, interpolates, r1_penalty, shown

_bce = bce  # the non-saturating loss's BCE-with-logits (kept under its old name for the step's tests)


@dataclass(frozen=True)
class Objective:
    """What the step optimises: train.loss with its penalties, and ACGAN's class loss."""
    loss: str = "nonsaturating"  # a key of losses.LOSSES
    gp_lambda: float = 10.0  # wgan_gp's gradient penalty weight
    r1_gamma: float = 0.0  # R1 penalty on real images (0 = off), any loss
    acgan: bool = False  # D also classifies (model.d_cond = acgan): cross-entropy for D on both, for G on fakes

    @classmethod
    def of(cls, cfg) -> "Objective":
        return cls(cfg.train.loss, cfg.train.gp_lambda, cfg.train.r1_gamma,
                   cfg.model.num_classes > 0 and cfg.model.d_cond == "acgan")

    @property
    def second_derivatives(self) -> bool:
        """Whether D must be twice differentiable (a penalty on its input gradient)."""
        return self.loss == "wgan_gp" or self.r1_gamma > 0


NONSATURATING = Objective()


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


def _generate(G, z, y):
    return G(z) if y is None else G(z, y)


def _judge(D, x, y):
    """(D's logits, its class logits or None): a conditional D takes the label, an ACGAN one also
    returns class logits."""
    if y is None:
        return D(x), None
    out = D(x, y)
    return out if isinstance(out, tuple) else (out, None)


def _leaf(x):
    """x as a new leaf whose input gradient can be taken (for R1, before D sees it)."""
    x = x.detach()
    x.stop_gradient = False
    return x


def _check_twice_differentiable(D) -> None:
    """The oneDNN operator has no second derivative: under a penalty on D's input gradient it would
    leave the penalty's gradient out, silently (measured: D's weights got none). Refuse instead."""
    from .ops import OneDNNConv2D, OneDNNConv2DTranspose

    if any(isinstance(layer, (OneDNNConv2D, OneDNNConv2DTranspose)) for layer in unwrap(D).sublayers()):
        raise ValueError("a gradient penalty needs D's second derivatives, which paddle_gan.ops' oneDNN "
                         "convolutions do not compute: keep D on Paddle's convolutions (train.faster does)")


def _each(x, n: int) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x] * n if x is None else [x]


def train_step(G, D, opt_G, opt_D, real, z, precision: Float32 = FLOAT32, objective: Objective = NONSATURATING,
               y=None, y_fake=None) -> dict[str, float]:
    """D updates, then one G update. `real`, `z` (and for a conditional model the labels `y` of the
    real images and `y_fake` asked of G) are one batch each, or lists of train.n_critic batches: one
    D update per batch, each on its own real images and noise. The G update is taken on the fake
    batch of the last D update, through the D that update produced. Returns plain floats: loss_D,
    D_real, D_fake (and the penalties) as means over the D updates, loss_G.
    """
    if objective.second_derivatives:
        _check_twice_differentiable(D)
    reals, zs = _each(real, 1), _each(z, 1)
    ys, ys_fake = _each(y, len(reals)), _each(y_fake, len(reals))
    d_loss, g_loss = LOSSES[objective.loss]
    sums: dict[str, float] = {}
    for real, z, y, y_fake in zip(reals, zs, ys, ys_fake):
        # ---- D step: real images against fake ones; the fake batch is detached, so G gets no gradient ----
        with precision.autocast():
            fake = _generate(G, z, y_fake)
            if objective.r1_gamma:
                real = _leaf(real)
            logits_real, classes_real = _judge(D, real, y)
            logits_fake, classes_fake = _judge(D, fake.detach(), y_fake)
            loss_D = d_loss(logits_real, logits_fake)
            terms = {}
            if objective.loss == "wgan_gp":  # a second forward, on points between real and fake
                x_hat = interpolates(real, fake.detach())
                terms["gp"] = gradient_penalty(input_gradient_norms(_judge(D, x_hat, y)[0], x_hat),
                                               objective.gp_lambda)
            if objective.r1_gamma:
                terms["r1"] = r1_penalty(input_gradient_norms(logits_real, real), objective.r1_gamma)
            if objective.acgan:
                terms["class_D"] = F.cross_entropy(classes_real, y) + F.cross_entropy(classes_fake, y_fake)
            for term in terms.values():
                loss_D = loss_D + term
        opt_D.clear_grad()
        precision.backward(loss_D, "D")
        precision.step(opt_D, "D")
        for k, v in {"loss_D": loss_D, "D_real": shown(objective.loss, logits_real),
                     "D_fake": shown(objective.loss, logits_fake), **terms}.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    # ---- G step: its fake batch judged by the just-updated D ----
    with _frozen(D):  # gradients flow through D to G, but D's own weight gradients are not computed
        with precision.autocast():
            logits, classes = _judge(unwrap(D), fake, y_fake)  # (no DataParallel sync for D: no gradients here)
            loss_G = g_loss(logits)
            if objective.acgan:
                class_G = F.cross_entropy(classes, y_fake)
                loss_G = loss_G + class_G
        opt_G.clear_grad()
        precision.backward(loss_G, "G")
    precision.step(opt_G, "G")
    out = {k: v / len(reals) for k, v in sums.items()}
    out["loss_G"] = float(loss_G)
    if objective.acgan:
        out["class_G"] = float(class_G)
    return out


def make_optimizers(cfg, G, D):
    """Two Adam optimizers, one for G (cfg.opt_G) and one for D (cfg.opt_D)."""
    opt_G = paddle.optimizer.Adam(learning_rate=cfg.opt_G.lr, beta1=cfg.opt_G.beta1, beta2=cfg.opt_G.beta2,
                                  parameters=G.parameters())
    opt_D = paddle.optimizer.Adam(learning_rate=cfg.opt_D.lr, beta1=cfg.opt_D.beta1, beta2=cfg.opt_D.beta2,
                                  parameters=D.parameters())
    return opt_G, opt_D
