"""stylegan2: StyleGAN2 (Karras et al. 2020) at small resolutions, config F's design: a mapping network
z -> w (8 layers, learning-rate multiplier 0.01, a running mean of w for truncation); synthesis from a
learned 4x4 constant through modulated, demodulated 3x3 convolutions with noise inputs, toRGB at every
resolution summed through x2 upsampling (the skip architecture); D of residual blocks with the
minibatch standard-deviation layer before its 4x4 epilogue. Equalized learning rate and lReLU 0.2
(gain sqrt 2) throughout; layers in stylegan2_layers.py. Unconditional.

Widths: g_channels / d_channels at the image's own resolution, doubling at every halving towards
4x4, capped at max_channels. Training-time parts: style mixing (train.style_mixing, in G's forward,
from Paddle's RNG that the trainer seeds per step) and truncation (G.truncation_psi: tools/generate.py
--truncation). Its objective terms are gan/path_length.py's (path length regularisation) and lazy R1;
the configs set them (configs/stylegan2_*.yaml).
"""
from __future__ import annotations

import math

import paddle
from paddle import nn

from ...registry import Key, declare
from .layers import MODELS, Discriminator, Generator, Model, num_up, width
from .stylegan2_layers import (EqualConv, EqualLinear, Mapping, MinibatchStd, ModulatedConv, ToRGB, _normal,
                               upsample2d)

declare("train", "stylegan2", style_mixing=Key(
    0.9, "stylegan2: the share of G's batches drawn with two w (mixing regularisation; 0 = off)", low=0, high=1))


