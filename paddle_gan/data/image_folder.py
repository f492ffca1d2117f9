"""A folder of images (jpg, png, webp, bmp; recursive), decoded once and cached. For a
class-conditional model each sub-folder of the root is a class, named after the folder."""
from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .. import progress
from ..bounds import check_dataset
from ..errors import DataError
from ..files import atomic_write
from ..images import header_pixels
from .arrays import DATASETS, ArrayDataset, Dataset, cache_dir, log, resize_square

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _decode(path: str, img_size: int, channels: int, max_pixels: int):
    """(C x S x S uint8 image, None) or (None, why it was skipped)."""
    pixels = header_pixels(path)
    if pixels is None:  # never decoded: its size cannot be known before the decoder allocates it
        return None, "unsized"
    if pixels > max_pixels:
        return None, "too big"
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # grey/RGBA -> the config's channels
    try:
        img = cv2.imdecode(np.fromfile(path, np.uint8), flag)
    except (OSError, cv2.error, MemoryError):
        return None, "undecodable"
    if img is None or img.size == 0:
        return None, "undecodable"
    if channels == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = resize_square(img, img_size)
    return img.reshape(img_size, img_size, channels).transpose(2, 0, 1), None


def _image_files(folder: str, seen: set, skipped: list) -> list[str]:
    """Image files under folder, sorted. Each real directory is read once: a directory link that
    loops back, or a second way into a folder already read, is not followed again. Only regular
    files count: FIFOs, sockets, devices and dangling or looping links are appended to `skipped`."""
    files = []
    def unreadable(e: OSError) -> None:  # a sub-folder that cannot be listed is counted, not lost silently
        skipped.append(("folder", e.filename))

    for d, dirs, names in os.walk(folder, followlinks=True, onerror=unreadable):
        try:
            st = os.stat(d)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(n for n in names if n.lower().endswith(IMAGE_EXTS)):
            path = os.path.join(d, name)
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)  # follows links: dangling or looping ones fail
            except OSError:
                regular = False
            (files if regular else skipped).append(path)
    return sorted(files)  # by full path, as always: the dataset's order (and its cache key) stay the same


def _labelled_files(root: str, classes: bool, skipped: list) -> tuple[list[str], list[int], list[str]]:
    """(files, their labels, class names): one class per sub-folder of root when `classes`, else
    every image under root with label -1."""
    seen: set = set()
    if not classes:
        files = _image_files(root, seen, skipped)
        return files, [-1] * len(files), []
    st = os.stat(root)
    seen.add((st.st_dev, st.st_ino))  # the root's own files are not any class's
    names, files, labels = [], [], []
    for name in sorted(os.listdir(root)):
        found = _image_files(os.path.join(root, name), seen, skipped) if os.path.isdir(os.path.join(root, name)) else []
        if found:
            names.append(name)
            files += found
            labels += [len(names) - 1] * len(found)
    if not names:
        raise DataError(f"data.root {root!r} has no class sub-folders with images; a class-conditional model "
                        f"(model.num_classes) needs one sub-folder per class")
    loose = [n for n in os.listdir(root) if n.lower().endswith(IMAGE_EXTS) and not os.path.isdir(os.path.join(root, n))]
    if loose:
        log(f"image_folder: {len(loose)} images outside the class sub-folders of {root} are not used")
    return files, labels, names


