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


class ConditionalBatchNorm2D(nn.Layer):
    """Conditional BatchNorm (de Vries 2017; Miyato & Koyama 2018, as BigGAN and StudioGAN): batch
    statistics without an affine of their own, then a gain and a bias per class, learned as
    embeddings (gain 1, bias 0 at the start, so it starts as plain BatchNorm)."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2D(num_features, weight_attr=False, bias_attr=False)
        self.gain = nn.Embedding(num_classes, num_features,
                                 weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)))
        self.bias = nn.Embedding(num_classes, num_features,
                                 weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)))

    def forward(self, x, y):
        return self.bn(x) * self.gain(y).unsqueeze([2, 3]) + self.bias(y).unsqueeze([2, 3])


def batch_norm(num_features: int, num_classes: int = 0) -> nn.Layer:
    """BatchNorm2D, or with num_classes its class-conditional form."""
    return ConditionalBatchNorm2D(num_features, num_classes) if num_classes else nn.BatchNorm2D(num_features)


def run(layers, x, y=None):
    """x through a sequence of layers, giving the labels to those that take them (conditional
    BatchNorm, or blocks that hold one)."""
    for layer in layers:
        x = layer(x, y) if getattr(layer, "takes_labels", False) or isinstance(layer, ConditionalBatchNorm2D) \
            else layer(x)
    return x


def _concat(m, build):
    G = build(m.z_dim + m.num_classes, 0)
    return LabelJoinedToZ(G, m.num_classes) if m.num_classes else G


def _cbn(m, build):
    return build(m.z_dim, m.num_classes)


G_CONDS = {"concat": _concat, "cbn": _cbn}  # model.g_cond: how the label enters a G that offers the choice


def conditioned(m, build) -> Generator:
    """The G of a model that offers model.g_cond: build(z inputs, classes of its conditional BatchNorm,
    0 = plain BatchNorm) made as g_cond says (unconditional: build(z_dim, 0))."""
    return G_CONDS[m.arch.g_cond](m, build) if m.num_classes else build(m.z_dim, 0)


def num_up(img_size: int) -> int:
    """Stride-2 stages between 4x4 and img_size (img_size = 4 * 2^k)."""
    return int(round(math.log2(img_size // 4)))


def dcgan_init(model: nn.Layer) -> nn.Layer:
    """DCGAN paper init: conv/linear weights N(0, 0.02), BN weights N(1, 0.02), all biases 0."""
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, nn.Linear)):
            layer.weight.set_value(paddle.normal(0.0, 0.02, layer.weight.shape))
        elif isinstance(layer, (nn.BatchNorm1D, nn.BatchNorm2D)) and layer.weight is not None:
            layer.weight.set_value(paddle.normal(1.0, 0.02, layer.weight.shape))
        else:
            continue
        if layer.bias is not None:
            layer.bias.set_value(paddle.zeros(layer.bias.shape))
    return model


def orthogonal_init(model: nn.Layer) -> nn.Layer:
    """Orthogonal conv/linear weights, biases 0 (Saxe 2014; StudioGAN's "ortho" for its ResNets);
    BatchNorm and embeddings keep theirs."""
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, nn.Linear)):
            nn.initializer.Orthogonal()(layer.weight)
            if layer.bias is not None:
                layer.bias.set_value(paddle.zeros(layer.bias.shape))
    return model


def _framework_default(model: nn.Layer) -> nn.Layer:
    return model


INITS = {"dcgan": dcgan_init, "paddle": _framework_default, "ortho": orthogonal_init}  # model.init


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
