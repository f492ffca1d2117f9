"""A folder of images (jpg, png, webp, bmp; recursive), decoded once and cached. For a
class-conditional model each sub-folder of the root is a class, named after the folder."""
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


def _image_files(folder: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder, followlinks=True) for f in fs
                  if f.lower().endswith(IMAGE_EXTS))


def _labelled_files(root: str, classes: bool) -> tuple[list[str], list[int], list[str]]:
    """(files, their labels, class names): one class per sub-folder of root when `classes`, else
    every image under root with label -1."""
    if not classes:
        files = _image_files(root)
        return files, [-1] * len(files), []
    names, files, labels = [], [], []
    for name in sorted(os.listdir(root)):
        found = _image_files(os.path.join(root, name)) if os.path.isdir(os.path.join(root, name)) else []
        if found:
            names.append(name)
            files += found
            labels += [len(names) - 1] * len(found)
    if not names:
        raise DataError(f"data.root {root!r} has no class sub-folders with images; a class-conditional model "
                        f"(model.num_classes) needs one sub-folder per class")
    loose = len(_image_files(root)) - len(files)
    if loose:
        log(f"image_folder: {loose} images outside the class sub-folders of {root} are not used")
    return files, labels, names


def load_image_folder(root: str, img_size: int, channels: int, limit: int = 0, cache: bool = True,
                      classes: bool = False) -> ArrayDataset:
    """Every jpg/png/webp/bmp under root (recursive, sorted), centre-cropped and resized; RGB or grey.
    classes: label each image by the sub-folder of root it is in (class names = folder names)."""
    if not os.path.exists(root):
        raise DataError(f"data.root {root!r} does not exist")
    if not os.path.isdir(root):
        raise DataError(f"data.root {root!r} is a file; image_folder needs a folder of images")
    files, labels, names = _labelled_files(root, classes)
    if limit:
        files, labels = files[:limit], labels[:limit]
    if not files:
        raise DataError(f"data.root {root!r} holds no {'/'.join(e[1:] for e in IMAGE_EXTS)} images")
    key = hashlib.sha1(repr((os.path.abspath(root), img_size, channels, labels,
                             [(f, os.path.getsize(f), os.path.getmtime(f)) for f in files])).encode()).hexdigest()
    cached = os.path.join(cache_dir(), "image_folder", f"{key}.npy")
    cached_labels = os.path.join(cache_dir(), "image_folder", f"{key}.labels.npy")
    if cache and os.path.isfile(cached) and os.path.isfile(cached_labels):
        try:
            images, kept = np.load(cached, mmap_mode="r"), np.load(cached_labels)
            log(f"image_folder: {len(images)} decoded images from cache {cached}")
            return ArrayDataset(images, kept, name="image_folder", classes=names)
        except (OSError, ValueError):
            log(f"image_folder: cache {cached} unreadable; decoding again")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # cv2 releases the GIL
        decoded = list(pool.map(lambda f: _decode(f, img_size, channels), files))
    ok = [i for i, im in enumerate(decoded) if im is not None]
    skipped = len(files) - len(ok)
    if skipped:
        log(f"image_folder: skipped {skipped} of {len(files)} files that do not decode as images")
    if not ok:
        raise DataError(f"data.root {root!r}: none of the {len(files)} image files decode")
    images, kept = np.stack([decoded[i] for i in ok]), np.asarray([labels[i] for i in ok], np.int64)
    del decoded
    if cache:
        try:
            atomic_write(cached_labels, lambda f: np.save(f, kept))
            atomic_write(cached, lambda f: np.save(f, images))  # streamed: no second copy in memory
        except OSError as e:
            log(f"image_folder: could not write cache {cached} ({e}); continuing without it")
    log(f"image_folder: {len(images)} images from {root}" + (f" in {len(names)} classes" if names else ""))
    return ArrayDataset(images, kept, name="image_folder", classes=names)
