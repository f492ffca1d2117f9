"""The EMA generator (train.ema): an exponential moving average of G's weights, updated after every
G update. Averaging over the last ~1/(1 - decay) updates smooths out the oscillation of GAN
training, so the averaged G usually scores better and degrades less late in a run than the raw one
(Yazici et al. 2019).

BatchNorm: the running statistics of G describe G's activations, not those of the averaged weights,
and copied over (as StyleGAN2-ADA does for its BN-free G) they made the averaged DCGAN generator
worse than the raw one (measured, 10k samples: raw G 10.67, EMA with G's statistics 11.88). So
before G_ema is used (sample grids, scores, checkpoints) its own statistics are measured on a fixed
batch of noise ("standing statistics", as BigGAN does): with them the same EMA weights scored 9.91.

The decay after G update number `step` is min(decay, (1 + step) / (10 + step)), as TensorFlow's
ExponentialMovingAverage with num_updates does: early on the average follows G closely instead of
remembering the random initial weights for thousands of steps. It depends on the step alone, so a
resumed run continues the average exactly.
"""
from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from ..registry import CHECKS, Key, declare

declare("train", "ema", ema=Key(0.0, "decay of an exponential moving average of G's weights (e.g. 0.999; 0 = off): "
                                     "samples, scores and best/ use it"))
CHECKS.register("ema", lambda cfg, need: need(0 <= cfg.train.ema < 1, "train.ema",
                                              f"must be in [0, 1) (0 = off), got {cfg.train.ema}"))


def statistics_layers(G) -> list:
    """The layers whose running statistics G_ema measures for itself: what G says (models/layers.py
    Generator.statistics_layers), or every BatchNorm of a plain Layer."""
    if hasattr(G, "statistics_layers"):
        return G.statistics_layers()
    return [m for m in G.sublayers() if isinstance(m, nn.layer.norm._BatchNormBase)]


def decay_at(decay: float, step: int) -> float:
    return min(decay, (1.0 + step) / (10.0 + step))


class EMA:
    """Keeps G_ema (a second generator of the same architecture, in eval mode) as the average of G."""

    def __init__(self, G_ema, decay: float, stats_z: np.ndarray | None = None, stats_labels: np.ndarray | None = None):
        """stats_z (and stats_labels): the fixed batch that G_ema's BatchNorm statistics are measured on."""
        self.G, self.decay = G_ema, decay
        self.stats_z, self.stats_labels = stats_z, stats_labels
        self.fresh = True  # G_ema's statistics are its own (no update since they were measured)
        self.G.eval()
        for p in self.G.parameters():
            p.stop_gradient = True

    def ready(self):
        """G_ema with statistics of its own weights (measured now if it changed since), for use."""
        if not self.fresh and self.stats_z is not None:
            self.standing_stats(self.stats_z, self.stats_labels)
        self.fresh = True
        return self.G

    @paddle.no_grad()
    def update(self, G, step: int) -> None:
        """Fold G's weights after G update number `step` into the average; copy its BN statistics."""
        d = decay_at(self.decay, step)
        for p_ema, p in zip(self.G.parameters(), G.parameters()):
            if p.trainable:
                paddle.assign(p_ema * d + p * (1.0 - d), output=p_ema)
            else:  # BatchNorm running mean / variance (Paddle keeps them as non-trainable parameters)
                paddle.assign(p, output=p_ema)
        for b_ema, b in zip(self.G.buffers(), G.buffers()):
            paddle.assign(b, output=b_ema)
        self.fresh = False

    @paddle.no_grad()
    def standing_stats(self, z: np.ndarray, labels: np.ndarray | None = None, chunk: int = 256) -> None:
        """Set G_ema's BatchNorm running statistics to those of its own activations on z (and the
        labels, for a conditional G): the average over chunks of `chunk` samples, as PyTorch's
        momentum=None does. Deterministic for a given z, so a resumed run measures the same."""
        norms = statistics_layers(self.G)
        if not norms:
            return
        saved = [m._momentum for m in norms]
        self.G.train()
        try:
            for i, start in enumerate(range(0, len(z), chunk)):
                for m in norms:  # running = momentum * running + (1 - momentum) * batch: a running mean
                    m._momentum = i / (i + 1)
                args = [paddle.to_tensor(z[start:start + chunk])]
                if labels is not None:
                    args.append(paddle.to_tensor(labels[start:start + chunk]))
                self.G(*args)
        finally:
            for m, momentum in zip(norms, saved):
                m._momentum = momentum
            self.G.eval()

    @paddle.no_grad()
    def reset(self, G) -> None:
        """Start the average at G's current weights (a new run, or EMA switched on mid-run)."""
        for target, source in ((self.G.parameters(), G.parameters()), (self.G.buffers(), G.buffers())):
            for t, s in zip(target, source):
                paddle.assign(s, output=t)
        self.fresh = False
