"""dcgan: the DCGAN G and D (Radford 2015; pytorch/examples layout), for 4 * 2^k pixels. A
class-conditional G joins a label embedding to z (cGAN, g_cond=concat) or conditions every
BatchNorm on it (g_cond=cbn)."""
from __future__ import annotations

from paddle import nn

from ...registry import Key
from .layers import (DROPOUT, G_COND, MODELS, Flatten, Generator, Model, SequentialDiscriminator, batch_norm,
                     check_g_cond, conditioned, conv_sizes, fused_bias, num_up, run, width)


class DCGANGenerator(Generator):
    """z as a 1x1 map -> ConvT k4 -> ... -> tanh. cbn_classes > 0: every BatchNorm is conditional
    BatchNorm on the label (forward(z, y))."""

    def __init__(self, z_dim=100, img_size=32, channels=1, g_channels=64, cbn_classes=0):
        super().__init__()
        n = num_up(img_size)
        c = g_channels * 2 ** (n - 1)
        layers = [  # state size. (g_channels * 2^(n-1)) x 4 x 4
            nn.Conv2DTranspose(z_dim, c, 4, 1, 0, bias_attr=False), batch_norm(c, cbn_classes), nn.ReLU()]
        for _ in range(n - 1):  # each stage: channels / 2, size x 2
            layers += [nn.Conv2DTranspose(c, c // 2, 4, 2, 1, bias_attr=False), batch_norm(c // 2, cbn_classes),
                       nn.ReLU()]
            c //= 2
        layers += [nn.Conv2DTranspose(c, channels, 4, 2, 1), nn.Tanh()]  # state size. channels x img_size x img_size
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def channels_last_layers(self) -> list:
        """The layers that may run on [N, H, W, C] tensors (ops.channels_last): all but the tanh."""
        return list(self.net.children())[:-1]

    def forward(self, z, y=None):
        x = z.reshape([z.shape[0], self.z_dim, 1, 1])
        return self.net(x) if y is None else run(self.net, x, y)


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
                layers += [fused_bias(nn.Conv2D(c, c * 2, 4, 2, 1))]
            layers += [nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])
            c *= 2
        head = nn.Conv2D(c, 1, 4, 1, 0)  # state size. c x 4 x 4 -> 1
        layers += [fused_bias(head) if norm != "batch" else head, Flatten()]
        self.net = nn.Sequential(*layers)
        self.feature_dim = c * 4 * 4

    def channels_last_layers(self) -> list:
        """The layers that may run on [N, H, W, C] tensors (ops.channels_last): the features (the head
        reads them as [N, C, H, W])."""
        return list(self.net.children())[:-self.HEAD]


@MODELS.register("dcgan")
class DCGAN(Model):
    """dcgan: ConvT k4 from z as a 1x1 map (Radford 2015; the pytorch/examples layout)"""
    keys = {"g_channels": width(64, "G: width of the last hidden layer; doubles towards z"),
            "d_channels": width(64, "D: width of the first layer; doubles with depth"),
            "dropout": DROPOUT,
            "d_norm": Key("auto", "D between its convolutions: batch (DCGAN) | none | auto = batch, or none under "
                                  "spectral_norm", choices=("auto", "batch", "none")),
            "g_cond": G_COND}

    @staticmethod
    def check(cfg, need) -> None:
        conv_sizes(cfg, need)
        check_g_cond(cfg, need)

    @staticmethod
    def norm(m) -> str:
        """d_norm resolved: auto = batch (DCGAN), or none under spectral norm (SNGAN's D has no BN)."""
        return m.arch.d_norm if m.arch.d_norm != "auto" else ("none" if m.spectral_norm else "batch")

    @staticmethod
    def generator(m) -> Generator:
        return conditioned(m, lambda z_in, cbn: DCGANGenerator(z_in, m.img_size, m.channels, m.arch.g_channels, cbn))

    @staticmethod
    def discriminator(m) -> DCGANDiscriminator:
        k = m.arch
        return DCGANDiscriminator(m.img_size, m.channels, k.d_channels, k.dropout, norm=DCGAN.norm(m))
