"""InceptionV3 of the FID variant (the TensorFlow 2015-12-05 graph that FID numbers in papers use, as
ported by pytorch-fid): 2048-d pool features for FID/KID/PR/DC and, when the 1008-way classifier is in
the weights, class probabilities for the Inception Score.

The layer names are pytorch-fid's (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.weight, ...), so
its weight file converts key for key. Weights come from a file the user gives (--inception-weights:
a Paddle .pdparams, or pytorch-fid's .pth read with torch), else they are downloaded once into
~/.cache/paddle_gan/ (a clear one-line error offline).
"""
from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .. import safepickle
from ..files import sha256_of

# Paddle port of the FID weights (PaddleGAN's mirror); pytorch-fid's .pth is accepted too.
WEIGHTS_URL = "https://paddlegan.bj.bcebos.com/InceptionV3.pdparams"
FEATURE_DIM = 2048


class ConvBN(nn.Layer):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=padding, bias_attr=False)
        self.bn = nn.BatchNorm2D(cout, epsilon=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):  # count_include_pad=False, as in the TF graph (pytorch-fid's FIDInception blocks)
    return F.avg_pool2d(x, 3, stride=1, padding=1, exclusive=True)


class InceptionA(nn.Layer):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = ConvBN(cin, 48, 1), ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x):
        return paddle.concat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                              self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                              self.branch_pool(_avg3(x))], axis=1)


class InceptionB(nn.Layer):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return paddle.concat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                              F.max_pool2d(x, 3, stride=2)], axis=1)


class InceptionC(nn.Layer):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return paddle.concat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], axis=1)


class InceptionD(nn.Layer):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = ConvBN(cin, 192, 1), ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return paddle.concat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], axis=1)


class InceptionE(nn.Layer):
    """pool='avg' for Mixed_7b; 'max' for Mixed_7c (a quirk of the TF graph that FID keeps)."""

    def __init__(self, cin, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return paddle.concat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                              self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], axis=1)


class FIDInceptionV3(nn.Layer):
    """[N, 3, H, W] in [-1, 1] -> ([N, 2048] pool features, [N, 1008] logits or None)."""

    def __init__(self, with_classifier: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, "avg"), InceptionE(2048, "max")
        self.fc = nn.Linear(FEATURE_DIM, 1008) if with_classifier else None

    def forward(self, x):
        x = F.interpolate(x, size=[299, 299], mode="bilinear", align_corners=False)
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        feats = x.mean(axis=[2, 3])
        # the classifier's logits without its bias, as the Inception Score's reference code (Salimans et
        # al.'s TF code: pool3 times softmax/logits/MatMul's weights) and torch-fidelity compute them
        return feats, (paddle.matmul(feats, self.fc.weight) if self.fc is not None else None)


def convert_state_dict(sd: dict) -> dict:
    """pytorch-fid / PaddleGAN key layouts -> ours: BN running stats renamed, bookkeeping dropped,
    Linear weights transposed from torch's [out, in] to Paddle's [in, out]."""
    out = {}
    for key, value in sd.items():
        value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if key.endswith("num_batches_tracked"):
            continue
        key = key.replace("running_mean", "_mean").replace("running_var", "_variance")
        if key == "fc.weight" and value.shape == (1008, FEATURE_DIM):
            value = value.T
        out[key] = value
    return out


MAX_WEIGHTS_BYTES = 256 << 20  # the FID Inception weights are 91-104 MB; a bigger file is refused unread


def _read_weights(path: str) -> dict:
    from ..data import DataError
    from ..files import read_limited

    data = read_limited(path, MAX_WEIGHTS_BYTES, "FID Inception weights")
    if path.endswith((".pth", ".pt")):
        try:
            import torch
        except ImportError:
            raise DataError(f"{path}: a PyTorch file; reading it needs torch (pip install torch), "
                            f"or give a .pdparams") from None
        try:  # weights_only: torch's own restricted unpickler (tensors and containers, no code)
            import io

            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:
            raise DataError(f"{path}: cannot read Inception weights ({str(e).strip().splitlines()[0][:200]})") from None
    try:
        return safepickle.load_state_dict(data)
    except safepickle.RefusedPickle as e:
        raise DataError(f"{path}: refused to load: {e}") from None
    except Exception as e:
        raise DataError(f"{path}: cannot read Inception weights ({type(e).__name__})") from None


def load_inception(path: str | None = None) -> FIDInceptionV3:
    """The FID InceptionV3 in eval mode with weights from `path`, else from the cache or the mirror."""
    from ..data import DataError, cache_dir, download

    if path is None:
        path = os.path.join(cache_dir(), "InceptionV3.pdparams")
        if not os.path.isfile(path):
            try:
                download(WEIGHTS_URL, path, md5=None)
            except DataError as e:
                raise DataError(f"Inception weights: {e}; give a file with --inception-weights "
                                f"(pytorch-fid's pt_inception-2015-12-05-6726825d.pth or a Paddle .pdparams)") from None
    elif not os.path.isfile(path):
        raise DataError(f"{path}: no such Inception weights file")
    sd = convert_state_dict(_read_weights(path))
    model = FIDInceptionV3(with_classifier="fc.weight" in sd)
    missing = sorted(set(model.state_dict()) - set(sd))
    if missing:
        raise DataError(f"{path}: not FID InceptionV3 weights ({len(missing)} keys missing, e.g. {missing[0]})")
    model.set_state_dict({k: sd[k] for k in model.state_dict()})
    model.eval()
    return model


class InceptionExtractor:
    name = "inception"

    def __init__(self, path: str | None = None, model: FIDInceptionV3 | None = None):
        from ..data import cache_dir

        self.model = model or load_inception(path)
        self.info = {"weights": path or WEIGHTS_URL}
        self.weights = os.path.abspath(path or os.path.join(cache_dir(), "InceptionV3.pdparams"))
        self.sha256 = sha256_of(self.weights) if model is None else "in-memory"

    def features_and_probs(self, images: np.ndarray, batch: int = 50, on_batch=None):
        feats, probs = [], []
        with paddle.no_grad():
            for i in range(0, len(images), batch):
                if on_batch:
                    on_batch(len(images[i:i + batch]))
                x = paddle.to_tensor(np.asarray(images[i:i + batch], np.float32))
                if x.shape[1] == 1:
                    x = x.tile([1, 3, 1, 1])
                f, logits = self.model(x)
                feats.append(f.numpy())
                if logits is not None:
                    probs.append(F.softmax(logits, axis=1).numpy())
        return np.concatenate(feats), (np.concatenate(probs) if probs else None)
