"""MNIST and Fashion-MNIST from IDX files (gzipped or raw): data.root, Paddle's cache, Debian's
dataset-fashion-mnist folder, and the Fashion-MNIST test split bundled in the package."""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from .. import progress
from ..bounds import check_dataset
from ..errors import DataError
from .arrays import DATASETS, ArrayDataset, Dataset, log, resize_square, take_first
from .download import locate, paddle_data_home, search_dirs

BUNDLED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_data", "fashion_mnist")
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist

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
CLASSES = {  # label -> name
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}


OFFLINE = {"fashion_mnist": [DEBIAN_FASHION_DIR, BUNDLED_DIR]}  # where a dataset is found without a download


MAX_IDX_BYTES = 1 << 31  # 2 GiB of pixels: 40x MNIST's train split; a header claiming more is refused


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (.gz or raw) of unsigned bytes. The header is read and checked first (magic
    number, then the size its dimensions give, as a Python integer, against MAX_IDX_BYTES), then
    exactly that many bytes are inflated: a gzip bomb or a header that lies cannot fill memory."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped or path.endswith(".gz") else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
            raw_dims = f.read(4 * head[3])
            if len(raw_dims) < 4 * head[3]:
                raise DataError(f"{path}: truncated IDX header")
            dims = [int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(head[3])]
            size = math.prod(dims)  # Python integers: no int64 wrap-around
            if size > MAX_IDX_BYTES:
                raise DataError(f"{path}: the IDX header claims shape {dims} ({size} bytes), more than the "
                                f"{MAX_IDX_BYTES} bytes a dataset here may have")
            data = f.read(size)
            extra = f.read(1)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(data) != size or extra:
        raise DataError(f"{path}: truncated or oversized IDX file (expected {size} data bytes for "
                        f"shape {dims}, found {len(data)}{' and more' if extra else ''})")
    return np.frombuffer(data, np.uint8).reshape(dims)


def load_idx_dataset(name: str, root: str, split: str, img_size: int, channels: int,
                     download: bool = True, limit: int = 0) -> ArrayDataset:
    """MNIST or Fashion-MNIST from IDX files: data.root if given (only there), else Paddle's cache,
    Debian's folder, the bundled copy."""
    if channels != 1:
        raise DataError(f"{name} is greyscale: set model.channels=1 (got {channels})")
    sub, _, _ = IDX_SOURCES[name]
    defaults = [os.path.join(paddle_data_home(), sub)] + OFFLINE.get(name, [])
    dirs = search_dirs(root, defaults)
    prefix = "train" if split == "train" else "t10k"
    paths = [locate(name, f"{prefix}-{kind}-idx{d}-ubyte.gz", dirs, IDX_SOURCES[name], download)
             for kind, d in (("images", 3), ("labels", 1))]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{paths[0]}: expected [N, H, W] images with N labels, got {images.shape} / {labels.shape}")
    images, labels = take_first(images, labels.astype(np.int64), limit)
    check_dataset(len(images), channels, img_size, name)
    if images.shape[1] != img_size:
        with progress.bar(len(images), f"resizing {name} to {img_size}px", "img") as bar:
            resized = np.empty((len(images), img_size, img_size), np.uint8)
            for i, im in enumerate(images):
                resized[i] = resize_square(im, img_size)
                if i % 1000 == 999 or i == len(images) - 1:
                    bar.update(i % 1000 + 1)
        images = resized
    log(f"{name} {split}: {len(images)} images from {os.path.dirname(paths[0])}")
    return ArrayDataset(np.ascontiguousarray(images[:, None]), labels, name=name, classes=CLASSES[name])


def _load(data, model) -> ArrayDataset:
    return load_idx_dataset(data.name, data.root, data.split, model.img_size, model.channels, data.download, data.limit)


for _name in IDX_SOURCES:
    DATASETS.register(_name, Dataset(_load, classes=len(CLASSES[_name]), channels=1))
