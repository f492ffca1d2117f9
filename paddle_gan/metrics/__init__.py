"""Evaluation shared by the trainer (train.eval_every) and tools/eval.py.

    evaluate(G, cfg, num=10000, seed=0) -> {"fid_lenet_fashion": ..., "kid_lenet_fashion": ..., ...}

Every score is named <score>_<extractor>, so a LeNet-feature FID can never pass for an Inception one.
The reference is the real split the run trained on (or --data), taken through the same loader and
resize as training, so real and generated images reach the extractor the same way. Its features
are cached per (dataset, split, limit, image size, extractor, count) with an atomic write.
"""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from .. import layout, progress, seeds
from ..conditional import balanced_labels
from ..config import EXTRACTORS
from ..data import DataError, build_dataset, cache_dir, to_float
from ..inference import generate
from ..utils import atomic_write
from .scores import (class_accuracy, density_coverage, feature_stats, fid_from_features, frechet_distance,
                     inception_score, kid, precision_recall)

__all__ = ["evaluate", "evaluate_images", "make_extractor", "real_features", "scores_from_features",
           "frechet_distance", "feature_stats", "fid_from_features", "kid", "inception_score",
           "precision_recall", "density_coverage", "class_accuracy", "EXTRACTORS", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = ("fid", "kid")  # the others (is, precision, recall, density, coverage): higher is better


def make_extractor(name: str, dataset: str, channels: int, inception_weights: str | None = None):
    """'lenet' (MNIST-like greyscale data), 'inception' (RGB, or any data), or 'auto' (lenet where
    one is trained for the dataset, else inception)."""
    from .lenet import SHORT, LeNetExtractor

    if name not in EXTRACTORS:
        raise DataError(f"extractor {name!r}: choose one of {', '.join(EXTRACTORS)}")
    if name == "auto":
        name = "lenet" if dataset in SHORT and channels == 1 else "inception"
    if name == "lenet":
        return LeNetExtractor(dataset)
    from .inception import InceptionExtractor

    return InceptionExtractor(inception_weights)


def _subset(images: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """`num` images drawn without replacement by `rng` (in their stored order), or all if fewer."""
    if num >= len(images):
        return images
    return images[np.sort(rng.choice(len(images), num, replace=False))]


def real_features(extractor, data_cfg, model_cfg, num: int):
    """(features, probs) of up to `num` real images of the reference split (a fixed subset), cached."""
    key = f"{data_cfg.name}-{data_cfg.split}-{data_cfg.limit}-{model_cfg.img_size}px-{model_cfg.channels}ch-" \
          f"{extractor.name}-{num}"
    if data_cfg.name == "image_folder":  # a folder's contents are part of its identity
        key += "-" + hashlib.sha1(os.path.abspath(data_cfg.root).encode()).hexdigest()[:10]
    path = os.path.join(cache_dir(), "stats", key + ".npz")
    if os.path.isfile(path):
        try:
            with np.load(path) as z:
                return z["features"], (z["probs"] if "probs" in z.files else None)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute and overwrite
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


def scores_from_features(real: np.ndarray, fake: np.ndarray, fake_probs: np.ndarray | None, extractor_name: str,
                         seed: int = 0, kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict[str, float]:
    out = {"fid": fid_from_features(real, fake),
           **kid(real, fake, kid_subsets, kid_subset_size, seed=seed),
           **precision_recall(real, fake, k=3), **density_coverage(real, fake, k=5)}
    if fake_probs is not None:
        out.update(inception_score(fake_probs, splits=10))
    return {f"{k}_{extractor_name}": float(v) for k, v in out.items()}


def eval_noise(seed: int, num: int, z_dim: int) -> np.ndarray:
    return seeds.normal(seed, seeds.EVAL_NOISE, num, z_dim)


def evaluate_images(images: np.ndarray, extractor, data_cfg, model_cfg, seed: int = 0,
                    num_real: int | None = None, labels: np.ndarray | None = None) -> dict:
    """Scores of float images in [-1, 1] ([N, C, H, W]) against the real reference split. With the
    `labels` they were generated for, and an extractor whose classifier knows those classes (the
    LeNet of the dataset), also the class accuracy: class_acc_<x> and class_acc_per_class_<x>."""
    real, _ = real_features(extractor, data_cfg, model_cfg, num_real or len(images))
    with progress.bar(len(images), "features", "img") as bar:
        fake, probs = extractor.features_and_probs(images, on_batch=bar.update)
    scores = scores_from_features(real, fake, probs, extractor.name, seed=seed)
    if labels is not None and getattr(extractor, "dataset", None) == data_cfg.name:
        scores.update({f"{k}_{extractor.name}": v for k, v in
                       class_accuracy(probs, labels, model_cfg.num_classes).items()})
    return scores


def evaluate(G, cfg, num: int = 10000, seed: int = 0, extractor=None, data_cfg=None) -> dict:
    """Scores of generator G (a model of config cfg) from `num` samples of z ~ N(0, I) drawn with
    `seed` (for a conditional G, each class equally often), against `num` real images of data_cfg
    (default: the run's own dataset and split)."""
    data_cfg = data_cfg or cfg.data
    extractor = extractor or make_extractor("auto", data_cfg.name, cfg.model.channels)
    labels = balanced_labels(cfg.model.num_classes, num) if cfg.model.num_classes else None
    with progress.bar(num, "generating", "img") as bar:
        images = generate(G, eval_noise(seed, num, cfg.model.z_dim), labels, on_batch=bar.update)
    return evaluate_images(images, extractor, data_cfg, cfg.model, seed=seed, num_real=num, labels=labels)


def parse_data(spec: str, base):
    """'name[:split]' -> a copy of DataConfig `base` with that dataset (and split) set."""
    import copy

    from ..config import DATASET_NAMES, SPLITS

    d = copy.deepcopy(base)
    name, _, split = spec.partition(":")
    if name not in DATASET_NAMES:
        raise DataError(f"--data {spec}: unknown dataset {name!r} (choose from {', '.join(DATASET_NAMES)})")
    if split and split not in SPLITS:
        raise DataError(f"--data {spec}: split must be train or test, got {split!r}")
    if name != d.name:
        d.root, d.limit = "", 0
    d.name, d.split = name, split or d.split
    return d


def evaluate_checkpoint(ckpt: str | None, num: int = 10000, seed: int = 0, data: str | None = None,
                        data_root: str | None = None, extractor: str = "auto", inception_weights: str | None = None,
                        real: str | None = None, img_size: int = 32, raw: bool = False) -> dict:
    """tools/eval.py: scores of a checkpoint's generator (its EMA generator if it has one, unless
    `raw`), or with `real` ('name:split') of real images in its place (the floor: e.g. the test split
    against the train split). Returns one self-describing record; for a checkpoint it is also
    appended to <run>/metric-<extractor>.jsonl."""
    import json
    import time

    from ..checkpoint import open_generator
    from ..config import Config
    from ..utils import atomic_write_text

    if ckpt:
        gen = open_generator(ckpt, raw=raw)
        G, cfg, step = gen.G, gen.cfg, gen.step
    else:
        cfg, G, step = Config(), None, None
        cfg.data = parse_data(real, cfg.data)  # the reference defaults to the same dataset
        cfg.model.img_size = img_size
        cfg.model.channels = 1 if cfg.data.name in ("mnist", "fashion_mnist") else 3
    ref = parse_data(data, cfg.data) if data else cfg.data
    if data_root is not None:
        ref.root = data_root
    ex = make_extractor(extractor, ref.name, cfg.model.channels, inception_weights)
    if G is not None:
        scores = evaluate(G, cfg, num=num, seed=seed, extractor=ex, data_cfg=ref)
        what = {"checkpoint": os.path.abspath(ckpt), "step": step, "generator": gen.which}
        per_class = scores.pop(f"class_acc_per_class_{ex.name}", None)
        if per_class is not None:  # by class name, e.g. {"Sneaker": 0.93, ...}
            scores[f"class_acc_per_class_{ex.name}"] = dict(zip(gen.classes, per_class))
    else:
        fake_cfg = parse_data(real, ref)
        images = _subset(build_dataset(fake_cfg, cfg.model).images, num, seeds.rng(seed, seeds.REAL_SUBSET))
        scores = evaluate_images(to_float(images), ex, ref, cfg.model, seed=seed, num_real=num)
        what = {"real": f"{fake_cfg.name}:{fake_cfg.split}", "num_fake": len(images)}
    record = {**what, "reference": f"{ref.name}:{ref.split}", "num": num, "seed": seed, "extractor": ex.name,
              "img_size": cfg.model.img_size, **scores, "time": time.time()}
    run_dir = layout.run_of_checkpoint(ckpt) if ckpt else None
    if run_dir and layout.is_run(run_dir):
        path = layout.eval_record_path(run_dir, ex.name)
        old = ""
        if os.path.isfile(path):
            with open(path) as f:
                old = f.read()
        atomic_write_text(path, old + json.dumps(record) + "\n")
    return record
