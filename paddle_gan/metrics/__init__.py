"""Evaluation shared by the trainer (train.eval_every) and tools/eval.py (commands/evaluate.py).

    evaluate(G, cfg, num=10000, seed=0) -> {"fid_lenet_fashion": ..., "kid_lenet_fashion": ..., ...}
    Evaluator(cfg, num, seed, extractor, metrics=["fid"])(G): the same, with the noise drawn and the
    reference features loaded once, for a run that evaluates again and again.

The metrics themselves are registered in catalog.py (METRICS); an evaluation computes those asked for.

Every score is named <score>_<extractor>, so a LeNet-feature FID can never pass for an Inception one.
The reference is the real split the run trained on (or --data), taken through the same loader and
resize as training, so real and generated images reach the extractor the same way. Its features
are cached per (dataset, split, limit, image size, extractor, count) with an atomic write.
Generation and features run on paddle_gan.ops' oneDNN convolutions where they are available
(kernels.for_inference), with Paddle's own as the fallback.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import numpy as np

from .. import progress, seeds
from ..data import DATASETS, DataError, build_dataset, cache_dir, to_float
from ..files import atomic_write
from ..gan.labels import labeling_for
from ..gan.sample import generate
from ..images import to_uint8
from ..registry import CHECKS, Key, Registry, declare
from .catalog import METRICS, Features, chosen, lower_is_better, metric, score_metric
from .scores import (class_accuracy, density_coverage, feature_stats, fid_from_features, frechet_distance,
                     inception_score, kid, knn_scores, kth_neighbour_radii, precision_recall)

__all__ = ["Evaluator", "Features", "METRICS", "EXTRACTORS", "evaluate", "evaluate_images", "make_extractor", "metric",
           "real_features", "scores_from_features", "frechet_distance", "feature_stats", "fid_from_features", "kid",
           "inception_score", "knn_scores", "precision_recall", "density_coverage", "class_accuracy",
           "lower_is_better", "chosen", "score_metric"]

REFERENCE_PROTOCOL = "r2"  # bumped when what is cached changes (r2: the Inception Score's logits without bias)
EXTRACTORS = Registry("extractor", chooser="train.eval_extractor")  # besides auto: lenet where one is trained

declare("train", "metrics",
        eval_every=Key(0, "steps between evaluations (0 = off; the last step is evaluated too): metrics/* and "
                          "checkpoints/best/", low=0, high=10 ** 9),
        eval_samples=Key(2000, "generated and real images per evaluation during training (tools/eval.py defaults to "
                               "10000)", low=10, high=1_000_000),
        inception_weights=Key("", "FID Inception weights (.pdparams, or pytorch-fid's .pth); \"\" = "
                                  "~/.cache/paddle_gan/InceptionV3.pdparams, downloaded once"))


def _check(cfg, need) -> None:
    t = cfg.train
    scores = [s for m in METRICS.values() for s in m.scores if not s.endswith(("_std", "_per_class"))]
    need(score_metric(t.eval_metric) is not None and t.eval_metric in scores, "train.eval_metric",
         f"must be a score of a metric ({', '.join(scores)}), got {t.eval_metric!r}")


CHECKS.register("metrics", _check)


@EXTRACTORS.register("lenet")
def _lenet(dataset: str, inception_weights: str | None):
    from .lenet import LeNetExtractor

    return LeNetExtractor(dataset)


@EXTRACTORS.register("inception")
def _inception(dataset: str, inception_weights: str | None):
    from .inception import InceptionExtractor

    return InceptionExtractor(inception_weights)


def make_extractor(name: str, dataset: str, channels: int, inception_weights: str | None = None,
                   conv: str = "auto"):
    """'lenet' (MNIST-like greyscale data), 'inception' (RGB, or any data), or 'auto' (lenet where
    one is trained for the dataset, else inception); its convolutions as kernels.for_inference(conv)."""
    from ..gan.kernels import for_inference
    from .lenet import SHORT

    if name != "auto" and name not in EXTRACTORS:
        raise DataError(f"extractor {name!r}: choose one of auto, {', '.join(EXTRACTORS)}")
    if name == "auto":
        name = "lenet" if dataset in SHORT and channels == 1 else "inception"
    ex = EXTRACTORS[name](dataset, inception_weights)
    for_inference(ex.model, conv)
    return ex


def _subset(images: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """`num` images drawn without replacement by `rng` (in their stored order), or all if fewer."""
    if num >= len(images):
        return images
    return images[np.sort(rng.choice(len(images), num, replace=False))]


def _cached_features(path: str, num: int):
    """(features, probs) from a reference cache, checked before it is read: at most the size `num`
    rows of Inception features and probabilities take, stored (not compressed: no member can inflate
    beyond what the file holds), float32 arrays of num rows or fewer."""
    if os.path.getsize(path) > num * 4 * (2048 + 1008) + (1 << 16):
        raise ValueError("too big")
    with zipfile.ZipFile(path) as zf:
        if any(i.compress_type != zipfile.ZIP_STORED or i.file_size > i.compress_size + 4096 for i in zf.infolist()):
            raise ValueError("compressed member")
    with np.load(path, allow_pickle=False) as z:
        feats, probs = z["features"], (z["probs"] if "probs" in z.files else None)
    for a in (feats, probs) if probs is not None else (feats,):
        if a.dtype != np.float32 or a.ndim != 2 or len(a) > num:
            raise ValueError("not float32 [N, D]")
    return feats, probs


def real_features(extractor, data_cfg, model_cfg, num: int):
    """(features, probs) of up to `num` real images of the reference split (a fixed subset), cached."""
    # keyed on the extractor's weights too: the features of one Inception file are no reference for another
    key = f"{data_cfg.name}-{data_cfg.split}-{data_cfg.limit}-{model_cfg.img_size}px-{model_cfg.channels}ch-" \
          f"{extractor.name}-{getattr(extractor, 'sha256', 'unknown')[:16]}-{REFERENCE_PROTOCOL}-{num}"
    if DATASETS[data_cfg.name].rooted:  # a folder's contents are part of its identity
        key += "-" + hashlib.sha1(os.path.abspath(data_cfg.root).encode()).hexdigest()[:10]
    path = os.path.join(cache_dir(), "stats", key + ".npz")
    if os.path.isfile(path):
        try:
            return _cached_features(path, num)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable or implausible cache: recompute and overwrite
    images = _subset(build_dataset(data_cfg, model_cfg).images, num, seeds.reference_rng())
    feats, probs = [], []
    with progress.bar(len(images), f"reference features ({extractor.name}, once)", "img") as bar:
        for i in range(0, len(images), 1000):  # uint8 -> float a chunk at a time
            f, p = extractor.features_and_probs(to_float(images[i:i + 1000]), on_batch=bar.update)
            feats.append(f)
            probs.append(p)
    feats = np.concatenate(feats).astype(np.float32)
    probs = np.concatenate(probs).astype(np.float32) if probs[0] is not None else None
    buf = io.BytesIO()
    np.savez(buf, features=feats, **({"probs": probs} if probs is not None else {}))
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return feats, probs


def scores_from_features(real: Features, fake: Features, extractor_name: str, names=None) -> dict[str, float]:
    """The scores of the metrics `names` (default: all registered), of `fake` against `real`, each
    named <score>_<extractor>."""
    names = list(names) if names is not None else list(METRICS)
    out = {}
    with progress.bar(len(names), "scores", "score") as bar:  # seconds on 10k images: no silent wait
        for name in names:
            bar.set_postfix_str(name)
            out.update(METRICS[name].fn(real, fake))
            bar.update(1)
    return {f"{k}_{extractor_name}": (v if isinstance(v, list) else float(v)) for k, v in out.items()}


def eval_noise(seed: int, num: int, z_dim: int) -> np.ndarray:
    return seeds.normal(seed, seeds.EVAL_NOISE, num, z_dim)


def evaluate_images(images: np.ndarray, extractor, data_cfg, model_cfg, seed: int = 0,
                    num_real: int | None = None, metrics=None) -> dict:
    """Scores of float images in [-1, 1] ([N, C, H, W]) against the real reference split."""
    real, _ = real_features(extractor, data_cfg, model_cfg, num_real or len(images))
    with progress.bar(len(images), "features", "img") as bar:
        fake, probs = extractor.features_and_probs(images, on_batch=bar.update)
    return scores_from_features(Features(real), Features(fake, probs, seed=seed), extractor.name, metrics)


class Evaluator:
    """Scores of a generator of config cfg: `num` images from z drawn with `seed` (for a conditional G,
    each class equally often) against `num` real images of data_cfg (default: the run's own dataset
    and split), by the metrics named in `metrics` (default: all). The noise is drawn and the
    reference features are read once, at the first call, so a run that evaluates every N steps
    repeats only the work that depends on G."""

    def __init__(self, cfg, num: int = 10000, seed: int = 0, extractor=None, data_cfg=None, quantize: bool = True,
                 metrics=None):
        """quantize: score G's images as the 8-bit PNGs they become when saved (round to 0..255, as
        pytorch-fid and clean-fid users score them); False: as floats."""
        self.cfg, self.num, self.seed, self.quantize = cfg, num, seed, quantize
        self.metrics = list(metrics) if metrics is not None else list(METRICS)
        self.data_cfg = data_cfg or cfg.data
        self.extractor = extractor or make_extractor("auto", self.data_cfg.name, cfg.model.channels)
        m = cfg.model
        self.labels = labeling_for(m).balanced(num)
        self.z = eval_noise(seed, num, m.z_dim)
        self.real = None

    def fake_features(self, G, batch: int = 250):
        """(features, class probabilities or None) of G's `num` images, made and turned into features a
        batch at a time, so that the N images are never all in memory at once (250 at a time: the
        LeNet ran 1.6x faster than at 500 on a 2-core CPU, whose caches hold its first activations of
        250 images, not 500)."""
        feats, probs = [], []
        with progress.bar(self.num, "generating + features", "img") as bar:
            for i in range(0, self.num, batch):
                labels = self.labels[i:i + batch] if self.labels is not None else None
                images = generate(G, self.z[i:i + batch], labels, batch=batch)
                f, p = self.extractor.features_and_probs(to_float(to_uint8(images)) if self.quantize else images)
                feats.append(f)
                probs.append(p)
                bar.update(len(f))
        return np.concatenate(feats), (np.concatenate(probs) if probs[0] is not None else None)

    def reference(self) -> Features:
        """The real features, read or computed at the first call (and what metrics derive from them)."""
        if self.real is None:
            self.real = Features(real_features(self.extractor, self.data_cfg, self.cfg.model, self.num)[0])
        return self.real

    def __call__(self, G, batch: int = 250) -> dict:
        """The scores of G. With labels (a conditional G) and an extractor whose classifier knows those
        classes (the LeNet of the dataset), class_acc gives the class accuracy overall and per class."""
        real = self.reference()
        fake, probs = self.fake_features(G, batch)
        ex = self.extractor
        knows = self.labels is not None and getattr(ex, "dataset", None) == self.data_cfg.name
        return scores_from_features(real, Features(fake, probs, self.labels, self.cfg.model.num_classes, knows,
                                                   self.seed), ex.name, self.metrics)


def evaluate(G, cfg, num: int = 10000, seed: int = 0, extractor=None, data_cfg=None, quantize: bool = True,
             metrics=None) -> dict:
    """Evaluator(cfg, num, seed, extractor, data_cfg, quantize, metrics)(G): one evaluation."""
    return Evaluator(cfg, num, seed, extractor, data_cfg, quantize, metrics)(G)
