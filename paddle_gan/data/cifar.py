"""CIFAR-10 from the python-version tarball cifar-10-python.tar.gz."""
from __future__ import annotations

import os
import pickle
import tarfile

import cv2
import numpy as np

from .. import safepickle
from ..bounds import check_dataset
from ..errors import DataError
from .arrays import DATASETS, ArrayDataset, Dataset, log, resize_square, take_first
from .download import locate, paddle_data_home, search_dirs

CIFAR10_SOURCE = ("cifar", "https://dataset.bj.bcebos.com/cifar/",
                  {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"})
MEMBER_IMAGES = 10_000  # images in each batch file of the tarball
MAX_MEMBER_BYTES = 64 << 20  # a real batch file is 31 MB: a bigger member is refused before it is read
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(root: str, split: str, img_size: int, channels: int, download: bool = True,
                 limit: int = 0) -> ArrayDataset:
    """CIFAR-10 from the python-version tarball cifar-10-python.tar.gz."""
    dirs = search_dirs(root, [os.path.join(paddle_data_home(), "cifar")])
    path = locate("cifar10", "cifar-10-python.tar.gz", dirs, CIFAR10_SOURCE, download)
    members = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    total = MEMBER_IMAGES * len(members)
    check_dataset(min(limit, total) if limit else total, channels, img_size, "cifar10")
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            by_name = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
            for m in members:
                if m not in by_name:
                    raise DataError(f"{path}: member {m} missing (not a CIFAR-10 python tarball?)")
                if by_name[m].size > MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: member {m} is {by_name[m].size} bytes, more than the {MAX_MEMBER_BYTES} "
                                    f"a CIFAR-10 batch has (not a CIFAR-10 python tarball?)")
                batch = safepickle.loads(tar.extractfile(by_name[m]).read(MAX_MEMBER_BYTES), encoding="bytes")
                images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], np.int64))
    except safepickle.RefusedPickle as e:
        raise DataError(f"{path}: refused to load {m}: {e}") from None
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: cannot read CIFAR-10 tarball ({type(e).__name__}: {e})") from None
    images, labels = take_first(np.concatenate(images), np.concatenate(labels), limit)
    if channels == 1:
        images = np.stack([cv2.cvtColor(im.transpose(1, 2, 0), cv2.COLOR_RGB2GRAY)[None] for im in images])
    if img_size != 32:
        images = np.stack([resize_square(im.transpose(1, 2, 0), img_size).reshape(img_size, img_size, -1)
                           .transpose(2, 0, 1) for im in images])
    log(f"cifar10 {split}: {len(images)} images from {path}")
    return ArrayDataset(np.ascontiguousarray(images), labels, name="cifar10", classes=CLASSES)


def _load(data, model) -> ArrayDataset:
    return load_cifar10(data.root, data.split, model.img_size, model.channels, data.download, data.limit)


DATASETS.register("cifar10", Dataset(_load, classes=len(CLASSES), channels=3))
