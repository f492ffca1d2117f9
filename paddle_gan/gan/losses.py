"""GAN objectives (train.loss) and the gradient penalties, as plain functions of D's outputs.

    nonsaturating  D: -log s(D(x)) - log(1 - s(D(G(z))))     G: -log s(D(G(z)))    (Goodfellow 2014)
    hinge          D: relu(1 - D(x)) + relu(1 + D(G(z)))      G: -D(G(z))           (Lim & Ye 2017; SNGAN)
    wgan_gp        D: D(G(z)) - D(x) + gp_lambda * (|grad D(x_hat)| - 1)^2,
                   x_hat on random lines between real and fake   G: -D(G(z))      (Gulrajani 2017)
    lsgan          D: (D(x) - 1)^2 / 2 + D(G(z))^2 / 2        G: (D(G(z)) - 1)^2 / 2  (Mao 2017, a=0, b=c=1)
    r1 (any loss)  D: + r1_gamma / 2 * |grad D(x)|^2 on real images                   (Mescheder 2018)

s is the sigmoid; every term is a mean over the batch. D's outputs are raw (logits); the
non-saturating loss applies the sigmoid inside a stable BCE-with-logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import paddle
import paddle.nn.functional as F

from .. import ops
from ..registry import Registry

LOSSES = Registry("loss", chooser="train.loss")  # train.loss -> its AdversarialLoss


def bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, paddle.full_like(logits, target))


def _d_nonsaturating(real, fake):
    return bce(real, 1.0) + bce(fake, 0.0)


def _g_nonsaturating(fake):
    return bce(fake, 1.0)


def _d_hinge(real, fake):
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _d_wasserstein(real, fake):
    return fake.mean() - real.mean()


def _g_minus_mean(fake):  # hinge and WGAN: G raises D's score of its images
    return -fake.mean()


def _d_least_squares(real, fake):
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()


def _g_least_squares(fake):
    return 0.5 * ((fake - 1.0) ** 2).mean()


def _probability(logits):  # the non-saturating D is a classifier: show its mean probability
    return F.sigmoid(logits).mean()


def _raw(logits):  # the others' D is a critic: show its mean raw score
    return logits.mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """One train.loss: D's loss of (D(x), D(G(z))), G's loss of D(G(z)), what the log shows as D(x)
    and D(G(z)) (logged), and whether it comes with a gradient penalty on interpolates (objective.py)."""
    d: Callable
    g: Callable
    logged: Callable = _raw
    gradient_penalty: bool = False


DEFAULT = LOSSES.register("nonsaturating", AdversarialLoss(_d_nonsaturating, _g_nonsaturating, logged=_probability))
LOSSES.register("hinge", AdversarialLoss(_d_hinge, _g_minus_mean))
LOSSES.register("wgan_gp", AdversarialLoss(_d_wasserstein, _g_minus_mean, gradient_penalty=True))
LOSSES.register("lsgan", AdversarialLoss(_d_least_squares, _g_least_squares))


def input_gradient_squares(D_out, x):
    """Per-sample |d sum(D(x)) / dx|_2^2, kept differentiable (create_graph) so that a penalty on it
    reaches D's weights: the gradient of a gradient. x must have been created with stop_gradient
    False before D ran on it. A sum of squares, not Paddle's p_norm: the backward of p_norm took 5 ms
    for a [64, 1024] gradient (30x this), and R1 needs the square anyway (no square root, whose
    derivative is infinite at a zero gradient)."""
    with ops.inputs_only():  # D's weight gradients of this first derivative are not wanted
        (grad,) = paddle.grad(D_out.sum(), x, create_graph=True)
    return grad.reshape([grad.shape[0], -1]).square().sum(axis=1)


def interpolates(real, fake):
    """WGAN-GP's x_hat = e real + (1 - e) fake, e ~ U[0, 1] per sample (Paddle's RNG: fixed by the
    step's seed), as a fresh leaf whose input gradient can be taken."""
    e = paddle.rand([real.shape[0]] + [1] * (len(real.shape) - 1), dtype=real.dtype)
    x_hat = (e * real + (1.0 - e) * fake).detach()
    x_hat.stop_gradient = False
    return x_hat


def gradient_penalty(squares, weight: float):
    """WGAN-GP: weight * mean (|grad D(x_hat)| - 1)^2, from the squared norms."""
    return weight * ((squares.sqrt() - 1.0) ** 2).mean()


def r1_penalty(squares, gamma: float):
    """R1: gamma / 2 * mean |grad D(x)|^2 over real images, from the squared norms."""
    return 0.5 * gamma * squares.mean()