def _channels(base: int, img_size: int, res: int, cap: int) -> int:
    return min(base * (img_size // res), cap)


class StyleGAN2Generator(Generator):
    def __init__(self, z_dim: int, w_dim: int, img_size: int, channels: int, base: int, cap: int, mapping_layers: int):
        super().__init__()
        res = [4 * 2 ** i for i in range(num_up(img_size) + 1)]  # 4, 8, ..., img_size
        ch = {r: _channels(base, img_size, r, cap) for r in res}
        self.mapping = Mapping(z_dim, w_dim, mapping_layers)
        self.const = _normal([1, ch[4], 4, 4])
        self.convs = nn.LayerList()
        self.torgbs = nn.LayerList([ToRGB(ch[r], channels, w_dim) for r in res])
        for r in res:  # state size. ch[r] x r x r
            if r > 4:
                self.convs.append(ModulatedConv(ch[r // 2], ch[r], w_dim, r, up=True))
            self.convs.append(ModulatedConv(ch[r], ch[r], w_dim, r))
        self.num_ws = len(self.convs) + 1  # each conv its own w, the last toRGB one more
        self.style_mixing, self.truncation_psi = 0.0, 1.0  # (set by train.style_mixing / --truncation)

    def styles(self, z):
        """[N, num_ws, w_dim]: w of each layer; in training, with probability style_mixing the layers
        from a random crossover on take the w of another z (drawn from Paddle's RNG); in eval mode
        pulled towards w_avg by truncation_psi."""
        w = self.mapping(z)
        ws = paddle.tile(w.unsqueeze(1), [1, self.num_ws, 1])
        if self.training and self.style_mixing > 0:
            cutoff = paddle.randint(1, self.num_ws, [1]).astype("float32")
            cutoff = paddle.where(paddle.rand([1]) < self.style_mixing, cutoff, paddle.full([1], float(self.num_ws)))
            other = self.mapping(paddle.randn(z.shape), update_w_avg=False)
            first = (paddle.arange(self.num_ws, dtype="float32") < cutoff).astype("float32").reshape([1, -1, 1])
            ws = ws * first + other.unsqueeze(1) * (1.0 - first)
        if not self.training and self.truncation_psi != 1.0:
            avg = self.mapping.w_avg.reshape([1, 1, -1])
            ws = avg + self.truncation_psi * (ws - avg)
        return ws

    def synthesis(self, ws):
        x = paddle.tile(self.const, [ws.shape[0], 1, 1, 1])
        img, k = None, 0
        for i, torgb in enumerate(self.torgbs):
            for conv in self.convs[k:k + (1 if i == 0 else 2)]:  # (the 4x4 block has no upsampling conv)
                x = conv(x, ws[:, k])
                k += 1
            y = torgb(x, ws[:, k])  # (shares its w with the next block's first conv)
            img = y if img is None else upsample2d(img) + y
        return img

    def forward(self, z):
        return self.synthesis(self.styles(z))


class DBlock(nn.Layer):
    """A residual D block: conv 3x3, conv 3x3 down, and a 1x1 down skip, summed times sqrt(1/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0, self.conv1 = EqualConv(c_in, c_in, 3), EqualConv(c_in, c_out, 3, down=True)
        self.skip = EqualConv(c_in, c_out, 1, bias=False, act=False, down=True)

    def forward(self, x):
        return self.skip(x, gain=math.sqrt(0.5)) + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class StyleGAN2Discriminator(Discriminator):
    def __init__(self, img_size: int, channels: int, base: int, cap: int):
        super().__init__()
        res = [img_size // 2 ** i for i in range(num_up(img_size) + 1)]  # img_size, ..., 4
        ch = {r: _channels(base, img_size, r, cap) for r in res}
        self.fromrgb = EqualConv(channels, ch[img_size], 1)
        self.blocks = nn.Sequential(*[DBlock(ch[r], ch[r // 2]) for r in res[:-1]])  # state size. ch[4] x 4 x 4
        self.mbstd = MinibatchStd()
        self.conv = EqualConv(ch[4] + 1, ch[4], 3)
        self.fc = EqualLinear(ch[4] * 16, ch[4], act=True)
        self.out = EqualLinear(ch[4], 1)
        self.feature_dim = ch[4]

    def features(self, x):
        x = self.conv(self.mbstd(self.blocks(self.fromrgb(x))))
        return self.fc(x.reshape([x.shape[0], -1]))

    def logit(self, h):
        return self.out(h)


@MODELS.register("stylegan2")
class StyleGAN2(Model):
    """stylegan2: mapping network, modulated convolutions, noise, skip G; residual D (Karras 2020), 32 or 64 px"""
    keys = {"w_dim": width(256, "the intermediate latent w's size (config F: 512)"),
            "mapping_layers": Key(8, "fully connected layers from z to w (config F: 8)", low=1, high=32),
            "g_channels": width(64, "G: width at the image's resolution; doubles at every halving towards 4x4"),
            "d_channels": width(64, "D: width at the image's resolution; doubles at every halving towards 4x4"),
            "max_channels": width(256, "the widest any layer of G or D gets (config F: 512)")}
    common_defaults = {"init": "paddle"}  # its layers initialise themselves: weights N(0, 1), equalized at run time
    styled = True
    SIZES = (32, 64)

    @staticmethod
    def check(cfg, need) -> None:
        m = cfg.model
        need(m.img_size in StyleGAN2.SIZES, "model.img_size",
             f"stylegan2 builds {' or '.join(map(str, StyleGAN2.SIZES))} pixels, got {m.img_size}")
        need(m.num_classes == 0, "model.num_classes", "stylegan2 here is unconditional (0)")
        need(not m.spectral_norm, "model.spectral_norm", "stylegan2's D has equalized learning rate, not spectral norm")

    @staticmethod
    def generator(m) -> StyleGAN2Generator:
        k = m.arch
        return StyleGAN2Generator(m.z_dim, k.w_dim, m.img_size, m.channels, k.g_channels, k.max_channels,
                                  k.mapping_layers)

    @staticmethod
    def discriminator(m) -> StyleGAN2Discriminator:
        return StyleGAN2Discriminator(m.img_size, m.channels, m.arch.d_channels, m.arch.max_channels)

    @staticmethod
    def prepare_training(G, D, cfg) -> None:
        G.style_mixing = cfg.train.style_mixing