def load_image_folder(root: str, img_size: int, channels: int, limit: int = 0, cache: bool = True,
                      classes: bool = False, max_pixels: int = 64_000_000) -> ArrayDataset:
    """Every jpg/png/webp/bmp under root (recursive, sorted), centre-cropped and resized; RGB or grey.
    classes: label each image by the sub-folder of root it is in (class names = folder names).
    Skipped and counted: files that are not regular files, that do not decode, or whose header
    says they have more than max_pixels pixels (checked before decoding)."""
    if not os.path.exists(root):
        raise DataError(f"data.root {root!r} does not exist")
    if not os.path.isdir(root):
        raise DataError(f"data.root {root!r} is a file; image_folder needs a folder of images")
    irregular: list = []
    files, labels, names = _labelled_files(root, classes, irregular)
    if limit:
        files, labels = files[:limit], labels[:limit]
    if not files:
        raise DataError(f"data.root {root!r} holds no {'/'.join(e[1:] for e in IMAGE_EXTS)} images"
                        + (f" that are regular files ({len(irregular)} are not)" if irregular else ""))
    check_dataset(len(files), channels, img_size, f"data.root {root!r}")
    key = hashlib.sha1(repr((os.path.abspath(root), img_size, channels, labels, max_pixels,
                             [(f, os.path.getsize(f), os.path.getmtime(f)) for f in files])).encode()).hexdigest()
    cached = os.path.join(cache_dir(), "image_folder", f"{key}.npy")
    cached_labels = os.path.join(cache_dir(), "image_folder", f"{key}.labels.npy")
    if cache and os.path.isfile(cached) and os.path.isfile(cached_labels):
        try:
            images = np.load(cached, mmap_mode="r")  # (mapped: only its header is read here)
            if os.path.getsize(cached_labels) > 8 * len(images) + 4096:
                raise ValueError("labels file too big")
            kept = np.load(cached_labels)
            if (images.shape[1:] != (channels, img_size, img_size) or len(kept) != len(images)
                    or images.dtype != np.uint8 or kept.dtype != np.int64 or not kept.dtype.isnative):
                raise ValueError("shape or dtype")
            log(f"image_folder: {len(images)} decoded images from cache {cached}")
            return ArrayDataset(images, kept, name="image_folder", classes=names)
        except (OSError, ValueError):
            log(f"image_folder: cache {cached} unreadable; decoding again")
    decoded = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            progress.bar(len(files), "decoding images (once; then cached)", "img") as bar:  # cv2 releases the GIL
        for item in pool.map(lambda f: _decode(f, img_size, channels, max_pixels), files):
            decoded.append(item)
            bar.update(1)
    ok = [i for i, (im, _) in enumerate(decoded) if im is not None]
    folders = [p for p in irregular if isinstance(p, tuple)]
    why = (Counter(reason for _, reason in decoded if reason)
           + Counter({"not a regular file": len(irregular) - len(folders), "unreadable folder": len(folders)}))
    if why:
        said = {"undecodable": "do not decode as images", "too big": f"have more than data.max_pixels={max_pixels} pixels",
                "unsized": "are not PNG, JPEG, BMP or WebP by their content (or their header cannot be read)",
                "not a regular file": "are not regular files (FIFOs, devices, broken links)",
                "unreadable folder": "are folders that cannot be read (permissions)"}
        log(f"image_folder: skipped {sum(why.values())} of {len(files) + len(irregular)} entries: "
            + "; ".join(f"{n} {said[k]}" for k, n in sorted(why.items())))
    if not ok:
        raise DataError(f"data.root {root!r}: none of the {len(files)} image files decode within the limits "
                        f"({', '.join(f'{n} {k}' for k, n in sorted(why.items()))})")
    images, kept = np.stack([decoded[i][0] for i in ok]), np.asarray([labels[i] for i in ok], np.int64)
    del decoded
    if cache:
        try:
            atomic_write(cached_labels, lambda f: np.save(f, kept))
            atomic_write(cached, lambda f: np.save(f, images))  # streamed: no second copy in memory
        except OSError as e:
            log(f"image_folder: could not write cache {cached} ({e}); continuing without it")
    log(f"image_folder: {len(images)} images from {root}" + (f" in {len(names)} classes" if names else ""))
    return ArrayDataset(images, kept, name="image_folder", classes=names)


def _load(data, model) -> ArrayDataset:
    ds = load_image_folder(data.root, model.img_size, model.channels, data.limit, data.cache,
                           classes=model.num_classes > 0, max_pixels=data.max_pixels)
    if model.num_classes and len(ds.classes) != model.num_classes:
        raise DataError(f"data.root {data.root!r} has {len(ds.classes)} class sub-folders "
                        f"({', '.join(ds.classes[:8])}{', ...' if len(ds.classes) > 8 else ''}), "
                        f"but model.num_classes is {model.num_classes}")
    return ds


DATASETS.register("image_folder", Dataset(_load, rooted=True))  # classes: one per sub-folder, as many as asked
