"""What every model's networks share: the registry of models and what a model is (Model), the G and
D contracts, the label joined to z (cGAN), the inits of model.init, spectral normalisation, and the
reshape that keeps second derivatives.

A model (gan/models/<name>.py) is a Model subclass registered with @MODELS.register(name): its own
config keys (`keys`, model.<key> in a config, m.arch.<key> in code) and its checks, generator(m) and
discriminator(m). The contract between the trainer and its networks:
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

from ...registry import MAX_WIDTH, Key, Registry

MODELS = Registry("model", chooser="model.name")  # model.name -> its Model (registered in its own file)
INITS = Registry("init", chooser="model.init")
G_CONDS = Registry("g_cond", chooser="model.g_cond")  # how the label enters a G that offers the choice


class Model:
    """A model: its own keys and its networks (each method gets the model section m; m.arch holds
    the model's own keys)."""
    keys: dict = {}  # its own config keys (model.<key>): registry.Key each
    common_defaults: dict = {}  # common model keys whose default it changes, e.g. spectral norm on
    styled: bool = False  # its G has styles(z) -> ws and synthesis(ws) (a mapping network: path length terms)

    @staticmethod
    def check(cfg, need) -> None:
        """Checks beyond the keys' bounds and choices (e.g. the image sizes it builds); need(ok, key,
        message) raises a ConfigError naming the key."""

    @staticmethod
    def generator(m):
        raise NotImplementedError

    @staticmethod
    def discriminator(m):
        raise NotImplementedError

    @staticmethod
    def prepare_training(G, D, cfg) -> None:
        """Give the freshly built networks what training (not the model section) decides, e.g. a G's
        style mixing; nothing by default."""

    @staticmethod
    def breaks_second_derivatives(m) -> str | None:
        """The key that makes D not twice differentiable (a gradient penalty needs it to be), or None.
        Paddle's dropout has no second derivative."""
        return "model.dropout" if getattr(m.arch, "dropout", 0.0) else None


def width(default: int, doc: str) -> Key:
    """A layer width key."""
    return Key(default, doc, low=1, high=MAX_WIDTH)


def widths(default: list, doc: str) -> Key:
    """A key of a list of layer widths (one at least)."""
    return Key(default, doc, low=1, high=MAX_WIDTH, type=list[int])


DROPOUT = Key(0.0, "D: dropout after each hidden LeakyReLU", low=0.0, high=0.999)
G_COND = Key("concat", "conditional G: concat (a label embedding joined to z, cGAN) | cbn (conditional BatchNorm)",
             choices=G_CONDS)


def conv_sizes(cfg, need) -> None:
    """The image sizes a model of stride-2 stages from 4x4 builds: 4 * 2^k (8, 16, 32, 64, ...)."""
    s, k = cfg.model.img_size, cfg.model.img_size // 4
    need(s % 4 == 0 and k >= 2 and k & (k - 1) == 0, "model.img_size",
         f"{cfg.model.name} needs 4 * 2^k pixels (8, 16, 32, 64, ...), got {s}")


def check_g_cond(cfg, need) -> None:
    need(cfg.model.arch.g_cond == "concat" or cfg.model.num_classes > 0, "model.g_cond",
         "cbn (conditional BatchNorm) needs classes: set model.num_classes (or use g_cond=concat)")


def fused_bias(layer):
    """Mark a convolution so that the oneDNN operator adds its bias inside the primitive (and takes the
    bias gradient from its backward-weights primitive): Paddle's broadcast add and its reduction cost
    more than the convolution at these sizes (a fifth of a WGAN-GP step). Same parameters and state
    dict; float rounding differs from the add outside, so only models that trained this way from the
    start use it (the seed configs keep the add outside, e.g. DCGAN's head with BatchNorm in D)."""
    layer.fuse_bias = True
    return layer


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


@G_CONDS.register("concat")
def _concat(m, build):
    G = build(m.z_dim + m.num_classes, 0)
    return LabelJoinedToZ(G, m.num_classes) if m.num_classes else G


def label_joined(m, build) -> Generator:
    """build(z inputs) as it is, or with m.num_classes as a cGAN: a label embedding joined to z (the G
    of a model that offers no other conditioning)."""
    return _concat(m, lambda z_in, cbn: build(z_in))


@G_CONDS.register("cbn")
def _cbn(m, build):
    return build(m.z_dim, m.num_classes)


def conditioned(m, build) -> Generator:
    """The G of a model that offers model.g_cond: build(z inputs, classes of its conditional BatchNorm,
    0 = plain BatchNorm) made as g_cond says (unconditional: build(z_dim, 0))."""
    return G_CONDS[m.arch.g_cond](m, build) if m.num_classes else build(m.z_dim, 0)


def num_up(img_size: int) -> int:
    """Stride-2 stages between 4x4 and img_size (img_size = 4 * 2^k)."""
    return int(round(math.log2(img_size // 4)))


@INITS.register("dcgan")
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


@INITS.register("ortho")
def orthogonal_init(model: nn.Layer) -> nn.Layer:
    """Orthogonal conv/linear weights, biases 0 (Saxe 2014; StudioGAN's "ortho" for its ResNets);
    BatchNorm and embeddings keep theirs."""
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, nn.Linear)):
            nn.initializer.Orthogonal()(layer.weight)
            if layer.bias is not None:
                layer.bias.set_value(paddle.zeros(layer.bias.shape))
    return model


@INITS.register("paddle")
def _framework_default(model: nn.Layer) -> nn.Layer:
    return model


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
