"""Path length regularisation (Karras et al. 2020, StyleGAN2), a term on G's side: a fixed-size step in
w should move the image by a fixed amount, whatever the w. Every train.pl_every G updates (lazy,
weighted by that interval), G draws images again from the first 1/train.pl_batch_shrink of the
step's z; the length of the Jacobian-vector product J^T y (y: Gaussian noise over the image, scaled
by 1/sqrt(pixels)) is pulled towards its running mean a (decay train.pl_decay), saved in the
checkpoint: loss = pl_weight * mean (|J^T y| - a)^2. It reads G's styles(z) (w of every layer,
style mixing included, as stylegan2-ada's run_G) and synthesis(ws): a model whose G has them says so
(Model.styled: stylegan2).
"""
from __future__ import annotations

import math

import paddle

from ..distributed import unwrap
from ..registry import Key
from .models import MODELS
from .objective import Term, term


@term
class PathLength(Term):
    name, updates = "pl", "G"
    keys = {"pl_weight": Key(0.0, "path length regularisation's weight (StyleGAN2: 2; 0 = off; a model with a "
                                  "mapping network: stylegan2)", low=0, high=1e4),
            "pl_every": Key(4, "lazy path length regularisation: on every k-th G update, weighted by k (StyleGAN2: 4)",
                            low=1, high=10 ** 6),
            "pl_decay": Key(0.01, "decay of the running mean of path lengths", low=0, high=1),
            "pl_batch_shrink": Key(2, "path lengths are taken on 1/k of G's batch (StyleGAN2: 2)", low=1, high=1024)}

    def __init__(self, weight: float, every: int, decay: float, shrink: int):
        self.weight, self.every, self.decay, self.shrink = weight, every, decay, shrink
        self.mean = 0.0  # the running mean of path lengths (a)

    @classmethod
    def build(cls, cfg):
        t = cfg.train
        return [cls(t.pl_weight, t.pl_every, t.pl_decay, t.pl_batch_shrink)] if t.pl_weight else []

    @staticmethod
    def check(cfg, need):
        styled = [n for n, m in MODELS.items() if m.styled]
        need(not cfg.train.pl_weight or MODELS[cfg.model.name].styled, "train.pl_weight",
             f"path length regularisation needs a G with a mapping network (model.name {' or '.join(styled)}), "
             f"not {cfg.model.name}")

    def lengths(self, G, z):
        """|J^T y| per image of G's images from z (the graph kept, so their penalty reaches G)."""
        ws = G.styles(z)
        img = G.synthesis(ws)
        noise = paddle.randn(img.shape) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = paddle.grad((img * noise).sum(), ws, create_graph=True)
        return grad.square().sum(axis=2).mean(axis=1).sqrt()

    def __call__(self, b):
        n = max(1, b.z.shape[0] // self.shrink)
        lengths = self.lengths(unwrap(b.G), b.z[:n])
        self.mean += self.decay * (float(lengths.mean()) - self.mean)  # (one host read every pl_every steps)
        return self.weight * (lengths - self.mean).square().mean()

    def state_dict(self) -> dict:
        return {"mean": self.mean}

    def set_state_dict(self, state: dict) -> None:
        self.mean = float(state["mean"])
