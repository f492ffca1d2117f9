"""Each model's own config keys, and the registry of models (model.name).

A model is its keys here (one dataclass, its defaults and comments, its value checks) and its
networks in paddle_gan/gan/models/<name>.py, the file named like the model. This file is all that
reading a config needs, so it never imports the networks; gan/models finds a model's file by its
name in MODELS. A key of another model is an error naming that model (parse.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from .choices import one_of


def _is_power_of_two_times_4(n: int) -> bool:
    k = n // 4
    return n % 4 == 0 and k >= 2 and k & (k - 1) == 0


@dataclass
class ModelKeys:
    """What every model's keys offer the config checks."""
    # common keys (schema.ModelConfig) whose default this model changes, e.g. spectral norm on by default
    COMMON_DEFAULTS: ClassVar[dict] = {}

    def check(self, cfg, need) -> None:
        """Value checks of this model's keys (and of common keys it constrains, such as img_size);
        need(ok, key, message) raises a ConfigError naming the key."""

    def breaks_second_derivatives(self) -> str | None:
        """The key (and why) that makes D not twice differentiable, which a gradient penalty needs;
        None if D is. Paddle's dropout has no second derivative."""
        return "model.dropout" if getattr(self, "dropout", 0.0) else None


def _check_conv_size(cfg, need) -> None:
    s = cfg.model.img_size
    need(_is_power_of_two_times_4(s), "model.img_size",
         f"{cfg.model.name} needs 4 * 2^k pixels (8, 16, 32, 64, ...), got {s}")


G_CONDS = ("concat", "cbn")  # g_cond of the models that offer the choice (gan/models/layers.py has both)


def _check_g_cond(keys, cfg, need) -> None:
    need(keys.g_cond in G_CONDS, "model.g_cond", one_of(keys.g_cond, G_CONDS))
    need(keys.g_cond != "cbn" or cfg.model.num_classes > 0, "model.g_cond",
         "cbn (conditional BatchNorm) needs classes: set model.num_classes (or use g_cond=concat)")


@dataclass
class DCGANKeys(ModelKeys):
    """dcgan: ConvT k4 from z as a 1x1 map (Radford 2015; the pytorch/examples layout)"""
    g_channels: int = 64  # G: width of the last hidden layer; doubles towards z
    d_channels: int = 64  # D: width of the first layer; doubles with depth
    dropout: float = 0.0  # D: dropout after each hidden LeakyReLU
    d_norm: str = "auto"  # D between its convolutions: batch (DCGAN) | none | auto = batch, or none under spectral_norm
    g_cond: str = "concat"  # conditional G: concat (a label embedding joined to z, cGAN) | cbn (conditional BatchNorm)
    D_NORMS: ClassVar[tuple] = ("auto", "batch", "none")  # the choices of d_norm (gan/models/dcgan.py builds them)

    def check(self, cfg, need) -> None:
        _check_conv_size(cfg, need)
        _check_g_cond(self, cfg, need)
        need(self.g_channels >= 1, "model.g_channels", "must be >= 1")
        need(self.d_channels >= 1, "model.d_channels", "must be >= 1")
        need(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        need(self.d_norm in self.D_NORMS, "model.d_norm", one_of(self.d_norm, self.D_NORMS))

    def norm(self, spectral_norm: bool) -> str:
        """d_norm resolved: auto = batch (DCGAN), or none under spectral norm (SNGAN's D has no BN)."""
        return self.d_norm if self.d_norm != "auto" else ("none" if spectral_norm else "batch")


@dataclass
class DenseDCGANKeys(ModelKeys):
    """dcgan_dense: Dense -> 4x4, ConvT k5 (the TensorFlow DCGAN tutorial family, 64x64x3)"""
    g_channels: int = 64  # G: width of the last hidden layer; doubles towards the 4x4 dense output
    d_channels: int = 64  # D: width of the first layer; doubles with depth
    dropout: float = 0.0  # D: dropout after each LeakyReLU (the 64x64 setup: 0.3)

    def check(self, cfg, need) -> None:
        _check_conv_size(cfg, need)
        need(self.g_channels >= 1, "model.g_channels", "must be >= 1")
        need(self.d_channels >= 1, "model.d_channels", "must be >= 1")
        need(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")


@dataclass
class MLPKeys(ModelKeys):
    """mlp: fully connected G and D (Goodfellow 2014, the PyTorch-GAN layout)"""
    g_hidden: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])  # G hidden sizes
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])  # D hidden sizes
    dropout: float = 0.0  # D: dropout after each hidden LeakyReLU

    def check(self, cfg, need) -> None:
        need(len(self.g_hidden) >= 1 and min(self.g_hidden) >= 1, "model.g_hidden", "needs >= 1 positive size")
        need(len(self.d_hidden) >= 1 and min(self.d_hidden) >= 1, "model.d_hidden", "needs >= 1 positive size")
        need(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")


@dataclass
class ResNetKeys(ModelKeys):
    """resnet: the ResNet G and D of SNGAN (Miyato 2018, B.4; StudioGAN's resnet backbone), 32 or 64 px"""
    g_channels: int = 64  # G: width of every residual block (the paper's CIFAR-10 G: 256)
    d_channels: int = 64  # D: width of every residual block (the paper's CIFAR-10 D: 128)
    g_cond: str = "concat"  # conditional G: concat (a label embedding joined to z) | cbn (conditional BatchNorm in every block)
    SIZES: ClassVar[tuple] = (32, 64)  # 64: one more up-sampling block in G and down-sampling block in D
    COMMON_DEFAULTS: ClassVar[dict] = {"spectral_norm": True, "init": "ortho"}  # as SNGAN and StudioGAN train it

    def check(self, cfg, need) -> None:
        need(cfg.model.img_size in self.SIZES, "model.img_size",
             f"resnet builds {' or '.join(map(str, self.SIZES))} pixels, got {cfg.model.img_size}")
        need(self.g_channels >= 1, "model.g_channels", "must be >= 1")
        need(self.d_channels >= 1, "model.d_channels", "must be >= 1")
        _check_g_cond(self, cfg, need)


# model.name -> its keys. Its networks: paddle_gan/gan/models/<name>.py. The one registry of models.
MODELS: dict[str, type] = {
    "dcgan": DCGANKeys,
    "dcgan_dense": DenseDCGANKeys,
    "mlp": MLPKeys,
    "resnet": ResNetKeys,
}


def keys_of(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(MODELS[name])]


def owners(key: str) -> list[str]:
    """The models that have `key` among their own keys."""
    return [name for name in MODELS if key in keys_of(name)]
