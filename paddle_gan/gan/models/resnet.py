"""resnet: the ResNet G and D of SNGAN for 32x32 (Miyato et al. 2018, appendix B.4; StudioGAN's
`resnet` backbone), and 64x64 with one more block each. By default D has spectral norm and both start
from orthogonal weights, as SNGAN and StudioGAN train them.

    G: z -> linear -> 4x4 x C -> up-blocks (4 -> 8 -> 16 -> 32 [-> 64]) -> BN, ReLU, conv3x3, tanh
       up-block: BN, ReLU, upsample x2, conv3x3, BN, ReLU, conv3x3; shortcut: upsample x2, conv1x1
    D: optimised block (conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool, conv1x1), down-blocks,
       two blocks at the same size, ReLU, global sum pooling -> linear
       down-block: ReLU, conv3x3, ReLU, conv3x3, avgpool; shortcut conv1x1, avgpool

A conditional G joins a label embedding to z (g_cond=concat) or has conditional BatchNorm in every
block (g_cond=cbn); a conditional D's projection or class head reads the pooled features.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ... import ops

from .layers import (G_COND, MODELS, Discriminator, Generator, Model, batch_norm, check_g_cond, conditioned, fused_bias,
                     num_up, run, width)


# Sampling folded into the convolution, exactly (up to float rounding): nearest x2 up-sampling then a
# 3x3 convolution is a 4x4 stride-2 transposed convolution with the kernel A W A^T, and a 3x3
# convolution then 2x2 average pooling is a 4x4 stride-2 convolution with B W B^T; a 1x1 convolution
# and the sampling commute, which is a 2x2 stride-2 (transposed) convolution. Each runs as one
# primitive at the low resolution (2.25x fewer multiply-adds for the 3x3 ones) and no interpolation
# or pooling op runs at all. The parameters stay the 3x3 and 1x1 kernels of the reference blocks.
_UP = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)  # kernel row k of the 4x4 from the 3x3 rows
_DOWN = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32) / 2


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2D:
    """A 'same' k x k convolution whose bias the oneDNN operator adds inside its primitive."""
    return fused_bias(nn.Conv2D(c_in, c_out, k, 1, k // 2))


class SampledConv(nn.Conv2D):
    """A k x k (k = 3 or 1) convolution with 2x up-sampling before it (up=True) or 2x average pooling
    after it, computed as one stride-2 (transposed) convolution."""
    dnnl_capable = True  # ops.use_onednn sets dnnl: run it on the oneDNN operator
    dnnl = False

    @property
    def nhwc_capable(self) -> bool:  # on the operator it reads _data_format (ops.channels_last)
        return self.dnnl

    def __init__(self, c_in: int, c_out: int, k: int, up: bool):
        super().__init__(c_in, c_out, k, 1, k // 2)
        self.up = up

    def _kernel(self):
        w = self.weight  # [Cout, Cin, k, k] (after spectral norm's hook, when D has it)
        if self._kernel_size[0] == 1:  # 2x2 stride 2: the 1x1 kernel in every tap (averaged when pooling)
            w = paddle.tile(w, [1, 1, 2, 2]) * (1.0 if self.up else 0.25)
            return w, 0
        m = paddle.to_tensor(_UP if self.up else _DOWN)
        return paddle.matmul(paddle.matmul(m, w), m, transpose_y=True), 1  # [Cout, Cin, 4, 4], padding 1

    def forward(self, x):
        w, pad = self._kernel()
        if self.up:
            w = w.transpose([1, 0, 2, 3])  # a transposed convolution's weight is [Cin, Cout, K, K]
        if self.dnnl:
            return ops.conv(x, w, self.bias, 2, pad, 0, transposed=self.up, nhwc=self._data_format == "NHWC",
                            low_out=getattr(self, "low_out", False))
        conv = F.conv2d_transpose if self.up else F.conv2d
        return conv(x, w, self.bias, stride=2, padding=pad)


class UpBlock(nn.Layer):
    takes_labels = True
    layout_free = True  # its own code only adds (ops.add): runs channels-last when its layers do (ops.channels_last)

    def __init__(self, c_in: int, c_out: int, cbn_classes: int = 0):
        super().__init__()
        self.bn1, self.bn2 = batch_norm(c_in, cbn_classes), batch_norm(c_out, cbn_classes)
        self.conv1 = SampledConv(c_in, c_out, 3, up=True)
        self.conv2 = _conv(c_out, c_out, 3)
        self.shortcut = SampledConv(c_in, c_out, 1, up=True)
        self.relu = nn.ReLU()  # a layer, so ops.use_onednn moves it to the operator's ReLU (no parameters)

    def forward(self, x, y=None):
        h = self.conv1(self.relu(run([self.bn1], x, y)))
        h = self.conv2(self.relu(run([self.bn2], h, y)))
        return ops.add(h, self.shortcut(x))


class ResNetGenerator(Generator):
    def __init__(self, z_dim=128, img_size=32, channels=3, g_channels=256, cbn_classes=0):
        super().__init__()
        self.c = g_channels
        self.fc = nn.Linear(z_dim, 4 * 4 * g_channels)
        self.blocks = nn.LayerList([UpBlock(g_channels, g_channels, cbn_classes) for _ in range(num_up(img_size))])
        self.bn = nn.BatchNorm2D(g_channels)
        self.out = _conv(g_channels, channels, 3)
        self.relu = nn.ReLU()

    def channels_last_layers(self) -> list:
        """The layers that may run on [N, H, W, C] tensors (ops.channels_last), in the order forward
        calls them: the blocks to the output convolution."""
        return [*self.blocks, self.bn, self.relu, self.out]

    def forward(self, z, y=None):
        h = self.fc(z).reshape([z.shape[0], self.c, 4, 4])  # state size. C x 4 x 4
        h = run(self.blocks, h, y)  # state size. C x img_size x img_size
        return F.tanh(self.out(self.relu(self.bn(h))))


class OptimisedBlock(nn.Layer):
    """D's first block, on the image itself (no ReLU before the first convolution)."""
    layout_free = True

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3)
        self.conv2 = SampledConv(c_out, c_out, 3, up=False)
        self.shortcut = SampledConv(c_in, c_out, 1, up=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        return ops.add(self.conv2(self.relu(self.conv1(x))), self.shortcut(x))


class DownBlock(nn.Layer):
    layout_free = True

    def __init__(self, c_in: int, c_out: int, down: bool):
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3)
        self.conv2 = SampledConv(c_out, c_out, 3, up=False) if down else _conv(c_out, c_out, 3)
        self.shortcut = (SampledConv(c_in, c_out, 1, up=False) if down else
                         _conv(c_in, c_out, 1) if c_in != c_out else None)
        self.relu = nn.ReLU()

    def forward(self, x):
        h = self.conv2(self.relu(self.conv1(self.relu(x))))
        return ops.add(h, self.shortcut(x) if self.shortcut is not None else x)


