"""Datasets held in memory as uint8 arrays, and what every loader shares: the registry of datasets
(data.name; each loader registers its own), conversion to [-1, 1], the square crop and resize, the
cache folder and the [data] log line."""
from __future__ import annotations

import os
import sys

from dataclasses import dataclass

import cv2
import numpy as np
import paddle

from ..registry import Registry

DATASETS = Registry("dataset", chooser="data.name")  # data.name -> Dataset (registered by each loader)


@dataclass(frozen=True)
class Dataset:
    """A data.name: load(data section, model section) -> ArrayDataset; how many classes its labels
    have (0: unlabelled); its channels (1 or 3; 0: either, as the model asks); and whether the files
    under data.root are what it is (an image folder), so caches of it are keyed by the folder."""
    load: object
    classes: int = 0
    channels: int = 0
    rooted: bool = False


def log(msg: str) -> None:
    from ..errors import printable  # folder and class names come from the user's files

    print(f"[data] {printable(msg)}", file=sys.stderr, flush=True)


def cache_dir() -> str:
    return os.environ.get("PADDLE_GAN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "paddle_gan")


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to size x size (area filter down, bilinear up)."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top:top + s, left:left + s]
    if s != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)
    return img


class ArrayDataset(paddle.io.Dataset):
    """Images held as uint8 [N, C, S, S]; items are (float32 CHW in [-1, 1], int64 label).
    `classes`: the name of each label (empty for unlabelled data, whose labels are all -1)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, name: str = "",
                 classes: list[str] | tuple = ()):
        super().__init__()
        self.images = images
        self.labels = labels if labels is not None else np.full(len(images), -1, np.int64)
        self.name = name
        self.classes = list(classes)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return to_float(self.images[i]), np.int64(self.labels[i])


def take_first(images, labels, limit):
    """The first `limit` images and labels (all if limit is 0)."""
    return (images[:limit], labels[:limit]) if limit else (images, labels)
