"""DiffAugment (Zhao et al. 2020; train.diffaug): differentiable augmentations of every image D
sees, real and fake, in the D step and the G step, and the points a gradient penalty is taken at.
G learns through them (each is differentiable in the image, twice where a penalty needs it), so D
cannot overfit a small dataset without G learning the augmented images instead of the real ones.

The policies, as the authors' DiffAugment_pytorch.py defines them, for images in [-1, 1]:
    color        brightness + U(-0.5, 0.5); saturation x U(0, 2) around the per-pixel mean over
                 channels (nothing for grey images); contrast x U(0.5, 1.5) around the image's mean
    translation  a shift of up to 1/8 of the size in each axis, zeros shifted in
    cutout       a square of half the size, at a random place, set to zero
Each draws its randomness per image from Paddle's RNG, which the trainer reseeds before every step
(seeds.step_seed): the augmentations of a step depend on nothing else, so a resumed run repeats them.
Translation is a product with shift matrices (one-hot rows), not an index gather: the same images,
and products have the second derivative that R1 and WGAN-GP need.
"""
from __future__ import annotations

import paddle

from ..registry import Registry

AUGMENTS = Registry("augmentation", chooser="train.diffaug")  # train.diffaug's policies


@AUGMENTS.register("color")
def color(x):
    n = x.shape[0]
    x = x + (paddle.rand([n, 1, 1, 1], dtype=x.dtype) - 0.5)
    mean = x.mean(axis=1, keepdim=True)
    x = (x - mean) * (paddle.rand([n, 1, 1, 1], dtype=x.dtype) * 2.0) + mean
    mean = x.mean(axis=[1, 2, 3], keepdim=True)
    return (x - mean) * (paddle.rand([n, 1, 1, 1], dtype=x.dtype) + 0.5) + mean


def _shift_matrices(n: int, size: int, shift, dtype):
    """[n, size, size]: row i of matrix k is one-hot at i - shift[k] (zero where that is outside)."""
    i = paddle.arange(size, dtype="int64").reshape([1, size, 1])
    j = paddle.arange(size, dtype="int64").reshape([1, 1, size])
    return (j == i - shift.reshape([n, 1, 1])).astype(dtype)


@AUGMENTS.register("translation")
def translation(x, ratio: float = 0.125):
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = paddle.randint(-sh, sh + 1, [n])
    tx = paddle.randint(-sw, sw + 1, [n])
    rows = _shift_matrices(n, h, ty, x.dtype).unsqueeze(1)  # out[i] = x[i - ty]
    cols = _shift_matrices(n, w, tx, x.dtype).unsqueeze(1)
    return paddle.matmul(paddle.matmul(rows, x), cols, transpose_y=True)


@AUGMENTS.register("cutout")
def cutout(x, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's centre, as the authors draw it: 0 .. size + (1 - size % 2) - 1
    cy = paddle.randint(0, h + (1 - ch % 2), [n, 1, 1])
    cx = paddle.randint(0, w + (1 - cw % 2), [n, 1, 1])
    i = paddle.arange(h, dtype="int64").reshape([1, h, 1])
    j = paddle.arange(w, dtype="int64").reshape([1, 1, w])
    inside = ((i >= cy - ch // 2) & (i < cy - ch // 2 + ch) & (j >= cx - cw // 2) & (j < cx - cw // 2 + cw))
    return x * (1.0 - inside.astype(x.dtype)).unsqueeze(1)


class DiffAugment:
    """The policy of train.diffaug: its augmentations in the order given, applied to a batch."""

    def __init__(self, policy: str):
        self.names = [p.strip() for p in policy.split(",") if p.strip()]
        self.fns = [AUGMENTS[name] for name in self.names]

    def __call__(self, x):
        for fn in self.fns:
            x = fn(x)
        return x


def of(policy: str):
    """The augmentation of a train.diffaug policy, or None for ""."""
    return DiffAugment(policy) if policy.strip() else None
