"""Adaptive augmentation (train.ada_target; Karras et al. 2020, StyleGAN2-ADA): every image D sees is
augmented with probability p by each of the differentiable policies of augment.py (train.diffaug's,
or all of them), and p follows D's overfitting: every train.ada_interval D updates, r_t = mean
sign(D(x)) over the real images since the last adjustment; p rises by (images seen) / (train.ada_kimg
x 1000) if r_t > target, else falls by as much, within [0, 1]. p is logged (GAN/ada_p) and saved in
the checkpoint with the sums it is adjusted from, so a resume continues it exactly. The masks come
from Paddle's RNG, which the trainer seeds per step.

of(cfg) is what the objective applies to every image D sees: this, DiffAugment (train.diffaug alone),
or nothing.
"""
from __future__ import annotations

import paddle

from ..registry import Key, declare
from . import augment

declare("train", "ada",
        ada_target=Key(0.0, "adaptive augmentation (StyleGAN2-ADA): the target of mean sign(D(real)) (0.6 in the "
                            "paper; 0 = off); its policies: train.diffaug's, or all", low=0, high=1),
        ada_kimg=Key(100, "thousands of images over which p can go from 0 to 1 (the paper: 500, for runs of "
                          "millions of images)", low=1, high=10 ** 6),
        ada_interval=Key(4, "D updates between adjustments of p", low=1, high=10 ** 6))


class AdaptiveAugment:
    logged = ("ada_p",)  # what train_step reports of it (metrics log and VisualDL: GAN/ada_p)

    def __init__(self, names: list[str], target: float, kimg: int, interval: int):
        self.names, self.target, self.kimg, self.interval = names, target, kimg, interval
        self.fns = [augment.AUGMENTS[n] for n in names]
        self.p, self.signs, self.seen, self.updates = 0.0, 0.0, 0, 0
        self._pending = []  # sign sums of the D updates since the last adjustment (read once per interval)

    def __call__(self, x):
        if self.p <= 0:
            return x
        for fn in self.fns:  # each image on its own: the policy's output where its coin says so
            keep = (paddle.rand([x.shape[0], 1, 1, 1]) < self.p).astype(x.dtype)
            x = x + keep * (fn(x) - x)
        return x

    def observe(self, logit_real) -> None:
        """After every D update: D's logits for the real images it judged."""
        self._pending.append(paddle.sign(logit_real.detach()).sum())
        self.seen += logit_real.shape[0]
        self.updates += 1
        if self.updates % self.interval == 0:
            self.signs += float(paddle.add_n(self._pending))
            self._pending = []
            adjust = self.seen / (self.kimg * 1000.0)
            self.p = min(1.0, max(0.0, self.p + (adjust if self.signs / self.seen > self.target else -adjust)))
            self.signs, self.seen = 0.0, 0

    def values(self) -> dict:
        return {"ada_p": self.p}

    def state_dict(self) -> dict:
        # (adjustments happen every `interval` D updates; a checkpoint between two keeps the partial sums)
        pending = float(paddle.add_n(self._pending)) if self._pending else 0.0
        return {"p": self.p, "signs": self.signs + pending, "seen": self.seen, "updates": self.updates}

    def set_state_dict(self, state: dict) -> None:
        self.p, self.signs = float(state["p"]), float(state["signs"])
        self.seen, self.updates, self._pending = int(state["seen"]), int(state["updates"]), []


def of(cfg):
    """The augmentation of every image D sees: adaptive (train.ada_target), DiffAugment (train.diffaug),
    or None."""
    t = cfg.train
    if t.ada_target:
        names = [p.strip() for p in t.diffaug.split(",") if p.strip()] or list(augment.AUGMENTS)
        return AdaptiveAugment(names, t.ada_target, t.ada_kimg, t.ada_interval)
    return augment.of(t.diffaug)
