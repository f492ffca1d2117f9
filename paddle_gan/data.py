"""Datasets (MNIST / Fashion-MNIST IDX, image folders, CIFAR-10) and the resumable batch stream.

Every dataset is decoded once into a uint8 array `images` of shape [N, C, S, S] (S = model.img_size)
and served as float32 in [-1, 1]. These datasets are small enough to hold in memory, and batching
by fancy indexing beats worker processes for them; the batch order is a pure function of
(seed, epoch), so a saved position (epoch, offset) continues the exact same stream after a resume.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import sys
import tarfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import paddle

from .utils import atomic_write, atomic_write_bytes


class DataError(RuntimeError):
    """Missing, unreadable or unsuitable data; the message is one line and names the file or folder."""


def _log(msg: str) -> None:
    print(f"[data] {msg}", file=sys.stderr, flush=True)


BUNDLED_DIR = os.path.join(os.path.dirname(__file__), "_data", "fashion_mnist")
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist


def paddle_data_home() -> str:
    """Paddle's own dataset cache (where paddle.vision.datasets download to)."""
    return os.path.join(os.path.expanduser("~"), ".cache", "paddle", "dataset")


# name -> (Paddle cache sub-folder, download prefix, {file name: MD5}); same mirrors as paddle.vision
IDX_SOURCES = {
    "mnist": ("mnist", "https://dataset.bj.bcebos.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion_mnist": ("fashion-mnist", "https://dataset.bj.bcebos.com/fashion_mnist/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
}
CIFAR10_SOURCE = ("cifar", "https://dataset.bj.bcebos.com/cifar/",
                  {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"})


def download(url: str, dst: str, md5: str | None, timeout: float = 30.0) -> str:
    """Fetch url to dst (atomically, MD5-checked unless md5 is None). Raises DataError with the reason."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    _log(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            payload = r.read()
    except Exception as e:  # URLError, timeouts, HTTP errors: all mean "could not fetch"
        raise DataError(f"could not download {url} ({getattr(e, 'reason', e)})") from None
    got = hashlib.md5(payload).hexdigest()
    if md5 is not None and got != md5:
        raise DataError(f"download of {url} has MD5 {got}, expected {md5}; not saved")
    atomic_write_bytes(dst, payload)
    return dst


def locate(name: str, filename: str, dirs: list[str], source, allow_download: bool) -> str:
    """First dirs/filename (or its un-gzipped twin) that exists; else download into dirs[0]."""
    candidates = [filename] + ([filename[:-3]] if filename.endswith(".gz") else [])
    for d in dirs:
        for c in candidates:
            path = os.path.join(d, c)
            if os.path.isfile(path):
                return path
    where = ", ".join(dirs)
    if not allow_download:
        raise DataError(f"{name}: {filename} not found in {where}; put the file there or set data.root "
                        f"(data.download is false)")
    _, prefix, md5s = source
    try:
        return download(prefix + filename, os.path.join(dirs[0], filename), md5s[filename])
    except DataError as e:
        raise DataError(f"{name}: {filename} not found in {where}, and {e}; copy the file into one of "
                        f"those folders or set data.root") from None


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (.gz or raw) of unsigned bytes; checks the magic number and the length."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".gz") or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DataError(f"{path}: truncated or oversized IDX file (expected {size} data bytes for "
                        f"shape {dims}, found {len(raw) - header})")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


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
    """Images held as uint8 [N, C, S, S]; items are (float32 CHW in [-1, 1], int64 label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, name: str = ""):
        super().__init__()
        self.images = images
        self.labels = labels if labels is not None else np.full(len(images), -1, np.int64)
        self.name = name

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return to_float(self.images[i]), np.int64(self.labels[i])


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)


def _limit(images, labels, limit):
    return (images[:limit], labels[:limit]) if limit else (images, labels)


def load_idx_dataset(name: str, root: str, split: str, img_size: int, channels: int,
                     download: bool = True, limit: int = 0) -> ArrayDataset:
    """MNIST or Fashion-MNIST from IDX files: data.root, Paddle's cache, Debian's folder, bundled copy."""
    if channels != 1:
        raise DataError(f"{name} is greyscale: set model.channels=1 (got {channels})")
    sub, _, _ = IDX_SOURCES[name]
    dirs = ([root] if root else []) + [os.path.join(paddle_data_home(), sub)]
    if name == "fashion_mnist":
        dirs += [DEBIAN_FASHION_DIR, BUNDLED_DIR]
    prefix = "train" if split == "train" else "t10k"
    paths = [locate(name, f"{prefix}-{kind}-idx{d}-ubyte.gz", dirs, IDX_SOURCES[name], download)
             for kind, d in (("images", 3), ("labels", 1))]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{paths[0]}: expected [N, H, W] images with N labels, got {images.shape} / {labels.shape}")
    images, labels = _limit(images, labels.astype(np.int64), limit)
    if images.shape[1] != img_size:
        images = np.stack([resize_square(im, img_size) for im in images])
    _log(f"{name} {split}: {len(images)} images from {os.path.dirname(paths[0])}")
    return ArrayDataset(np.ascontiguousarray(images[:, None]), labels, name=name)


def load_cifar10(root: str, split: str, img_size: int, channels: int, download: bool = True,
                 limit: int = 0) -> ArrayDataset:
    """CIFAR-10 from the python-version tarball cifar-10-python.tar.gz."""
    dirs = ([root] if root else []) + [os.path.join(paddle_data_home(), "cifar")]
    path = locate("cifar10", "cifar-10-python.tar.gz", dirs, CIFAR10_SOURCE, download)
    members = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            by_name = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
            for m in members:
                if m not in by_name:
                    raise DataError(f"{path}: member {m} missing (not a CIFAR-10 python tarball?)")
                batch = pickle.load(io.BytesIO(tar.extractfile(by_name[m]).read()), encoding="bytes")
                images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], np.int64))
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError, ValueError) as e:
        raise DataError(f"{path}: cannot read CIFAR-10 tarball ({type(e).__name__}: {e})") from None
    images, labels = _limit(np.concatenate(images), np.concatenate(labels), limit)
    if channels == 1:
        images = np.stack([cv2.cvtColor(im.transpose(1, 2, 0), cv2.COLOR_RGB2GRAY)[None] for im in images])
    if img_size != 32:
        images = np.stack([resize_square(im.transpose(1, 2, 0), img_size).reshape(img_size, img_size, -1)
                           .transpose(2, 0, 1) for im in images])
    _log(f"cifar10 {split}: {len(images)} images from {path}")
    return ArrayDataset(np.ascontiguousarray(images), labels, name="cifar10")


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


