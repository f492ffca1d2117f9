"""The offline feature extractor for MNIST-like data: a LeNet-style classifier trained by
tools/train_evaluator.py on the dataset's labels. Its 128-d penultimate activations stand in for
Inception features, and its class probabilities for the Inception classifier's. Scores computed with
it are named after it (fid_lenet_fashion, ...), never plain "fid": they are not comparable with
Inception FIDs in papers, only with each other.

Weights ship in paddle_gan/metrics/weights/lenet_<dataset>.pdparams, next to a .json that records
the test accuracy and how they were trained.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .. import safepickle

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
SHORT = {"fashion_mnist": "fashion", "mnist": "mnist"}  # dataset -> metric-name suffix
FEATURE_DIM = 128


class LeNet(nn.Layer):
    """[N, 1, 28, 28] in [-1, 1] -> 10 logits; features() gives the 128-d layer before them."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2D(1, 32, 5), nn.ReLU(), nn.MaxPool2D(2),   # 32 x 12 x 12
            nn.Conv2D(32, 64, 5), nn.ReLU(), nn.MaxPool2D(2),  # 64 x 4 x 4
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x):
        if x.shape[-1] != 28 or x.shape[-2] != 28:  # generators make 32x32 (DCGAN) or 28x28 (MLP)
            x = F.interpolate(x, size=[28, 28], mode="bilinear", align_corners=False)
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def weights_path(dataset: str) -> str:
    return os.path.join(WEIGHTS_DIR, f"lenet_{dataset}.pdparams")


class LeNetExtractor:
    """features_and_probs(images in [-1, 1], [N, 1, H, W]) -> ([N, 128] features, [N, 10] probs)."""

    def __init__(self, dataset: str, path: str | None = None):
        from ..data import DataError

        if dataset not in SHORT:
            raise DataError(f"no LeNet evaluator for {dataset!r} (only {', '.join(SHORT)}); "
                            f"use --extractor inception for RGB data")
        path = path or weights_path(dataset)
        if not os.path.isfile(path):
            raise DataError(f"{path}: no evaluator weights; train them with "
                            f"python tools/train_evaluator.py --data {dataset}")
        self.name = f"lenet_{SHORT[dataset]}"
        self.dataset = dataset  # its classifier's classes are this dataset's labels
        self.model = LeNet()
        from ..files import read_limited

        try:  # (the shipped weights are 0.2 MB)
            self.model.set_state_dict(safepickle.load_state_dict(read_limited(path, 16 << 20, "LeNet evaluator weights")))
        except safepickle.RefusedPickle as e:
            raise DataError(f"{path}: refused to load: {e}") from None
        self.model.eval()
        from ..files import sha256_of

        self.weights, self.sha256 = os.path.abspath(path), sha256_of(path)
        info = os.path.splitext(path)[0] + ".json"
        self.info = json.loads(read_limited(info, 1 << 20, "an evaluator's description")) if os.path.isfile(info) else {}

    def features_and_probs(self, images: np.ndarray, batch: int = 250, on_batch=None):
        if images.shape[1] != 1:
            raise ValueError(f"{self.name} reads greyscale images, got {images.shape[1]} channels")
        feats, probs = [], []
        with paddle.no_grad():
            for i in range(0, len(images), batch):
                if on_batch:
                    on_batch(len(images[i:i + batch]))
                f = self.model.features(paddle.to_tensor(np.asarray(images[i:i + batch], np.float32)))
                feats.append(f.numpy())
                probs.append(F.softmax(self.model.head(f), axis=1).numpy())
        return np.concatenate(feats), np.concatenate(probs)


def accuracy(model: LeNet, images: np.ndarray, labels: np.ndarray, batch: int = 1000) -> float:
    """Share of uint8 [N, 1, 28, 28] images classified correctly."""
    from ..data import to_float

    model.eval()
    right = 0
    with paddle.no_grad():
        for i in range(0, len(images), batch):
            logits = model(paddle.to_tensor(to_float(images[i:i + batch])))
            right += int((logits.argmax(axis=1).numpy() == labels[i:i + batch]).sum())
    return right / len(images)


def train_lenet(dataset: str, root: str = "", epochs: int = 4, batch_size: int = 128, lr: float = 1e-3,
                seed: int = 0, out: str | None = None, limit: int = 0, log=print) -> dict:
    """Train the evaluator on the train split's labels (the first `limit` images if > 0), measure it
    on the test split, and save weights + a .json record (atomically) to `out` (default: the
    package's weights folder)."""
    from ..data import load_idx_dataset, to_float
    from ..files import atomic_write, atomic_write_text

    train = load_idx_dataset(dataset, root, "train", 28, 1, limit=limit)
    test = load_idx_dataset(dataset, root, "test", 28, 1)
    paddle.seed(seed)
    model = LeNet()
    opt = paddle.optimizer.Adam(learning_rate=lr, parameters=model.parameters())
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train.images))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(paddle.to_tensor(to_float(train.images[idx]))),
                                   paddle.to_tensor(train.labels[idx]))
            opt.clear_grad()
            loss.backward()
            opt.step()
        acc = accuracy(model, test.images, test.labels)
        log(f"epoch {epoch + 1}/{epochs}: test accuracy {acc:.4f}")
    out = out or weights_path(dataset)
    info = {"dataset": dataset, "test_accuracy": acc, "train_images": len(train.images),
            "test_images": len(test.images), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
            "feature_dim": FEATURE_DIM, "paddle": paddle.__version__}
    buf = io.BytesIO()
    paddle.save(model.state_dict(), buf)
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    atomic_write_text(os.path.splitext(out)[0] + ".json", json.dumps(info, indent=1) + "\n")
    return dict(info, weights=out)
