"""The EMA generator (train.ema): an exponential moving average of G's weights, updated after every
G update, with G's BatchNorm running statistics copied along (as StyleGAN2-ADA does). Averaging
over the last ~1/(1 - decay) updates smooths out the oscillation of GAN training, so the averaged G
usually scores better and degrades less late in a run than the raw one (Yazici et al. 2019).

The decay after G update number `step` is min(decay, (1 + step) / (10 + step)), as TensorFlow's
ExponentialMovingAverage with num_updates does: early on the average follows G closely instead of
remembering the random initial weights for thousands of steps. It depends on the step alone, so a
resumed run continues the average exactly.
"""
from __future__ import annotations

import paddle


def decay_at(decay: float, step: int) -> float:
    return min(decay, (1.0 + step) / (10.0 + step))


class EMA:
    """Keeps G_ema (a second generator of the same architecture, in eval mode) as the average of G."""

    def __init__(self, G_ema, decay: float):
        self.G, self.decay = G_ema, decay
        self.G.eval()
        for p in self.G.parameters():
            p.stop_gradient = True

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

    @paddle.no_grad()
    def reset(self, G) -> None:
        """Start the average at G's current weights (a new run, or EMA switched on mid-run)."""
        for target, source in ((self.G.parameters(), G.parameters()), (self.G.buffers(), G.buffers())):
            for t, s in zip(target, source):
                paddle.assign(s, output=t)
