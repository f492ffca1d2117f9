"""The layers of StyleGAN2 (Karras et al. 2020; the layouts of stylegan2-ada-pytorch's networks.py),
written on Paddle's differentiable ops so that every layer has the second derivative R1 and path
length regularisation take:

- equalized learning rate: weights stored N(0, 1) (N(0, 1/lr_mul^2) with a learning-rate multiplier)
  and scaled at run time by lr_mul / sqrt(fan_in); biases scaled by lr_mul;
- lReLU 0.2 with gain sqrt(2) after every hidden layer (bias_act);
- the [1, 3, 3, 1] low-pass filter of every up- and down-sampling (upfirdn), as one small matrix
  product per axis (zero insertion, padding, filter and decimation folded in): exact, and twice
  differentiable;
- the modulated convolution: modulation and demodulation as scalings around one convolution whose
  weight the whole batch shares, so it runs on the oneDNN operator (ops.conv, with its second
  derivative) wherever the trainer switched that on (`dnnl`), else on Paddle's conv2d.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ... import ops

FIR = (1.0, 3.0, 3.0, 1.0)  # the low-pass filter, normalised to sum 1 per axis below
SQRT2 = math.sqrt(2.0)


@functools.lru_cache(maxsize=None)
def _fir_matrix(n: int, up: int, down: int, pad0: int, pad1: int, gain: float) -> np.ndarray:
    """[n, n_out]: upfirdn along one axis as a matrix: `up - 1` zeros after each of the n values, `pad0` /
    `pad1` zeros at the ends, the FIR (normalised to sum 1, times gain), every `down`-th value kept."""
    f = np.asarray(FIR, np.float64) * gain / sum(FIR)
    cols = []
    for i in range(n):
        x = np.zeros(n * up)
        x[i * up] = 1.0
        x = np.concatenate([np.zeros(pad0), x, np.zeros(pad1)])
        y = np.array([np.dot(f, x[j:j + len(f)]) for j in range(len(x) - len(f) + 1)])
        cols.append(y[::down])
    return np.stack(cols).astype(np.float32)


def upfirdn(x, up: int = 1, down: int = 1, pad0: int = 0, pad1: int = 0, gain: float = 1.0):
    """The 2-D [1, 3, 3, 1] filter (outer product, times gain) with zero insertion (up), padding and
    decimation (down), as one matrix product per axis: exact, fast through BLAS at any size, and
    twice differentiable (slices and strided slices are slow or have no second derivative in Paddle)."""
    h, w = x.shape[2], x.shape[3]
    g = math.sqrt(gain)
    x = paddle.matmul(x, paddle.to_tensor(_fir_matrix(w, up, down, pad0, pad1, g)))  # along the width
    return paddle.matmul(paddle.to_tensor(_fir_matrix(h, up, down, pad0, pad1, g).T), x)  # along the height


@functools.lru_cache(maxsize=None)
def _insert_matrix(n: int) -> np.ndarray:
    """[n, 2n - 1]: a zero after each value but the last."""
    m = np.zeros((n, 2 * n - 1), np.float32)
    m[np.arange(n), 2 * np.arange(n)] = 1.0
    return m


def transposed_stride2(layer, x, weight):
    """The stride-2 transposed convolution (no padding: [N, C_out, 2H+1, 2W+1]) of a 3x3 weight kept as
    [C_out, C_in, 3, 3]: on the oneDNN operator when switched on; else zeros inserted and a convolution
    with the flipped kernel, the same function (Paddle's conv2d_transpose has no usable second derivative
    here)."""
    if getattr(layer, "dnnl", False):
        return ops.conv(x, weight.transpose([1, 0, 2, 3]), None, 2, 0, transposed=True)
    h, w = x.shape[2], x.shape[3]
    x = paddle.matmul(paddle.to_tensor(_insert_matrix(h).T), paddle.matmul(x, paddle.to_tensor(_insert_matrix(w))))
    return F.conv2d(x, weight.flip([2, 3]), padding=2)


def blur(x, pad0: int, pad1: int, gain: float = 1.0):
    """The low-pass filter with zero padding."""
    return upfirdn(x, pad0=pad0, pad1=pad1, gain=gain)


def upsample2d(x):
    """x2 upsampling: zeros inserted, then the low-pass filter with gain 4 (upfirdn2d.upsample2d)."""
    return upfirdn(x, up=2, pad0=2, pad1=1, gain=4.0)


def downsample2d(x):
    """x2 downsampling: the low-pass filter, then every second pixel (upfirdn2d.downsample2d)."""
    return upfirdn(x, down=2, pad0=1, pad1=1)


def bias_act(x, bias, gain: float, act: bool = True):
    """x + bias (per channel), lReLU 0.2, times gain (sqrt(2) keeps the variance of a ReLU layer).
    (No default gain: paddle.jit.save's conversion loses module names in default arguments.)"""
    if bias is not None and x.ndim == 4:  # as [N, C, HW] + [C, 1]: Paddle's CPU kernel broadcasts that 5x
        n, c, h, w = x.shape               # faster than [N, C, H, W] + [1, C, 1, 1] (measured)
        x = (x.reshape([n, c, h * w]) + bias.reshape([c, 1])).reshape([n, c, h, w])
    elif bias is not None:
        x = x + bias
    if act and paddle.in_dynamic_mode():
        x = F.leaky_relu(x, 0.2)
    elif act:  # (traced for export: paddle2onnx turns leaky_relu's slope 0.2 into another; the same function)
        x = paddle.maximum(x, x * 0.2)
    return x * gain if gain != 1.0 else x


def _normal(shape, std: float = 1.0):
    return paddle.create_parameter(shape, "float32", default_initializer=nn.initializer.Normal(0.0, std))


def _constant(shape, value: float):
    return paddle.create_parameter(shape, "float32", default_initializer=nn.initializer.Constant(value))


class EqualLinear(nn.Layer):
    """A fully connected layer with equalized learning rate (FullyConnectedLayer)."""

    def __init__(self, c_in: int, c_out: int, act: bool = False, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = _normal([c_in, c_out], 1.0 / lr_mul)
        self.bias = _constant([c_out], bias_init)
        self.gain, self.lr_mul, self.act = lr_mul / math.sqrt(c_in), lr_mul, act
        self.act_gain = SQRT2 if act else 1.0

    def forward(self, x):
        return bias_act(paddle.matmul(x, self.weight * self.gain), self.bias * self.lr_mul, gain=self.act_gain,
                        act=self.act)


def conv(layer, x, weight, bias=None, stride: int = 1, pad: int = 0):
    """A plain convolution, on the oneDNN operator when the trainer switched `layer` to it."""
    if getattr(layer, "dnnl", False):
        return ops.conv(x, weight, bias, stride, pad)
    return F.conv2d(x, weight, bias, stride=stride, padding=pad)


class EqualConv(nn.Layer):
    """D's convolution (Conv2dLayer): equalized weights, bias, lReLU; down=True halves the size through
    the low-pass filter first (a 1x1 kernel: filter and decimate, then convolve)."""
    dnnl_capable = True  # ops.use_onednn sets dnnl
    dnnl = False

    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True, act: bool = True, down: bool = False):
        super().__init__()
        self.weight = _normal([c_out, c_in, k, k])
        self.bias = _constant([c_out], 0.0) if bias else None
        self.gain, self.k, self.act, self.down = 1.0 / math.sqrt(c_in * k * k), k, act, down
        self.act_gain = SQRT2 if act else 1.0

    def forward(self, x, gain: float = 1.0):
        w = self.weight * self.gain
        if self.down and self.k == 1:
            x = conv(self, downsample2d(x), w)
        elif self.down:  # pad 2 both sides: 3x3 stride 2 then gives exactly half the size
            x = conv(self, blur(x, 2, 2), w, stride=2)
        else:
            x = conv(self, x, w, pad=self.k // 2)
        return bias_act(x, self.bias, gain=self.act_gain * gain, act=self.act)


def demodulation(weight, styles):
    """rsqrt of each output channel's squared weights after modulation, [N, C_out]: the same as the
    sum over [C_in, k, k] of (weight * style)^2, without the per-sample weight tensor."""
    w2 = weight.square().sum(axis=[2, 3])  # [C_out, C_in]
    return paddle.rsqrt(paddle.matmul(styles.square(), w2, transpose_y=True) + 1e-8)


class ModulatedConv(nn.Layer):
    """A synthesis layer (SynthesisLayer): the style from w (an affine map, bias 1), a modulated and
    demodulated 3x3 convolution (up=True: a x2 upsampling one: a stride-2 transposed convolution and the
    low-pass filter), noise times a learned strength (random in training, the layer's fixed noise in
    eval mode), bias and lReLU."""
    dnnl_capable = True
    dnnl = False

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = _normal([c_out, c_in, 3, 3])
        self.bias = _constant([c_out], 0.0)
        self.noise_strength = _constant([1], 0.0)
        self.register_buffer("noise_const", paddle.randn([1, 1, resolution, resolution]))
        self.up, self.resolution, self.act_gain = up, resolution, SQRT2

    def forward(self, x, w):
        styles = self.affine(w)  # [N, C_in]
        x = x * styles.reshape([x.shape[0], -1, 1, 1])
        if self.up:  # zeros inserted by a stride-2 transposed convolution at the low resolution (a quarter of
            # the multiply-adds of upsampling first), then the filter: conv2d_resample's way (2H+1 -> 2H)
            x = blur(transposed_stride2(self, x, self.weight), 1, 1, gain=4.0)
        else:
            x = conv(self, x, self.weight, pad=1)
        x = x * demodulation(self.weight, styles).reshape([x.shape[0], -1, 1, 1])
        if self.training:  # random noise; in eval mode the layer's own, so that G is a function of z
            noise = paddle.randn([x.shape[0], 1, self.resolution, self.resolution])
        else:
            noise = self.noise_const
        # (expanded first: an add that broadcasts [N, 1, H, W] over C is 3x slower on Paddle's CPU kernel)
        return bias_act(x + (noise * self.noise_strength).expand(x.shape), self.bias, self.act_gain)


class ToRGB(nn.Layer):
    """The 1x1 modulated (not demodulated) convolution to the image's channels, with bias (ToRGBLayer)."""
    dnnl_capable = True
    dnnl = False

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = _normal([channels, c_in, 1, 1])
        self.bias = _constant([channels], 0.0)
        self.gain = 1.0 / math.sqrt(c_in)

    def forward(self, x, w):
        styles = self.affine(w) * self.gain
        return bias_act(conv(self, x * styles.reshape([x.shape[0], -1, 1, 1]), self.weight), self.bias, gain=1.0,
                        act=False)


class Mapping(nn.Layer):
    """z -> w (MappingNetwork): z normalised to unit second moment, `layers` fully connected layers with
    lReLU and the learning-rate multiplier lr_mul; w_avg, the running mean of w (decay 0.995) that
    truncation pulls towards, is updated by every forward in training mode."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        sizes = [z_dim] + [w_dim] * layers
        self.net = nn.LayerList([EqualLinear(a, b, act=True, lr_mul=lr_mul) for a, b in zip(sizes, sizes[1:])])
        self.register_buffer("w_avg", paddle.zeros([w_dim]))
        self.w_avg_beta = w_avg_beta

    def forward(self, z, update_w_avg: bool = True):
        x = z * paddle.rsqrt(z.square().mean(axis=1, keepdim=True) + 1e-8)
        for layer in self.net:
            x = layer(x)
        if self.training and update_w_avg:
            with paddle.no_grad():
                paddle.assign(x.detach().mean(axis=0) * (1 - self.w_avg_beta) + self.w_avg * self.w_avg_beta,
                              output=self.w_avg)
        return x


class MinibatchStd(nn.Layer):
    """One more channel: the standard deviation of each feature over groups of (up to) 4 images of the
    batch, averaged (MinibatchStdLayer): D sees how varied a batch is, which fights mode collapse."""

    def forward(self, x):
        n, c, h, w = x.shape
        g = next(s for s in (4, 3, 2, 1) if n % s == 0)
        y = x.reshape([g, -1, c, h, w])
        y = (y - y.mean(axis=0)).square().mean(axis=0)
        y = paddle.sqrt(y + 1e-8).mean(axis=[1, 2, 3]).reshape([-1, 1, 1, 1])  # [n / g, 1, 1, 1]
        return paddle.concat([x, paddle.tile(y, [g, 1, h, w])], axis=1)
