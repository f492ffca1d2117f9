"""mlp: the fully connected GAN of Goodfellow 2014 (PyTorch-GAN layout), for any image size.
A class-conditional G joins a label embedding to z (cGAN)."""
from __future__ import annotations

from paddle import nn

from .layers import DROPOUT, MODELS, Flatten, Generator, Model, SequentialDiscriminator, label_joined, widths


class MLPGenerator(Generator):
    """Linear + LeakyReLU, BatchNorm from the second layer, tanh."""

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


class MLPDiscriminator(SequentialDiscriminator):
    """flatten -> (Linear + LeakyReLU [+ dropout]) per hidden size -> Linear -> logit."""

    def __init__(self, img_size=28, channels=1, d_hidden=(512, 256), dropout=0.0):
        super().__init__()
        layers, h_in = [Flatten()], channels * img_size * img_size
        for h in d_hidden:
            layers += [nn.Linear(h_in, h), nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])
            h_in = h
        layers += [nn.Linear(h_in, 1)]
        self.net = nn.Sequential(*layers)
        self.feature_dim = h_in


@MODELS.register("mlp")
class MLP(Model):
    """mlp: fully connected G and D (Goodfellow 2014, the PyTorch-GAN layout)"""
    keys = {"g_hidden": widths([128, 256, 512, 1024], "G hidden sizes"),
            "d_hidden": widths([512, 256], "D hidden sizes"),
            "dropout": DROPOUT}

    @staticmethod
    def generator(m) -> Generator:
        return label_joined(m, lambda z_in: MLPGenerator(z_in, m.img_size, m.channels, m.arch.g_hidden))

    @staticmethod
    def discriminator(m) -> MLPDiscriminator:
        return MLPDiscriminator(m.img_size, m.channels, m.arch.d_hidden, m.arch.dropout)