class ResNetDiscriminator(Discriminator):
    def __init__(self, img_size=32, channels=3, d_channels=128):
        super().__init__()
        downs = num_up(img_size) - 2  # with the optimised block: down to 8x8, where SNGAN keeps two more blocks
        blocks = [OptimisedBlock(channels, d_channels)]  # state size. C x img_size/2
        blocks += [DownBlock(d_channels, d_channels, down=True) for _ in range(downs)]  # ... C x 8 x 8
        blocks += [DownBlock(d_channels, d_channels, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(d_channels, 1)
        self.feature_dim = d_channels
        self.relu = nn.ReLU()

    def channels_last_layers(self) -> list:
        """The layers that may run on [N, H, W, C] tensors (ops.channels_last): the blocks."""
        return list(self.blocks.children())

    def features(self, x):
        return self.relu(self.blocks(x)).sum(axis=[2, 3])  # global sum pooling: [N, C]

    def logit(self, h):
        return self.linear(h)


@MODELS.register("resnet")
class ResNet(Model):
    """resnet: the ResNet G and D of SNGAN (Miyato 2018, B.4; StudioGAN's resnet backbone), 32 or 64 px"""
    keys = {"g_channels": width(64, "G: width of every residual block (the paper's CIFAR-10 G: 256)"),
            "d_channels": width(64, "D: width of every residual block (the paper's CIFAR-10 D: 128)"),
            "g_cond": G_COND}
    common_defaults = {"spectral_norm": True, "init": "ortho"}  # as SNGAN and StudioGAN train it
    SIZES = (32, 64)  # 64: one more up-sampling block in G and down-sampling block in D

    @staticmethod
    def check(cfg, need) -> None:
        need(cfg.model.img_size in ResNet.SIZES, "model.img_size",
             f"resnet builds {' or '.join(map(str, ResNet.SIZES))} pixels, got {cfg.model.img_size}")
        check_g_cond(cfg, need)

    @staticmethod
    def generator(m) -> Generator:
        return conditioned(m, lambda z_in, cbn: ResNetGenerator(z_in, m.img_size, m.channels, m.arch.g_channels, cbn))

    @staticmethod
    def discriminator(m) -> ResNetDiscriminator:
        return ResNetDiscriminator(m.img_size, m.channels, m.arch.d_channels)
