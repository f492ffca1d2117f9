"""Class-conditional G and D (model.num_classes > 0), wrapped around any model of models.py.

- G (cGAN, Mirza & Osindero 2014, as PyTorch-GAN's cgan): a learned embedding of the label, of size
  num_classes, joined to z. The wrapped G is built for z_dim + num_classes inputs.
- D, projection (Miyato & Koyama 2018): logit = head(features) + <embed(label), features>, with the
  features of D's trunk flattened (for DCGAN the 4x4 map that its last convolution reads).
- D, acgan (Odena et al. 2017): D's logit as before plus a class head on the same features; its
  cross-entropy is added to both losses (step.train_step).
Sample grids of a conditional run show one row per class (class_grid).
"""
from __future__ import annotations

import numpy as np
import paddle
from paddle import nn


class ConditionalGenerator(nn.Layer):
    def __init__(self, G, num_classes: int):
        super().__init__()
        self.G = G
        self.embed = nn.Embedding(num_classes, num_classes)
        self.num_classes = num_classes

    def forward(self, z, y):
        return self.G(paddle.concat([z, self.embed(y)], axis=1))


class ProjectionDiscriminator(nn.Layer):
    def __init__(self, D, num_classes: int):
        super().__init__()
        self.D = D
        self.embed = nn.Embedding(num_classes, D.feature_dim)

    def forward(self, x, y):
        h = self.D.trunk(x)
        return self.D.head(h) + (self.embed(y) * h.reshape([h.shape[0], -1])).sum(axis=1, keepdim=True)


class ACGANDiscriminator(nn.Layer):
    def __init__(self, D, num_classes: int):
        super().__init__()
        self.D = D
        self.classes = nn.Linear(D.feature_dim, num_classes)

    def forward(self, x, y=None):
        """(logit [N, 1], class logits [N, num_classes]); the label is not an input, only a target."""
        h = self.D.trunk(x)
        return self.D.head(h), self.classes(h.reshape([h.shape[0], -1]))


CONDITIONAL_D = {"projection": ProjectionDiscriminator, "acgan": ACGANDiscriminator}  # model.d_cond


def class_grid(num_classes: int, num_samples: int, z: np.ndarray) -> np.ndarray:
    """The z of a grid of one row per class (ceil(num_samples / num_classes) images each) with the
    same z down each column, so that only the class changes: the first vectors of z, tiled."""
    per_row = -(-num_samples // num_classes)
    return np.tile(z[:per_row], (num_classes, 1))


def grid_labels(num_classes: int, n: int) -> np.ndarray:
    """The labels of such a grid of n images: row r (n / num_classes images) is class r."""
    return np.repeat(np.arange(num_classes, dtype=np.int64), n // num_classes)


def balanced_labels(num_classes: int, n: int) -> np.ndarray:
    """n labels, each class equally often (0, 1, ..., C-1, 0, 1, ...): what evaluation asks of G."""
    return np.arange(n, dtype=np.int64) % num_classes
