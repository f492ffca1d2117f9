"""dcgan_dense: DCGAN-64 of the TensorFlow tutorial family: Dense -> 4x4xC -> ConvT k5 s2 ... -> tanh;
D Conv k5 s2 with LeakyReLU and dropout (no BN) down to 4x4, then Dense -> logit.
A class-conditional G joins a label embedding to z (cGAN)."""
from __future__ import annotations

from paddle import nn

from .layers import (DROPOUT, MODELS, Flatten, Generator, Model, SequentialDiscriminator, conv_sizes, label_joined,
                     num_up, width)


class DenseDCGANGenerator(Generator):
    def __init__(self, z_dim=100, img_size=64, channels=3, g_channels=128):
        super().__init__()
        n = num_up(img_size)
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


class DenseDCGANDiscriminator(SequentialDiscriminator):
    """HEAD = 1: the dense layer; the features are the flattened 4x4 map it reads."""

    def __init__(self, img_size=64, channels=3, d_channels=128, dropout=0.3):
        super().__init__()
        n = num_up(img_size)
        layers, c_in, c = [], channels, d_channels
        for _ in range(n):  # 128 -> 256 -> 512 -> 1024 for the 64 px setup
            layers += [nn.Conv2D(c_in, c, 5, 2, 2), nn.LeakyReLU(0.2)]
            layers += [nn.Dropout(dropout)] if dropout else []
            c_in, c = c, c * 2
        layers += [Flatten(), nn.Linear(c_in * 4 * 4, 1)]  # state size. c_in x 4 x 4 -> 1
        self.net = nn.Sequential(*layers)
        self.feature_dim = c_in * 4 * 4


@MODELS.register("dcgan_dense")
class DenseDCGAN(Model):
    """dcgan_dense: Dense -> 4x4, ConvT k5 (the TensorFlow DCGAN tutorial family, 64x64x3)"""
    keys = {"g_channels": width(64, "G: width of the last hidden layer; doubles towards the 4x4 dense output"),
            "d_channels": width(64, "D: width of the first layer; doubles with depth"),
            "dropout": DROPOUT}
    check = staticmethod(conv_sizes)

    @staticmethod
    def generator(m) -> Generator:
        return label_joined(m, lambda z_in: DenseDCGANGenerator(z_in, m.img_size, m.channels, m.arch.g_channels))

    @staticmethod
    def discriminator(m) -> DenseDCGANDiscriminator:
        return DenseDCGANDiscriminator(m.img_size, m.channels, m.arch.d_channels, m.arch.dropout)