def cache_dir() -> str:
    return os.environ.get("PADDLE_GAN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "paddle_gan")


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
            _log(f"image_folder: {len(images)} decoded images from cache {cached}")
            return ArrayDataset(images, name="image_folder")
        except (OSError, ValueError):
            _log(f"image_folder: cache {cached} unreadable; decoding again")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # cv2 releases the GIL
        decoded = list(pool.map(lambda f: _decode(f, img_size, channels), files))
    images = [im for im in decoded if im is not None]
    skipped = len(files) - len(images)
    if skipped:
        _log(f"image_folder: skipped {skipped} of {len(files)} files that do not decode as images")
    if not images:
        raise DataError(f"data.root {root!r}: none of the {len(files)} image files decode")
    images = np.stack(images)
    if cache:
        try:
            atomic_write(cached, lambda f: np.save(f, images))  # streamed: no second copy in memory
        except OSError as e:
            _log(f"image_folder: could not write cache {cached} ({e}); continuing without it")
    _log(f"image_folder: {len(images)} images from {root}")
    return ArrayDataset(images, name="image_folder")


def build_dataset(data, model) -> ArrayDataset:
    """The dataset named by a DataConfig, shaped for a ModelConfig."""
    if data.root and os.path.isfile(data.root):  # would otherwise be passed over for the next place to look
        raise DataError(f"data.root {data.root!r} is a file; give the folder that holds the {data.name} files")
    if data.name in IDX_SOURCES:
        return load_idx_dataset(data.name, data.root, data.split, model.img_size, model.channels,
                                data.download, data.limit)
    if data.name == "cifar10":
        return load_cifar10(data.root, data.split, model.img_size, model.channels, data.download, data.limit)
    if data.name == "image_folder":
        return load_image_folder(data.root, model.img_size, model.channels, data.limit, data.cache)
    raise DataError(f"data.name: unknown dataset {data.name!r}")


class BatchStream:
    """Endless shuffled batches (last partial batch of an epoch dropped).

    The order of epoch e is permutation(N) from a generator seeded with (seed, e); the position is
    (epoch, offset), so a stream rebuilt from a saved position yields exactly the batches the
    original stream would have yielded next.

    With `world` > 1 processes, each step takes the next global batch of world * batch_size indices
    and process `rank` gets its own disjoint part of it. The position counts global images, so a
    checkpoint saved by any number of processes continues the same order with any other number.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, epoch: int = 0, offset: int = 0,
                 rank: int = 0, world: int = 1):
        self.global_batch = batch_size * world
        if len(images) < self.global_batch:
            need = f"train.batch_size={batch_size}" + (f" x {world} processes" if world > 1 else "")
            raise DataError(f"dataset has {len(images)} images, fewer than {need}")
        self.images, self.batch_size, self.seed, self.rank = images, batch_size, seed, rank
        self.epoch, self.offset = epoch, offset
        self._perm_epoch, self._perm = None, None

    def _order(self) -> np.ndarray:
        if self._perm_epoch != self.epoch:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
            self._perm_epoch = self.epoch
        return self._perm

    def next(self) -> np.ndarray:
        if self.epoch_done:
            self.epoch, self.offset = self.epoch + 1, 0
        start = self.offset + self.rank * self.batch_size
        idx = np.sort(self._order()[start:start + self.batch_size])  # sorted: faster gather
        self.offset += self.global_batch
        return to_float(self.images[idx])

    @property
    def epoch_done(self) -> bool:
        """True when the next batch starts a new epoch."""
        return self.offset + self.global_batch > len(self.images)

    def state(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}
