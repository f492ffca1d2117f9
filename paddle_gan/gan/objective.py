"""What the GAN step optimises, as a list of terms (train.loss and its penalties, the class losses).

A term is one class registered with @term: its name (its key in the step's result, the metrics log,
VisualDL's GAN/<name> and curves.png), the network it updates (D or G), whether it needs D's second
derivatives, how often it applies (`every`: on every k-th update of its network, weighted by k:
lazy regularisation), its config keys (train.<key>, declared by @term), when it applies and how it
is built from a config (`build`), and how it is computed from what D said about a batch (Judged; a
term on G's side also reads G itself, z and the labels asked of G). A term that keeps state between
steps (a running mean) has state_dict / set_state_dict: the checkpoint keeps it. step.train_step sums
a network's terms in registration order (the adversarial ones here, then terms.py's penalties and
class losses: gan/__init__ imports them in that order); the log, VisualDL and the plots read TERMS.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import CHECKS, Registry, declare
from . import ada
from .losses import DEFAULT, LOSSES, AdversarialLoss
from .models import MODELS

TERMS = Registry("objective term")  # every term, in the order a network's terms are summed


@dataclass
class Judged:
    """One batch as D saw it: the images (fake detached in the D step), their labels (None when
    unconditional) and D's outputs [N, 1 + K] (column 0 the adversarial logit, then K class logits).
    judge(x, y): D's output for other images, augmented as these were (train.diffaug). In the G step
    also G, the noise z the fakes came from, and `step` (completed G updates), for terms that run G
    again (path length regularisation)."""
    judge: object
    real: object
    fake: object
    y: object
    y_fake: object
    out_real: object
    out_fake: object
    G: object = None
    z: object = None
    step: int = 0

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
    keys: dict = {}  # its config keys: train.<key>

    @classmethod
    def build(cls, cfg) -> list:
        """The instances of this term a run of config cfg sums ([] where it does not apply)."""
        return []

    def __call__(self, b: Judged):
        raise NotImplementedError

    def switched_on_by(self, cfg) -> str:
        """The setting that put this term in the objective, as an error message names it."""
        return type(self).__name__

    def state_dict(self) -> dict:
        """What a resume needs to continue the term exactly (JSON-ready; in the checkpoint's state.json)."""
        return {}

    def set_state_dict(self, state: dict) -> None:
        pass


def term(cls):
    """Register a Term class: in TERMS, its keys in the train section, its check (if any) with the config's."""
    TERMS.register(cls.__name__, cls)
    declare("train", cls.__name__, **cls.keys)
    if "check" in vars(cls):
        CHECKS.register(f"{cls.__name__}.check", cls.check)
    return cls


class _Adversarial(Term):
    """train.loss's part for one network (always on)."""

    def __init__(self, loss: AdversarialLoss):
        self.loss = loss

    @classmethod
    def build(cls, cfg):
        return [cls(LOSSES[cfg.train.loss])]


@term
class AdversarialD(_Adversarial):
    def __call__(self, b):
        return self.loss.d(b.logit_real, b.logit_fake)


@term
class AdversarialG(_Adversarial):
    updates = "G"

    def __call__(self, b):
        return self.loss.g(b.logit_fake)


def _second_derivatives(cfg, need) -> None:
    """A penalty on D's input gradient needs D twice differentiable; the model says what breaks that."""
    broken = MODELS[cfg.model.name].breaks_second_derivatives(cfg.model)
    penalised = [t for T in TERMS.values() for t in T.build(cfg) if t.second_derivatives]
    need(not (penalised and broken), broken or "", f"{', '.join(t.switched_on_by(cfg) for t in penalised)} penalises "
         f"D's input gradient, which needs D's second derivatives, and Paddle's dropout has none: set {broken}=0")


CHECKS.register("objective: second derivatives", _second_derivatives)

# what train_step returns besides its terms, with their VisualDL tags. VisualDL sorts tag groups
# alphabetically and opens the first: "GAN" comes before lr, perf and score.
STEP_TAGS = {"loss_D": "GAN/loss_D", "loss_G": "GAN/loss_G", "D_real": "GAN/D(x)", "D_fake": "GAN/D(G(z))"}


def tags() -> dict:
    """metrics-log key -> VisualDL tag of everything a step returns (every registered term's name, the
    adaptive augmentation's p)."""
    return {**STEP_TAGS, **{T.name: f"GAN/{T.name}" for T in TERMS.values() if T.name},
            **{k: f"GAN/{k}" for k in ada.AdaptiveAugment.logged}}


def panels() -> list:
    """curves.png's training panels: the losses (every named term) and D's outputs."""
    return [("losses", ["loss_D", "loss_G"] + [T.name for T in TERMS.values() if T.name]),
            ("D output", ["D_real", "D_fake"])]


@dataclass(frozen=True)
class Objective:
    """The terms of a run, in the order they are summed, the adversarial loss behind D_real/D_fake,
    and the augmentation of every image D sees (train.diffaug; None = none)."""
    loss: AdversarialLoss
    terms: tuple
    augment: object = None

    @classmethod
    def of(cls, cfg) -> "Objective":
        terms = tuple(t for T in TERMS.values() for t in T.build(cfg))
        return cls(LOSSES[cfg.train.loss], terms, ada.of(cfg))

    def of_network(self, which: str) -> tuple:
        return tuple(t for t in self.terms if t.updates == which)

    @property
    def second_derivatives(self) -> bool:
        """Whether D must be twice differentiable (a penalty on its input gradient)."""
        return any(t.second_derivatives for t in self.terms)

    def observe(self, b: Judged) -> None:
        """After every D update: an augmentation that adapts (ada.py) sees D's logits for the reals."""
        if hasattr(self.augment, "observe"):
            self.augment.observe(b.logit_real)

    def values(self) -> dict:
        """What the step reports besides its terms (the adaptive augmentation's p)."""
        return self.augment.values() if hasattr(self.augment, "values") else {}

    def state_dict(self) -> dict:
        """The state of the terms (and of an augmentation) that keep one, by class name."""
        parts = list(self.terms) + ([self.augment] if hasattr(self.augment, "state_dict") else [])
        return {type(t).__name__: s for t in parts if (s := t.state_dict())}

    def set_state_dict(self, state: dict) -> None:
        for t in list(self.terms) + ([self.augment] if hasattr(self.augment, "state_dict") else []):
            if type(t).__name__ in state:
                t.set_state_dict(state[type(t).__name__])


NONSATURATING = Objective(DEFAULT, (AdversarialD(DEFAULT), AdversarialG(DEFAULT)))  # train_step's default
