"""What the GAN step optimises, as a list of terms (train.loss and its penalties, the class losses).

A term is one small object: its name (its key in the step's result, the metrics log, VisualDL's
GAN/<name> and curves.png), the network it updates (D or G), whether it needs D's second derivatives,
how often it applies (`every`: on every k-th update of its network, weighted by k: lazy
regularisation) and how it is computed from what D said about a batch (Judged). step.train_step sums
a network's terms in list order; the log, VisualDL and the plots read TERMS. A new term is one class
here and one line in Objective.of.
"""
from __future__ import annotations

from dataclasses import dataclass

import paddle.nn.functional as F

from .losses import DEFAULT, LOSSES, AdversarialLoss, gradient_penalty, input_gradient_norms, interpolates, r1_penalty
from . import augment
from .models.heads import HEADS


@dataclass
class Judged:
    """One batch as D saw it: the images (fake detached in the D step), their labels (None when
    unconditional) and D's outputs [N, 1 + K] (column 0 the adversarial logit, then K class logits).
    judge(x, y): D's output for other images, augmented as these were (train.diffaug)."""
    judge: object
    real: object
    fake: object
    y: object
    y_fake: object
    out_real: object
    out_fake: object

    @staticmethod
    def logit(out):
        return out if out.shape[1] == 1 else out[:, :1]

    @property
    def logit_real(self):
        return self.logit(self.out_real)

    @property
    def logit_fake(self):
        return self.logit(self.out_fake)


class Term:
    name: str = ""  # its key in the step's result and the log; "" = part of the total only
    updates: str = "D"  # "D" or "G"
    second_derivatives: bool = False  # penalises D's input gradient
    real_input_gradient: bool = False  # needs the real images as leaves whose gradient D can give
    every: int = 1

    def __call__(self, b: Judged):
        raise NotImplementedError


class AdversarialD(Term):
    def __init__(self, loss: AdversarialLoss):
        self.loss = loss

    def __call__(self, b):
        return self.loss.d(b.logit_real, b.logit_fake)


class AdversarialG(Term):
    updates = "G"

    def __init__(self, loss: AdversarialLoss):
        self.loss = loss

    def __call__(self, b):
        return self.loss.g(b.logit_fake)


class GradientPenalty(Term):
    """WGAN-GP: weight * (|grad D(x_hat)| - 1)^2 on random points between real and fake."""
    name, second_derivatives = "gp", True

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, b):
        x_hat = interpolates(b.real, b.fake)
        return gradient_penalty(input_gradient_norms(Judged.logit(b.judge(x_hat, b.y)), x_hat), self.weight)


class R1(Term):
    """R1: gamma / 2 * |grad D(x)|^2 on real images (Mescheder 2018)."""
    name, second_derivatives, real_input_gradient = "r1", True, True

    def __init__(self, gamma: float, every: int = 1):
        self.gamma, self.every = gamma, every

    def __call__(self, b):
        return r1_penalty(input_gradient_norms(b.logit_real, b.real), self.gamma)


def _weighted(value, weight: float):
    return value if weight == 1.0 else value * weight


class ClassLossD(Term):
    """ACGAN: D's classifier learns the class of real images and (fakes=True, as Odena 2017) of G's
    images as the class they were asked to be; train.class_weight_D times that."""
    name = "class_D"

    def __init__(self, weight: float = 1.0, fakes: bool = True):
        self.weight, self.fakes = weight, fakes

    def __call__(self, b):
        loss = F.cross_entropy(b.out_real[:, 1:], b.y)
        if self.fakes:
            loss = loss + F.cross_entropy(b.out_fake[:, 1:], b.y_fake)
        return _weighted(loss, self.weight)


class ClassLossG(Term):
    """ACGAN: G is rewarded when D's classifier finds the class it was asked for (train.class_weight_G)."""
    name, updates = "class_G", "G"

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def __call__(self, b):
        return _weighted(F.cross_entropy(b.out_fake[:, 1:], b.y_fake), self.weight)


TERMS = (GradientPenalty, R1, ClassLossD, ClassLossG)  # every named term: the log and the plots know them all
# what train_step returns besides its terms, with their VisualDL tags. VisualDL sorts tag groups
# alphabetically and opens the first: "GAN" comes before lr, perf and score.
STEP_TAGS = {"loss_D": "GAN/loss_D", "loss_G": "GAN/loss_G", "D_real": "GAN/D(x)", "D_fake": "GAN/D(G(z))"}
TAGS = {**STEP_TAGS, **{T.name: f"GAN/{T.name}" for T in TERMS}}
PANELS = [("losses", ["loss_D", "loss_G"] + [T.name for T in TERMS]), ("D output", ["D_real", "D_fake"])]  # curves.png


@dataclass(frozen=True)
class Objective:
    """The terms of a run, in the order they are summed, the adversarial loss behind D_real/D_fake,
    and the augmentation of every image D sees (train.diffaug; None = none)."""
    loss: AdversarialLoss
    terms: tuple
    augment: object = None

    @classmethod
    def of(cls, cfg) -> "Objective":
        t, m = cfg.train, cfg.model
        loss = LOSSES[t.loss]
        terms = [AdversarialD(loss)]
        terms += [GradientPenalty(t.gp_lambda)] if loss.gradient_penalty else []
        terms += [R1(t.r1_gamma, t.r1_every)] if t.r1_gamma else []
        classifies = m.num_classes > 0 and HEADS[m.d_cond].classifies
        terms += [ClassLossD(t.class_weight_D, t.class_fakes)] if classifies else []
        terms += [AdversarialG(loss)] + ([ClassLossG(t.class_weight_G)] if classifies else [])
        return cls(loss, tuple(terms), augment.of(t.diffaug))

    def of_network(self, which: str) -> tuple:
        return tuple(t for t in self.terms if t.updates == which)

    @property
    def second_derivatives(self) -> bool:
        """Whether D must be twice differentiable (a penalty on its input gradient)."""
        return any(t.second_derivatives for t in self.terms)


NONSATURATING = Objective(DEFAULT, (AdversarialD(DEFAULT), AdversarialG(DEFAULT)))  # train_step's default
