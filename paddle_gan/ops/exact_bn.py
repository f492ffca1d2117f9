"""BatchNorm2D's float32 training step on all cores with Paddle's own numbers (bn_exact.cc).

Paddle's CPU batch_norm kernel and its gradient run on one thread (Eigen): ~7 % of a float32 DCGAN-32
step, the part that did not get faster with a second core. bn_exact.cc computes the same floating-point
operations in the same order (the wheel's Eigen reductions over 8-float packets, its fast square root) per
channel on the OpenMP pool, so a switched model gives the same bits as before: the seed configs keep their
weights. That "same" is a property of the Paddle build (its Eigen, its compiler flags), so `matches_paddle()`
checks it once per process against Paddle's kernel on shapes that take every path (packet and scalar
square roots, aligned and unaligned columns), and use_exact_batchnorm switches nothing where it fails.
PADDLE_GAN_EXACT_BN=0 keeps Paddle's kernel (for A/B measurements: benchmarks/bench_ab.py --a-env).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import build


def exact_batch_norm(x, weight, bias, running_mean, running_var, momentum: float, epsilon: float):
    """Training-mode batch norm of a float32 [N, C, H, W] x on bn_exact.cc: returns y and updates the
    running statistics in place, as F.batch_norm(training=True) does, bit for bit."""
    y, _, _, mean, var = build.load().bn_exact(x, weight, bias, running_mean, running_var, float(epsilon),
                                               float(momentum))
    with paddle.no_grad():
        paddle.assign(mean, output=running_mean)
        paddle.assign(var, output=running_var)
    return y


class ExactBatchNorm2D(nn.BatchNorm2D):
    """BatchNorm2D whose float32 NCHW training step on a CPU in dygraph runs on bn_exact.cc (same numbers as
    Paddle's kernel, on all cores); everything else (eval mode, static graphs, other devices, dtypes and
    layouts, no affine parameters, global statistics, one value per channel) is BatchNorm2D's own.
    Parameters and state-dict keys are BatchNorm2D's."""

    def forward(self, x):
        if (self.training and paddle.in_dynamic_mode() and x.place.is_cpu_place() and x.dtype == paddle.float32
                and x.ndim == 4 and self._data_format == "NCHW" and not self._use_global_stats
                and self.weight is not None and self.bias is not None and x.shape[0] * x.shape[2] * x.shape[3] > 1):
            return exact_batch_norm(x, self.weight, self.bias, self._mean, self._variance, self._momentum,
                                    self._epsilon)
        return super().forward(x)


# (N, C, H, W): whole packets of channels and a scalar tail; columns of 16 and 64 floats (pairs of packets),
# 12 (one packet and scalars), 25 (pairs, a last single packet and a scalar), 49 (aligned and not), 3 and 1
# (shorter than a packet)
_CHECK_SHAPES = ((8, 20, 4, 4), (4, 16, 8, 8), (4, 8, 3, 4), (4, 9, 5, 5), (3, 13, 7, 7), (5, 9, 3, 1), (6, 11, 1, 1))
why_not: str | None = None  # why matches_paddle() said no (None: it said yes, or has not run)


@functools.lru_cache(maxsize=None)
def matches_paddle() -> bool:
    """Whether bn_exact.cc gives Paddle's kernel's bits here (output, running statistics, the gradients of
    x, weight and bias), on random data from numpy's generator (Paddle's random state, name counters and
    grad mode are left alone). False also where the operator cannot run; `why_not` says why."""
    def run(fn, x, w, b, rm, rv, dy):
        x, w, b = (paddle.to_tensor(a, stop_gradient=False) for a in (x, w, b))
        rm, rv = paddle.to_tensor(rm), paddle.to_tensor(rv)
        y = fn(x, w, b, rm, rv)
        grads = paddle.grad([y], [x, w, b], [paddle.to_tensor(dy)])
        return [t.numpy() for t in [y, rm, rv, *grads]]

    global why_not
    rng = np.random.default_rng(0)
    try:
        with paddle.utils.unique_name.guard(), paddle.set_grad_enabled(True):
            for n, c, h, w in _CHECK_SHAPES:
                args = [(rng.standard_normal((n, c, h, w)) * 3 + 1).astype(np.float32)]
                args += [rng.standard_normal(c).astype(np.float32) for _ in range(3)]
                args += [(rng.random(c) + 0.5).astype(np.float32), rng.standard_normal((n, c, h, w)).astype(np.float32)]
                ours = run(lambda *a: exact_batch_norm(*a, 0.9, 1e-5), *args)
                paddles = run(lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.9,
                                                                   epsilon=1e-5), *args)
                if not all(a.shape == p.shape and (a.view(np.uint32) == p.view(np.uint32)).all()
                           for a, p in zip(ours, paddles)):
                    why_not = f"bn_exact.cc differs from Paddle's batch_norm kernel on {[n, c, h, w]}"
                    return False
    except Exception as e:  # the operator cannot be built or run here: Paddle's kernel then
        why_not = f"{type(e).__name__}: {str(e).strip()[:300]}"
        return False
    return True


def use_exact_batchnorm(model) -> int:
    """Switch model's plain NCHW BatchNorm2D layers (in place) to ExactBatchNorm2D where bn_exact.cc
    matches Paddle's kernel here; returns how many (0 where it does not)."""
    layers = [layer for layer in model.sublayers(include_self=True)
              if type(layer) is nn.BatchNorm2D and layer._data_format == "NCHW"]
    if not layers or os.environ.get("PADDLE_GAN_EXACT_BN") == "0" or not matches_paddle():
        return 0
    for layer in layers:
        layer.__class__ = ExactBatchNorm2D
    return len(layers)
