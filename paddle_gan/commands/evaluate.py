"""What tools/eval.py does: score a checkpoint's generator (or a real split, the floor) by the metrics
asked for, and keep the record beside the run (<run>/metric-<extractor>.jsonl)."""
from __future__ import annotations

import copy
import json
import os
import time

from .. import seeds
from ..config import Config
from ..data import DATASETS, SPLITS, DataError, build_dataset, to_float
from ..files import append_line
from ..gan.kernels import for_inference
from ..metrics import _subset, evaluate, evaluate_images, make_extractor
from ..run import layout
from ..run.generator import open_generator


def parse_data(spec: str, base):
    """'name[:split]' -> a copy of DataConfig `base` with that dataset (and split) set."""
    d = copy.deepcopy(base)
    name, _, split = spec.partition(":")
    if name not in DATASETS:
        raise DataError(f"--data {spec}: unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if split and split not in SPLITS:
        raise DataError(f"--data {spec}: split must be train or test, got {split!r}")
    if name != d.name:
        d.root, d.limit = "", 0
    d.name, d.split = name, split or d.split
    return d


def evaluate_checkpoint(ckpt: str | None, num: int = 10000, seed: int = 0, data: str | None = None,
                        data_root: str | None = None, extractor: str = "auto", inception_weights: str | None = None,
                        real: str | None = None, img_size: int = 32, raw: bool = False, quantize: bool = True,
                        metrics=None) -> dict:
    """tools/eval.py: scores of a checkpoint's generator (its EMA generator if it has one, unless
    `raw`), or with `real` ('name:split') of real images in its place (the floor: e.g. the test split
    against the train split). metrics: the names of the metrics to compute (default: all).
    Returns one self-describing record (record_evaluation keeps it beside the run)."""
    if ckpt:
        gen = open_generator(ckpt, raw=raw)
        G, cfg, step = for_inference(gen.G, gen.cfg.train.conv), gen.cfg, gen.step
    else:
        cfg, G, step = Config(), None, None
        cfg.data = parse_data(real, cfg.data)  # the reference defaults to the same dataset
        cfg.model.img_size = img_size
        cfg.model.channels = DATASETS[cfg.data.name].channels or 3
    ref = parse_data(data, cfg.data) if data else cfg.data
    if data_root is not None:
        ref.root = data_root
    ex = make_extractor(extractor, ref.name, cfg.model.channels, inception_weights, conv=cfg.train.conv)
    if G is not None:
        scores = evaluate(G, cfg, num=num, seed=seed, extractor=ex, data_cfg=ref, quantize=quantize, metrics=metrics)
        what = {"checkpoint": os.path.abspath(ckpt), "step": step, "generator": gen.which}
        per_class = scores.pop(f"class_acc_per_class_{ex.name}", None)
        if per_class is not None:  # by class name, e.g. {"Sneaker": 0.93, ...}
            scores[f"class_acc_per_class_{ex.name}"] = dict(zip(gen.classes, per_class))
    else:
        fake_cfg = parse_data(real, ref)
        images = _subset(build_dataset(fake_cfg, cfg.model).images, num, seeds.rng(seed, seeds.REAL_SUBSET))
        scores = evaluate_images(to_float(images), ex, ref, cfg.model, seed=seed, num_real=num, metrics=metrics)
        what = {"real": f"{fake_cfg.name}:{fake_cfg.split}", "num_fake": len(images)}
    record = {**what, "reference": f"{ref.name}:{ref.split}", "num": num, "seed": seed, "extractor": ex.name,
              "extractor_weights": ex.weights, "extractor_weights_sha256": ex.sha256,
              "images": "8-bit" if quantize or G is None else "float", "img_size": cfg.model.img_size, **scores,
              "time": time.time()}
    return record


def record_evaluation(record: dict) -> str | None:
    """Append a checkpoint's record to <run>/metric-<extractor>.jsonl (an append under a lock: several
    evaluations of one run at once all keep theirs); returns the file, or None for a checkpoint that
    lies outside a run folder or a record of real images. OSError if the run cannot be written."""
    ckpt = record.get("checkpoint")
    run_dir = layout.run_of_checkpoint(ckpt) if ckpt else None
    if not (run_dir and layout.is_run(run_dir)):
        return None
    path = layout.eval_record_path(run_dir, record["extractor"])
    append_line(path, json.dumps(record))
    return path
