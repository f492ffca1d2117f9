"""Datasets (MNIST / Fashion-MNIST IDX, image folders, CIFAR-10) and the resumable batch stream.

Every dataset is decoded once into a uint8 array `images` of shape [N, C, S, S] (S = model.img_size)
and served as float32 in [-1, 1]. These datasets are small enough to hold in memory, and batching
by fancy indexing beats worker processes for them; the batch order is a pure function of
(seed, epoch), so a saved position (epoch, offset) continues the exact same stream after a resume.

One module per job: idx.py (MNIST, Fashion-MNIST), cifar.py, image_folder.py, download.py (where
files are looked for, and fetching them), arrays.py (what every loader shares), stream.py (BatchStream).
"""
from __future__ import annotations

import os

from ..errors import DataError
from ..registry import CHECKS
from .arrays import DATASETS, ArrayDataset, Dataset, cache_dir, resize_square, to_float
from .cifar import load_cifar10
from .download import download, locate, paddle_data_home
from .idx import BUNDLED_DIR, DEBIAN_FASHION_DIR, IDX_SOURCES, load_idx_dataset, read_idx
from .image_folder import load_image_folder
from .stream import BatchStream

__all__ = ["ArrayDataset", "BatchStream", "BUNDLED_DIR", "DATASETS", "DEBIAN_FASHION_DIR", "DataError", "Dataset",
           "IDX_SOURCES", "SPLITS", "build_dataset", "cache_dir", "download", "load_cifar10", "load_idx_dataset", "load_image_folder",
           "locate", "paddle_data_home", "read_idx", "resize_square", "to_float"]


SPLITS = ("train", "test")  # data.split (IDX and CIFAR datasets)


def _check(cfg, need) -> None:
    d, m = cfg.data, cfg.model
    need(not DATASETS[d.name].rooted or d.root != "", "data.root", f"{d.name} needs data.root (a folder of images)")
    labelled = DATASETS[d.name].classes
    if m.num_classes and labelled:
        need(m.num_classes == labelled, "model.num_classes", f"{d.name} has {labelled} classes, got {m.num_classes}")


CHECKS.register("data", _check)


def build_dataset(data, model) -> ArrayDataset:
    """The dataset named by a DataConfig, shaped for a ModelConfig (and labelled, with as many
    classes as model.num_classes, for a conditional one)."""
    if data.root and os.path.isfile(data.root):  # would otherwise be passed over for the next place to look
        raise DataError(f"data.root {data.root!r} is a file; give the folder that holds the {data.name} files")
    if data.name not in DATASETS:
        raise DataError(f"data.name: unknown dataset {data.name!r}")
    ds = DATASETS[data.name].load(data, model)
    if model.num_classes and len(ds.labels) and not 0 <= int(ds.labels.min()) <= int(ds.labels.max()) < model.num_classes:
        bad = int(ds.labels.max()) if int(ds.labels.max()) >= model.num_classes else int(ds.labels.min())
        raise DataError(f"{data.name}: a label is {bad}, outside 0..{model.num_classes - 1} "
                        f"(model.num_classes={model.num_classes}; damaged label file?)")
    return ds
