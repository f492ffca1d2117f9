"""The metrics an evaluation can compute (train.eval_metrics, tools/eval.py --metrics), each a plain
function over the real and the generated features registered with @metric: its name, the scores it
gives, which way they are better and the panels curves.png draws them in. An evaluation computes
only the metrics asked for; the trainer, tools/eval.py, best/ and curves.png read this registry.

    @metric("fid", scores=("fid",), lower_is_better=True, panels=[("FID (lower is better)", ("fid",))])
    def fid(real: Features, fake: Features) -> dict: ...
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import Registry
from .scores import class_accuracy, fid_from_features, inception_score, kid, knn_scores, kth_neighbour_radii

METRICS = Registry("metric", chooser="train.eval_metrics")
K_PR, K_DC = 3, 5  # the k of the k-NN balls of precision/recall and of density/coverage


@dataclass
class Features:
    """One side of an evaluation: features [N, D], the classifier's probabilities [N, K] (or None),
    for generated images the labels asked of G (or None) and whether the extractor's classifier knows
    those classes; `cache` keeps what a metric derives from a fixed set (the real k-NN radii) between
    evaluations."""
    features: np.ndarray
    probs: np.ndarray | None = None
    labels: np.ndarray | None = None
    num_classes: int = 0
    classifier_knows_labels: bool = False
    seed: int = 0
    cache: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    fn: object  # fn(real: Features, fake: Features) -> {score: value} ({} where it does not apply)
    scores: tuple  # the scores it gives (each logged as <score>_<extractor>)
    lower_is_better: bool
    panels: tuple  # ((title, scores drawn together), ...) of curves.png


def metric(name: str, scores: tuple, lower_is_better: bool, panels: tuple):
    """Register fn(real, fake) as metric `name`."""
    def add(fn):
        METRICS.register(name, Metric(fn, tuple(scores), lower_is_better, tuple(panels)))
        return fn
    return add


def score_metric(score: str) -> str | None:
    """The metric that gives `score` (e.g. precision -> prdc), or None."""
    return next((name for name, m in METRICS.items() if score in m.scores), None)


def lower_is_better(score: str) -> bool:
    return METRICS[score_metric(score)].lower_is_better


def chosen(names: str, also: str = "") -> list[str]:
    """The metric names of a comma-separated list ("" = every registered metric), plus the metric that
    gives score `also` (the one best/ is chosen by), in registry order."""
    wanted = {n.strip() for n in names.split(",") if n.strip()} or set(METRICS)
    if also and score_metric(also):
        wanted.add(score_metric(also))
    return [n for n in METRICS if n in wanted]


@metric("fid", ("fid",), True, [("FID (lower is better)", ("fid",))])
def _fid(real: Features, fake: Features) -> dict:
    return {"fid": fid_from_features(real.features, fake.features)}


@metric("kid", ("kid", "kid_std"), True, [("KID (lower is better)", ("kid",))])
def _kid(real: Features, fake: Features) -> dict:
    return kid(real.features, fake.features, 100, 1000, seed=fake.seed)


@metric("is", ("is", "is_std"), False, [("IS (higher is better)", ("is",))])
def _inception_score(real: Features, fake: Features) -> dict:
    return inception_score(fake.probs, splits=10) if fake.probs is not None else {}


@metric("prdc", ("precision", "recall", "density", "coverage"), False,
        [("precision / recall", ("precision", "recall")), ("density / coverage", ("density", "coverage"))])
def _prdc(real: Features, fake: Features) -> dict:
    if "radii" not in real.cache:  # the real set is the same at every evaluation of a run: its radii once
        real.cache["radii"] = kth_neighbour_radii(real.features, {K_PR, K_DC})
    return knn_scores(real.features, fake.features, k_pr=K_PR, k_dc=K_DC, real_radii=real.cache["radii"])


@metric("class_acc", ("class_acc", "class_acc_per_class"), False, [("class accuracy", ("class_acc",))])
def _class_acc(real: Features, fake: Features) -> dict:
    """A conditional G's images classified as the class asked for, by an extractor whose classifier
    knows those classes (the LeNet of the dataset); nothing otherwise."""
    if fake.labels is None or fake.probs is None or not fake.classifier_knows_labels:
        return {}
    return class_accuracy(fake.probs, fake.labels, fake.num_classes)
