"""Generator and discriminator networks, their initialisation, and the one builder from config.

All discriminators return raw logits of shape [N, 1]; the loss applies the sigmoid (stable BCE).
Generators map z of shape [N, z_dim] to images of shape [N, channels, img_size, img_size] in [-1, 1].
Each D is a `trunk` (image -> features) and a `head` (features -> logit), so that conditional.py
can add a label projection or a class head on the same features. The builder adds spectral
normalisation (model.spectral_norm) and the class condition (model.num_classes) to any of them.
"""
from __future__ import annotations

import math

import paddle
from paddle import nn

from .conditional import CONDITIONAL_D, ConditionalGenerator


class Flatten(nn.Layer):
    """[N, ...] -> [N, features] by reshape: unlike nn.Flatten it has a second derivative, which the
    gradient penalties need (losses.py). No parameters, so state-dict keys are those of nn.Flatten."""

    def forward(self, x):
        return x.reshape([x.shape[0], -1])


class Discriminator(nn.Layer):
    """self.net ends in `HEAD` layers that map features to one logit; the layers before are the trunk."""
    HEAD = 1

    def trunk(self, x):
        for layer in list(self.net.children())[:-self.HEAD]:
            x = layer(x)
        return x

    def head(self, h):
        for layer in list(self.net.children())[-self.HEAD:]:
            h = layer(h)
        return h

    def forward(self, x):
        return self.net(x)


def _num_up(img_size: int) -> int:
    """Stride-2 stages between 4x4 and img_size (img_size = 4 * 2^k)."""
    return int(round(math.log2(img_size // 4)))


class DCGANGenerator(nn.Layer):
    """DCGAN G (Radford 2015; pytorch/examples layout): z as 1x1 map -> ConvT k4 -> ... -> tanh."""

    def __init__(self, z_dim=100, img_size=32, channels=1, g_channels=64):
        super().__init__()
        n = _num_up(img_size)
        c = g_channels * 2 ** (n - 1)
        layers = [  # state size. (g_channels * 2^(n-1)) x 4 x 4
            nn.Conv2DTranspose(z_dim, c, 4, 1, 0, bias_attr=False), nn.BatchNorm2D(c), nn.ReLU()]
        for _ in range(n - 1):  # each stage: channels / 2, size x 2
            layers += [nn.Conv2DTranspose(c, c // 2, 4, 2, 1, bias_attr=False), nn.BatchNorm2D(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2DTranspose(c, channels, 4, 2, 1), nn.Tanh()]  # state size. channels x img_size x img_size
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z):
        return self.net(z.reshape([z.shape[0], self.z_dim, 1, 1]))


class DCGANDiscriminator(Discriminator):
    """DCGAN D: Conv k4 s2 (no BN on the first layer) ... -> 4x4 -> Conv k4 valid -> logit.
    norm="none" leaves BatchNorm out (the convolutions then get biases), for spectral norm and WGAN-GP."""
    HEAD = 2  # the 4x4 valid convolution and the flatten

    def __init__(self, img_size=32, channels=1, d_channels=64, dropout=0.0, norm="batch"):
        super().__init__()
        n = _num_up(img_size)
        c = d_channels
        layers = [nn.Conv2D(channels, c, 4, 2, 1, bias_attr=False), nn.LeakyReLU(0.2)]  # c x img_size/2
        layers += [nn.Dropout(dropout)] if dropout else []
        for _ in range(n - 1):  # each stage: channels x 2, size / 2
            if norm == "batch":
                layers += [nn.Conv2D(c, c * 2, 4, 2, 1, bias_attr=False), nn.BatchNorm2D(c * 2)]
            else:
                layers += [nn.Conv2D(c, c * 2, 4, 2, 1)]
            layers += [nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])
            c *= 2
        layers += [nn.Conv2D(c, 1, 4, 1, 0), Flatten()]  # state size. c x 4 x 4 -> 1
        self.net = nn.Sequential(*layers)
        self.feature_dim = c * 4 * 4


class DenseDCGANGenerator(nn.Layer):
    """DCGAN-64 of the TensorFlow tutorial family: Dense -> 4x4xC -> ConvT k5 s2 ... -> tanh."""

    def __init__(self, z_dim=100, img_size=64, channels=3, g_channels=128):
        super().__init__()
        n = _num_up(img_size)
        c = g_channels * 2 ** (n - 1)
        self.c0 = c
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * 4 * c, bias_attr=False), nn.BatchNorm1D(4 * 4 * c), nn.ReLU())
        layers = []  # state size. c x 4 x 4 (1024 x 4 x 4 for the 64 px setup)
        for _ in range(n - 1):
            layers += [nn.Conv2DTranspose(c, c // 2, 5, 2, 2, output_padding=1, bias_attr=False),
                       nn.BatchNorm2D(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2DTranspose(c, channels, 5, 2, 2, output_padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        h = self.fc(z)
        return self.net(h.reshape([z.shape[0], self.c0, 4, 4]))


class DenseDCGANDiscriminator(Discriminator):
    """Conv k5 s2 with LeakyReLU and dropout (no BN) down to 4x4, then Dense -> logit."""

    def __init__(self, img_size=64, channels=3, d_channels=128, dropout=0.3):
        super().__init__()
        n = _num_up(img_size)
        layers, c_in, c = [], channels, d_channels
        for _ in range(n):  # 128 -> 256 -> 512 -> 1024 for the 64 px setup
            layers += [nn.Conv2D(c_in, c, 5, 2, 2), nn.LeakyReLU(0.2)]
            layers += [nn.Dropout(dropout)] if dropout else []
            c_in, c = c, c * 2
        layers += [Flatten(), nn.Linear(c_in * 4 * 4, 1)]  # state size. c_in x 4 x 4 -> 1
        self.net = nn.Sequential(*layers)
        self.feature_dim = c_in * 4 * 4


class MLPGenerator(nn.Layer):
    """Goodfellow-2014-style MLP G: Linear + LeakyReLU, BatchNorm from the second layer, tanh."""

    def __init__(self, z_dim=100, img_size=28, channels=1, g_hidden=(128, 256, 512, 1024)):
        super().__init__()
        layers, h_in = [], z_dim
        for i, h in enumerate(g_hidden):
            layers += [nn.Linear(h_in, h)] + ([nn.BatchNorm1D(h)] if i > 0 else []) + [nn.LeakyReLU(0.2)]
            h_in = h
        layers += [nn.Linear(h_in, channels * img_size * img_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.shape = [channels, img_size, img_size]

    def forward(self, z):
        return self.net(z).reshape([z.shape[0]] + self.shape)


class MLPDiscriminator(Discriminator):
    """MLP D: flatten -> (Linear + LeakyReLU [+ dropout]) per hidden size -> Linear -> logit."""

    def __init__(self, img_size=28, channels=1, d_hidden=(512, 256), dropout=0.0):
        super().__init__()
        layers, h_in = [Flatten()], channels * img_size * img_size
        for h in d_hidden:
            layers += [nn.Linear(h_in, h), nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])
            h_in = h
        layers += [nn.Linear(h_in, 1)]
        self.net = nn.Sequential(*layers)
        self.feature_dim = h_in


def dcgan_init(model: nn.Layer) -> nn.Layer:
    """DCGAN paper init: conv/linear weights N(0, 0.02), BN weights N(1, 0.02), all biases 0."""
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, nn.Linear)):
            layer.weight.set_value(paddle.normal(0.0, 0.02, layer.weight.shape))
        elif isinstance(layer, (nn.BatchNorm1D, nn.BatchNorm2D)):
            layer.weight.set_value(paddle.normal(1.0, 0.02, layer.weight.shape))
        else:
            continue
        if layer.bias is not None:
            layer.bias.set_value(paddle.zeros(layer.bias.shape))
    return model


# model.name -> (generator class, discriminator class, which ModelConfig keys each takes)
MODELS = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator, ("g_channels",), ("d_channels", "dropout")),
    "dcgan_dense": (DenseDCGANGenerator, DenseDCGANDiscriminator, ("g_channels",), ("d_channels", "dropout")),
    "mlp": (MLPGenerator, MLPDiscriminator, ("g_hidden",), ("d_hidden", "dropout")),
}
# the model names whose G and D have convolutions (what train.conv applies to)
CONVOLUTIONAL = ("dcgan", "dcgan_dense")


def d_norm(m) -> str:
    """model.d_norm resolved: auto = batch (DCGAN), or none under spectral norm (SNGAN's D has no BN)."""
    return m.d_norm if m.d_norm != "auto" else ("none" if m.spectral_norm else "batch")


def spectral_norm(model: nn.Layer) -> nn.Layer:
    """Spectral normalisation (one power iteration per forward in training mode) of every weight layer
    of `model`. The power-iteration vectors are buffers (weight_u, weight_v): saved and restored with
    the state dict, so a resume continues them exactly."""
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Linear, nn.Embedding)):
            paddle.nn.utils.spectral_norm(layer)
    return model


