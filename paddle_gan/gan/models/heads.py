"""How a class-conditional D uses the label (model.d_cond), on the features any Discriminator
offers (layers.py): its output is [N, 1 + K], the adversarial logit and K class logits (K = 0
unless the head classifies).

- projection (Miyato & Koyama 2018): logit = D's logit + <embed(label), features>.
- acgan (Odena et al. 2017): D's logit, and a class head on the same features; the label is only
  a target (objective.py's class terms).
"""
from __future__ import annotations

import paddle
from paddle import nn

from ...registry import Registry

HEADS = Registry("D head", chooser="model.d_cond")  # model.d_cond -> the head; .classifies: its class losses apply


@HEADS.register("projection")
class ProjectionDiscriminator(nn.Layer):
    classifies = False

    def __init__(self, D, num_classes: int):
        super().__init__()
        self.D = D
        self.embed = nn.Embedding(num_classes, D.feature_dim)

    def forward(self, x, y):
        h = self.D.features(x)
        return self.D.logit(h) + (self.embed(y) * h.reshape([h.shape[0], -1])).sum(axis=1, keepdim=True)


@HEADS.register("acgan")
class ACGANDiscriminator(nn.Layer):
    classifies = True

    def __init__(self, D, num_classes: int):
        super().__init__()
        self.D = D
        self.classes = nn.Linear(D.feature_dim, num_classes)

    def forward(self, x, y=None):
        """[N, 1 + num_classes]: the logit, then the class logits."""
        h = self.D.features(x)
        return paddle.concat([self.D.logit(h), self.classes(h.reshape([h.shape[0], -1]))], axis=1)

