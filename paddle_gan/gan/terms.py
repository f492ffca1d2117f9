"""The built-in terms beside train.loss's own: the gradient penalties (WGAN-GP's on interpolates, R1
on real images) and a classifying D's class losses (ACGAN). Each is registered with objective.term;
gan/__init__ imports this module after objective.py, so a network's terms are summed in the order
adversarial, penalties, class loss."""
from __future__ import annotations

import paddle.nn.functional as F

from ..registry import Key
from .losses import LOSSES, gradient_penalty, input_gradient_squares, interpolates, r1_penalty
from .models.heads import HEADS
from .objective import Judged, Term, term


def classifies(cfg) -> bool:
    """Whether D classifies (a conditional model whose head is a classifier: its class losses apply)."""
    return cfg.model.num_classes > 0 and HEADS[cfg.model.d_cond].classifies


@term
class GradientPenalty(Term):
    """WGAN-GP: weight * (|grad D(x_hat)| - 1)^2 on random points between real and fake."""
    name, second_derivatives = "gp", True
    keys = {"gp_lambda": Key(10.0, "wgan_gp: weight of the gradient penalty on interpolates (Gulrajani 2017: 10)",
                             low=0, high=1e6)}

    def __init__(self, weight: float):
        self.weight = weight

    @classmethod
    def build(cls, cfg):
        return [cls(cfg.train.gp_lambda)] if LOSSES[cfg.train.loss].gradient_penalty else []

    @staticmethod
    def check(cfg, need):
        t = cfg.train
        need(t.gp_lambda > 0, "train.gp_lambda", "must be > 0")
        need(LOSSES[t.loss].gradient_penalty or t.gp_lambda == GradientPenalty.keys["gp_lambda"].default,
             "train.gp_lambda", f"train.loss={t.loss} has no gradient penalty "
                                f"(only {', '.join(n for n, loss in LOSSES.items() if loss.gradient_penalty)})")

    def switched_on_by(self, cfg) -> str:
        return f"train.loss={cfg.train.loss}"

    def __call__(self, b):
        x_hat = interpolates(b.real, b.fake)
        return gradient_penalty(input_gradient_squares(Judged.logit(b.judge(x_hat, b.y)), x_hat), self.weight)


@term
class R1(Term):
    """R1: gamma / 2 * |grad D(x)|^2 on real images (Mescheder 2018)."""
    name, second_derivatives, real_input_gradient = "r1", True, True
    keys = {"r1_gamma": Key(0.0, "R1 penalty gamma/2 |grad D(x)|^2 on real images, with any loss (0 = off; "
                                 "Mescheder 2018)", low=0, high=1e6),
            "r1_every": Key(1, "lazy R1 (StyleGAN2): the penalty on every k-th D update only, weighted by k (e.g. 16; "
                               "1 = every update)", low=1, high=10 ** 6)}

    def __init__(self, gamma: float, every: int = 1):
        self.gamma, self.every = gamma, every

    @classmethod
    def build(cls, cfg):
        return [cls(cfg.train.r1_gamma, cfg.train.r1_every)] if cfg.train.r1_gamma else []

    @staticmethod
    def check(cfg, need):
        need(cfg.train.r1_every == 1 or cfg.train.r1_gamma > 0, "train.r1_every",
             "needs the R1 penalty on (train.r1_gamma > 0)")

    def switched_on_by(self, cfg) -> str:
        return "train.r1_gamma"

    def __call__(self, b):
        return r1_penalty(input_gradient_squares(b.logit_real, b.real), self.gamma)


def _weighted(value, weight: float):
    return value if weight == 1.0 else value * weight


def _only_when_classifying(cfg, need, key: str, default: float):
    given = getattr(cfg.train, key) != default
    need(not given or classifies(cfg), f"train.{key}", f"only a classifying D has class losses (model.num_classes > 0 "
         f"and model.d_cond {' or '.join(k for k, v in HEADS.items() if v.classifies)})")


@term
class ClassLossD(Term):
    """ACGAN: D's classifier learns the class of real images and (fakes=True, as Odena 2017) of G's
    images as the class they were asked to be; train.class_weight_D times that."""
    name = "class_D"
    keys = {"class_weight_D": Key(1.0, "a classifying D (model.d_cond acgan): weight of D's class loss", low=0,
                                  high=1e6),
            "class_fakes": Key(False, "a classifying D also learns the class asked for from G's images (Odena 2017: "
                                      "true); false: from real images only (measured: class accuracy 91.6 % against "
                                      "65.8 %, README)")}

    def __init__(self, weight: float = 1.0, fakes: bool = True):
        self.weight, self.fakes = weight, fakes

    @classmethod
    def build(cls, cfg):
        return [cls(cfg.train.class_weight_D, cfg.train.class_fakes)] if classifies(cfg) else []

    @staticmethod
    def check(cfg, need):  # (class_fakes does nothing without a classifying D, and every checkpoint records it)
        _only_when_classifying(cfg, need, "class_weight_D", ClassLossD.keys["class_weight_D"].default)

    def __call__(self, b):
        loss = F.cross_entropy(b.out_real[:, 1:], b.y)
        if self.fakes:
            loss = loss + F.cross_entropy(b.out_fake[:, 1:], b.y_fake)
        return _weighted(loss, self.weight)


@term
class ClassLossG(Term):
    """ACGAN: G is rewarded when D's classifier finds the class it was asked for (train.class_weight_G)."""
    name, updates = "class_G", "G"
    keys = {"class_weight_G": Key(1.0, "a classifying D: weight of G's class loss (the reward for drawing the class "
                                       "asked for)", low=0, high=1e6)}

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    @classmethod
    def build(cls, cfg):
        return [cls(cfg.train.class_weight_G)] if classifies(cfg) else []

    @staticmethod
    def check(cfg, need):
        _only_when_classifying(cfg, need, "class_weight_G", ClassLossG.keys["class_weight_G"].default)

    def __call__(self, b):
        return _weighted(F.cross_entropy(b.out_fake[:, 1:], b.y_fake), self.weight)
