"""dcgan: the DCGAN G and D (Radford 2015; pytorch/examples layout), for 4 * 2^k pixels.
Keys: config/models.py DCGANKeys. A class-conditional G joins a label embedding to z (cGAN)."""
from __future__ import annotations

from paddle import nn

from .layers import Flatten, Generator, LabelJoinedToZ, SequentialDiscriminator, num_up


class DCGANGenerator(Generator):
    """z as a 1x1 map -> ConvT k4 -> ... -> tanh."""

    def __init__(self, z_dim=100, img_size=32, channels=1, g_channels=64):
        super().__init__()
        n = num_up(img_size)
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


class DCGANDiscriminator(SequentialDiscriminator):
    """Conv k4 s2 (no BN on the first layer) ... -> 4x4 -> Conv k4 valid -> logit.
    norm="none" leaves BatchNorm out (the convolutions then get biases), for spectral norm and WGAN-GP."""
    HEAD = 2  # the 4x4 valid convolution and the flatten; the features are the 4x4 map it reads

    def __init__(self, img_size=32, channels=1, d_channels=64, dropout=0.0, norm="batch"):
        super().__init__()
        n = num_up(img_size)
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


def generator(m) -> Generator:
    G = DCGANGenerator(m.z_dim + m.num_classes, m.img_size, m.channels, m.arch.g_channels)
    return LabelJoinedToZ(G, m.num_classes) if m.num_classes else G


def discriminator(m) -> DCGANDiscriminator:
    k = m.arch
    return DCGANDiscriminator(m.img_size, m.channels, k.d_channels, k.dropout, norm=k.norm(m.spectral_norm))
