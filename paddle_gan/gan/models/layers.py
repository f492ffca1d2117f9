"""What every model's networks share: the G and D contracts, the label joined to z (cGAN), the
inits of model.init, spectral normalisation, and the reshape that keeps second derivatives.

The contract between the trainer and a model (gan/models/<name>.py):
- G: a Generator; forward(z) or forward(z, y) -> images [N, C, S, S] in [-1, 1] (y: int64 labels of a
  class-conditional G; how the label enters G is the model's choice). statistics_layers(): the layers
  whose running statistics an averaged copy of G must measure for itself (gan/ema.py).
- D: a Discriminator; features(x) -> h (any shape [N, ...]), logit(h) -> [N, 1] raw scores, and
  feature_dim = the size of h flattened: what a projection or classifier head reads (heads.py).
"""
from __future__ import annotations

import math

import paddle
from paddle import nn


class Flatten(nn.Layer):
    """[N, ...] -> [N, features] by reshape: unlike nn.Flatten it has a second derivative, which the
    gradient penalties need (losses.py). No parameters, so state-dict keys are those of nn.Flatten."""

    def forward(self, x):
        return x.reshape([x.shape[0], -1])


class Generator(nn.Layer):
    def statistics_layers(self) -> list:
        """Every BatchNorm of G (conditional BatchNorm's inner one included): their running statistics
        describe G's own activations."""
        return [m for m in self.sublayers() if isinstance(m, nn.layer.norm._BatchNormBase)]


class Discriminator(nn.Layer):
    feature_dim: int

    def features(self, x):
        raise NotImplementedError

    def logit(self, h):
        raise NotImplementedError

    def forward(self, x):
        return self.logit(self.features(x))


class SequentialDiscriminator(Discriminator):
    """A D whose self.net ends in `HEAD` layers that map features to the logit."""
    HEAD = 1

    def features(self, x):
        for layer in list(self.net.children())[:-self.HEAD]:
            x = layer(x)
        return x

    def logit(self, h):
        for layer in list(self.net.children())[-self.HEAD:]:
            h = layer(h)
        return h

    def forward(self, x):
        return self.net(x)


class LabelJoinedToZ(Generator):
    """cGAN (Mirza & Osindero 2014, as PyTorch-GAN's cgan): a learned num_classes-d embedding of the
    label joined to z; G must be built for z_dim + num_classes inputs."""

    def __init__(self, G, num_classes: int):
        super().__init__()
        self.G = G
        self.embed = nn.Embedding(num_classes, num_classes)

    def forward(self, z, y):
        return self.G(paddle.concat([z, self.embed(y)], axis=1))


def num_up(img_size: int) -> int:
    """Stride-2 stages between 4x4 and img_size (img_size = 4 * 2^k)."""
    return int(round(math.log2(img_size // 4)))


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


def _framework_default(model: nn.Layer) -> nn.Layer:
    return model


INITS = {"dcgan": dcgan_init, "paddle": _framework_default}  # model.init


def spectral_norm(model: nn.Layer) -> nn.Layer:
    """Spectral normalisation (one power iteration per forward in training mode) of every weight layer
    of `model`. The power-iteration vectors are buffers (weight_u, weight_v): saved and restored with
    the state dict, so a resume continues them exactly."""
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Linear, nn.Embedding)):
            paddle.nn.utils.spectral_norm(layer)
    return model


def call(net, x, y=None):
    """net(x), or net(x, y) for a class-conditional G or D."""
    return net(x) if y is None else net(x, y)
