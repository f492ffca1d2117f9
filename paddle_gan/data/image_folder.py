"""A folder of images (jpg, png, webp, bmp; recursive), decoded once and cached."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..errors import DataError
from ..utils import atomic_write
from .arrays import ArrayDataset, cache_dir, log, resize_square

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _decode(path: str, img_size: int, channels: int):
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # grey/RGBA -> the config's channels
    try:
        img = cv2.imdecode(np.fromfile(path, np.uint8), flag)
    except (OSError, cv2.error):
        return None
    if img is None or img.size == 0:
        return None
    if channels == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = resize_square(img, img_size)
    return img.reshape(img_size, img_size, channels).transpose(2, 0, 1)


def load_image_folder(root: str, img_size: int, channels: int, limit: int = 0, cache: bool = True) -> ArrayDataset:
    """Every jpg/png/webp/bmp under root (recursive, sorted), centre-cropped and resized; RGB or grey."""
    if not os.path.exists(root):
        raise DataError(f"data.root {root!r} does not exist")
    if not os.path.isdir(root):
        raise DataError(f"data.root {root!r} is a file; image_folder needs a folder of images")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root, followlinks=True) for f in fs
                   if f.lower().endswith(IMAGE_EXTS))
    if limit:
        files = files[:limit]
    if not files:
        raise DataError(f"data.root {root!r} holds no {'/'.join(e[1:] for e in IMAGE_EXTS)} images")
    key = hashlib.sha1(repr((os.path.abspath(root), img_size, channels,
                             [(f, os.path.getsize(f), os.path.getmtime(f)) for f in files])).encode()).hexdigest()
    cached = os.path.join(cache_dir(), "image_folder", f"{key}.npy")
    if cache and os.path.isfile(cached):
        try:
            images = np.load(cached, mmap_mode="r")
            log(f"image_folder: {len(images)} decoded images from cache {cached}")
            return ArrayDataset(images, name="image_folder")
        except (OSError, ValueError):
            log(f"image_folder: cache {cached} unreadable; decoding again")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # cv2 releases the GIL
        decoded = list(pool.map(lambda f: _decode(f, img_size, channels), files))
    images = [im for im in decoded if im is not None]
    skipped = len(files) - len(images)
    if skipped:
        log(f"image_folder: skipped {skipped} of {len(files)} files that do not decode as images")
    if not images:
        raise DataError(f"data.root {root!r}: none of the {len(files)} image files decode")
    images = np.stack(images)
    if cache:
        try:
            atomic_write(cached, lambda f: np.save(f, images))  # streamed: no second copy in memory
        except OSError as e:
            log(f"image_folder: could not write cache {cached} ({e}); continuing without it")
    log(f"image_folder: {len(images)} images from {root}")
    return ArrayDataset(images, name="image_folder")