def _build_generator(m) -> nn.Layer:
    G_cls, _, g_keys, _ = MODELS[m.name]
    G = G_cls(z_dim=m.z_dim + m.num_classes, img_size=m.img_size, channels=m.channels,
              **{k: getattr(m, k) for k in g_keys})
    G = ConditionalGenerator(G, m.num_classes) if m.num_classes else G
    return dcgan_init(G) if m.init == "dcgan" else G


# Paddle names parameters from a process-wide counter, and optimizer state (.pdopt) is keyed by
# those names; building under a fresh name scope gives the same names in every process and on
# every rebuild, so saved optimizer state always matches.
def build_generator(m) -> nn.Layer:
    """Generator from a ModelConfig, named and initialised exactly as build_models names it."""
    with paddle.utils.unique_name.guard():
        return _build_generator(m)


def build_models(m) -> tuple[nn.Layer, nn.Layer]:
    """(G, D) from a ModelConfig; G is built (and initialised from the Paddle RNG) first, then D.
    Conditional models (model.num_classes) take the label as a second input (conditional.py)."""
    _, D_cls, _, d_keys = MODELS[m.name]
    with paddle.utils.unique_name.guard():
        G = _build_generator(m)
        D = D_cls(img_size=m.img_size, channels=m.channels, **{k: getattr(m, k) for k in d_keys},
                  **({"norm": d_norm(m)} if m.name == "dcgan" else {}))
        D = CONDITIONAL_D[m.d_cond](D, m.num_classes) if m.num_classes else D
        D = dcgan_init(D) if m.init == "dcgan" else D
        return G, (spectral_norm(D) if m.spectral_norm else D)
