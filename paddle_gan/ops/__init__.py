"""Faster CPU training convolutions: oneDNN behind Paddle's autograd (train.conv).

Paddle's CPU conv2d / conv2d_transpose kernels run im2col + GEMM one sample at a time, and its
dygraph never calls the oneDNN library the wheel ships. `dnnl_conv.cc` is a Paddle custom operator
that runs oneDNN's convolution and deconvolution primitives (forward, backward-data,
backward-weights); it is compiled on first use (g++, ~20 s, cached under
~/.cache/paddle_gan/ops/ or $PADDLE_GAN_OPS_DIR) against the wheel's own libdnnl.so.3 and oneDNN's
headers, vendored in ops/third_party/onednn/ (the wheel leaves them out). The library and the headers
must be the same oneDNN major.minor: load() checks that before it builds anything.

`use_onednn(model)` switches eligible Conv2D / Conv2DTranspose layers of a model to it in place:
same parameters, state-dict keys and results up to float rounding (tested forward and backward
against the Paddle layers), so checkpoints do not care which path trained them. Its ReLU and
LeakyReLU layers go to `act.cc` (the same library): the same numbers as Paddle's kernels, on all cores.
`bn_exact.cc` is Paddle's float32 training BatchNorm on all cores with Paddle's numbers (exact_bn.py).
`batchnorm.cc` is the training-mode BatchNorm with a fast second derivative that penalised runs use
(gan/kernels.py's PenaltyBatchNorm, through load().fast_bn; NCHW or channels-last).
`channels_last(layers)` runs a chain of layers on [N, H, W, C] tensors, the layout oneDNN computes in
(train.channels_last); with `low`, in bfloat16 the activations between its layers are bfloat16 too (the
convolutions write them, `bn_low.cc` normalises them, act.cc's activations and `to_float32` read them). In
bfloat16 the weight gradients of small maps are one matrix product each (`gemm_bwdw.cc`).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import build
from .build import INCLUDE, NAME, OpsError, header_version, load, quiet_fds, runtime_version  # noqa: F401
from .exact_bn import ExactBatchNorm2D, matches_paddle, use_exact_batchnorm  # noqa: F401

def _pad(layer) -> int | None:
    p = layer._padding
    if isinstance(p, int):
        return p
    if isinstance(p, (list, tuple)) and len(set(p)) == 1 and isinstance(p[0], int):
        return p[0]
    return None


def eligible(layer) -> bool:
    """A plain 2-D NCHW (transposed) convolution the operator computes exactly as Paddle does."""
    if type(layer) not in (nn.Conv2D, nn.Conv2DTranspose):
        return False
    k, s = layer._kernel_size, layer._stride
    out_pad = getattr(layer, "output_padding", 0) or 0
    return (layer._data_format == "NCHW" and layer._groups == 1 and list(layer._dilation) == [1, 1]
            and k[0] == k[1] and s[0] == s[1] and _pad(layer) is not None
            and getattr(layer, "_padding_mode", "zeros") == "zeros" and isinstance(out_pad, int)
            and 0 <= out_pad < s[0] and out_pad <= _pad(layer))


_bfloat16 = [False]  # convolutions run in bfloat16 inside a `with bfloat16():` block (train.amp on a CPU)


@contextlib.contextmanager
def bfloat16(on: bool = True):
    """Convolutions started inside the block read bfloat16 images, weights and output gradients
    (converted from the float32 tensors) and write float32, on CPUs with bfloat16 arithmetic (AMX,
    AVX512-BF16); their backward follows the forward. Everything else stays float32."""
    before, _bfloat16[0] = _bfloat16[0], on
    try:
        yield
    finally:
        _bfloat16[0] = before


@contextlib.contextmanager
def inputs_only():
    """Backward passes started inside the block (on this thread) compute the operator's convolutions'
    input gradients only, not their weights' and biases' (those come back uninitialised): for
    paddle.grad(out, x) of a gradient penalty, which reads x's gradient alone and would otherwise pay
    for a weight gradient per layer that Paddle throws away (PyTorch's autograd.grad skips them).
    Only where x's gradient does not flow through a convolution's weight (D's weights are parameters;
    StyleGAN2's modulated weights of G depend on w: not for path length). Does nothing before the
    operator is loaded (then no convolution runs on it)."""
    if build._op is None:
        yield
        return
    lib = _flags()
    before = lib.paddle_gan_inputs_only(1)
    try:
        yield
    finally:
        lib.paddle_gan_inputs_only(before)


@functools.lru_cache(maxsize=None)
def _flags():
    """The loaded operator library through ctypes (the same copy Paddle loaded: its thread-local flag)."""
    return ctypes.CDLL(build.library_path())


def conv(x, weight, bias=None, stride: int = 1, pad: int = 0, out_pad: int = 0, transposed: bool = False,
         nhwc: bool = False, low_out: bool = False):
    """A (transposed) convolution on the operator: x [N, Cin, H, W], weight as Paddle lays it out
    (conv [Cout, Cin, K, K], transposed [Cin, Cout, K, K]), bias [Cout] or None (then added inside
    the primitive, its gradient from the backward-weights primitive). Twice differentiable. nhwc: x and
    the output are [N, H, W, C] (channels_last). low_out (inside bfloat16()): the
    output is bfloat16 (x may be either; once differentiable then)."""
    # Which gradients are needed is known now in dygraph. A to_static program is traced once and
    # reused for inputs that do and do not need gradients, so there both are always computed.
    dynamic = paddle.in_dynamic_mode()
    need_dx = not x.stop_gradient or not dynamic
    need_dw = not weight.stop_gradient or bias is not None and not bias.stop_gradient or not dynamic  # (and db)
    low = _bfloat16[0]
    low_out = low and low_out
    if bias is None:
        return load().dnnl_conv(x, weight, stride, pad, out_pad, transposed, need_dx, need_dw, low, nhwc, low_out)
    return load().dnnl_conv_bias(x, weight, bias, stride, pad, out_pad, transposed, need_dx, need_dw, low, nhwc,
                                 low_out)


def _forward(layer, x, transposed: bool):
    out_pad = (getattr(layer, "output_padding", 0) or 0) if transposed else 0
    nhwc = layer._data_format == "NHWC"  # (set by channels_last)
    if getattr(layer, "fuse_bias", False):  # the model asked for its bias inside the primitive (gan/models/resnet.py)
        return conv(x, layer.weight, layer.bias, layer._stride[0], _pad(layer), out_pad, transposed, nhwc,
                    getattr(layer, "low_out", False))
    # otherwise added by Paddle, as the configs before fused biases trained (their numbers stay as they were)
    y = conv(x, layer.weight, None, layer._stride[0], _pad(layer), out_pad, transposed, nhwc,
             layer.bias is None and getattr(layer, "low_out", False))
    return y if layer.bias is None else y + (layer.bias if nhwc else layer.bias.reshape([1, -1, 1, 1]))


class OneDNNConv2D(nn.Conv2D):
    def forward(self, x):
        return _forward(self, x, transposed=False)


class OneDNNConv2DTranspose(nn.Conv2DTranspose):
    def forward(self, x, output_size=None):
        if output_size is not None:
            return super().forward(x, output_size)
        return _forward(self, x, transposed=True)


def activation(x, slope: float = 0.0):
    """LeakyReLU with negative slope `slope` (0 = ReLU) on act.cc, twice differentiable: the same
    values and gradients as F.leaky_relu / F.relu, bit for bit (tested). bfloat16 x too (once
    differentiable). Other dtypes, and slopes outside [0, 1), use Paddle's."""
    if x.dtype not in (paddle.float32, paddle.bfloat16) or not 0.0 <= slope < 1.0:
        return F.relu(x) if slope == 0.0 else F.leaky_relu(x, slope)
    return load().fast_act(x, float(slope), slope == 0.0)


class FastReLU(nn.ReLU):
    def forward(self, x):
        return activation(x, 0.0)


class FastLeakyReLU(nn.LeakyReLU):
    def forward(self, x):
        return activation(x, self._negative_slope)


_FAST = {nn.ReLU: FastReLU, nn.LeakyReLU: FastLeakyReLU}


def has_eligible(*models) -> bool:
    """Whether any of the models has a convolution the operator can run (an MLP GAN has none)."""
    return any(eligible(layer) or getattr(layer, "dnnl_capable", False)
               for model in models for layer in model.sublayers(include_self=True))


def use_onednn(model) -> int:
    """Switch the eligible convolutions of `model` (in place) to the oneDNN operator, and tell the
    layers that compute their own convolution through conv() (dnnl_capable, e.g. the ResNet's
    up- and down-sampling ones) to do so; returns how many. Its ReLU and LeakyReLU layers go to
    activation() (not counted). Builds the operator first, so an OpsError leaves the model untouched."""
    load()
    n = 0
    for layer in model.sublayers(include_self=True):
        if eligible(layer):
            layer.__class__ = OneDNNConv2D if type(layer) is nn.Conv2D else OneDNNConv2DTranspose
            n += 1
        elif getattr(layer, "dnnl_capable", False):
            layer.dnnl = True
            n += 1
        elif type(layer) in _FAST:
            layer.__class__ = _FAST[type(layer)]
    return n


def add(a, b):
    """a + b, for a model's residual sums: bfloat16 ones (inside a chain in bfloat16) on the operator
    (Paddle has no bfloat16 add on the CPU), a bfloat16 and a float32 one in float32, else Paddle's."""
    if a.dtype == b.dtype == paddle.bfloat16:
        return load().add_low(a, b)
    if paddle.bfloat16 in (a.dtype, b.dtype):
        a, b = (load().to_float32(t) if t.dtype == paddle.bfloat16 else t for t in (a, b))
    return a + b


def _to_nhwc(layer, inputs):
    return (inputs[0].transpose([0, 2, 3, 1]),) + tuple(inputs[1:])


def _to_nchw(layer, inputs, output):
    return (load().to_float32(output) if output.dtype == paddle.bfloat16 else output).transpose([0, 3, 1, 2])


def update_running(layer, mean, var):
    """A BatchNorm2D's running statistics from a batch's mean and biased variance, as Paddle's kernel:
    running = momentum * running + (1 - momentum) * batch."""
    with paddle.no_grad():
        m = layer._momentum
        paddle.assign(layer._mean * m + mean.detach() * (1 - m), output=layer._mean)
        paddle.assign(layer._variance * m + var.detach() * (1 - m), output=layer._variance)


class LowBatchNorm2D(nn.BatchNorm2D):
    """BatchNorm2D of a channels-last chain in bfloat16 (channels_last with low): bfloat16 activations in
    training go to bn_low.cc (float32 statistics), in eval mode through Paddle's kernel in float32;
    float32 ones to Paddle's kernel as before. Parameters and state-dict keys are BatchNorm2D's."""

    def forward(self, x):
        if x.dtype != paddle.bfloat16:
            return super().forward(x)
        if not self.training or self._data_format != "NHWC" or self._use_global_stats:
            return super().forward(x.astype("float32")).astype("bfloat16")
        y, mean, var = load().bn_low(x, self.weight, self.bias, float(self._epsilon))
        update_running(self, mean, var)
        return y


_LAYOUT_FREE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout)  # elementwise: any layout


# BatchNorm2D with Paddle's numbers (ExactBatchNorm2D: its NCHW training step on bn_exact.cc)
PLAIN_BATCHNORMS = (nn.BatchNorm2D, ExactBatchNorm2D)
_LAYOUT_SET = (OneDNNConv2D, OneDNNConv2DTranspose, *PLAIN_BATCHNORMS, LowBatchNorm2D)  # told by their _data_format


def _layout_ok(layer) -> bool:
    """Whether `layer` computes the same on [N, H, W, C] tensors once its _data_format says so: the
    operator's convolutions, BatchNorm2D, elementwise layers, layers of the package's own that read
    their _data_format and say they can now (nhwc_capable: the ResNet's SampledConv on the operator,
    gan/kernels' PenaltyBatchNorm on batchnorm.cc), and blocks that only combine such layers
    elementwise (layout_free, e.g. the ResNet's blocks)."""
    if type(layer) in _LAYOUT_SET + _LAYOUT_FREE + tuple(_FAST.values()) or getattr(layer, "nhwc_capable", False):
        return True
    return getattr(layer, "layout_free", False) and all(_layout_ok(l) for l in layer.children())


def channels_last(layers, low: bool = False) -> bool:
    """Run a chain of layers that a model calls one after the other (its own choice: gan/models) on
    [N, H, W, C] tensors: the first transposes its input, the last transposes its output back, and in
    between the operator's convolutions read and write the layout oneDNN computes in, so the reorders to
    and from [N, C, H, W] around every convolution go. Only chains of layers that compute the same in
    that layout qualify (_layout_ok; else nothing changes and False is returned). Same parameters; float
    rounding differs from NCHW (BatchNorm's sums run in another order).
    low: in bfloat16 (inside bfloat16()) the activations between the chain's layers are bfloat16 too, as
    PyTorch's autocast keeps them: its convolutions write bfloat16 (not the last layer, nor one whose bias
    Paddle adds), its BatchNorm2D layers become LowBatchNorm2D, its activations and residual sums (add)
    read what they get, the chain's output is float32 again. Only once differentiable: not for a D whose
    input gradient is penalised."""
    layers = list(layers)
    if not layers or not all(_layout_ok(l) for l in layers):
        return False
    # Paddle has no bfloat16 tanh or sigmoid on the CPU, and BatchNorms of the package's own (gan/kernels'
    # PenaltyBatchNorm) read float32: a chain holding one keeps float32 activations
    low = low and not any(isinstance(m, (nn.Tanh, nn.Sigmoid)) or
                          isinstance(m, nn.BatchNorm2D) and type(m) not in (*PLAIN_BATCHNORMS, LowBatchNorm2D)
                          for layer in layers for m in layer.sublayers(include_self=True))
    if getattr(layers[0], "channels_last", False):  # already: a second pair of transposes would undo it
        return True
    layers[0].channels_last = True
    for l in (m for layer in layers for m in layer.sublayers(include_self=True)):
        if isinstance(l, _LAYOUT_SET) or getattr(l, "nhwc_capable", False):
            l._data_format = "NHWC"
        if low and type(l) in PLAIN_BATCHNORMS:
            l.__class__ = LowBatchNorm2D
        if low and l is not layers[-1] and (type(l) in (OneDNNConv2D, OneDNNConv2DTranspose)
                                            or getattr(l, "dnnl_capable", False)):
            l.low_out = True
    layers[0].register_forward_pre_hook(_to_nhwc)
    layers[-1].register_forward_post_hook(_to_nchw)
    return True
