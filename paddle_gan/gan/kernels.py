"""The speed switches applied to freshly built models: train.conv (paddle_gan.ops' oneDNN
convolutions instead of Paddle's CPU kernels), train.to_static, and a BatchNorm for D whose second
derivative is fast where the objective takes one (a gradient penalty). The trainer and
benchmarks/bench_train.py both go through here, so they time and train the same thing.
"""
from __future__ import annotations

import paddle
from paddle import nn

from .. import ops
from ..errors import ConfigError
from ..progress import say
from ..registry import Key, declare

declare("train", "kernels",
        conv=Key("auto", "convolutions for CPU training: onednn (paddle_gan/ops, built on first use with g++; ~1.7x "
                         "faster) | paddle (Paddle's own kernels, the reference) | auto = onednn where it builds, else "
                         "paddle", choices=("auto", "onednn", "paddle")),
        to_static=Key(False, "compile G and D with paddle.jit.to_static (same results; for GPUs: on CPU it measured "
                             "about 2x slower than dygraph)"),
        channels_last=Key("auto", "run the convolutions of models that offer it (DCGAN, the ResNet) on [N, H, W, C] "
                                  "tensors with the oneDNN operator, without a layout reorder around each: on | off | "
                                  "auto = on in bfloat16 on a CPU and for a D whose input gradient is penalised (R1, "
                                  "WGAN-GP), else off (float32 runs keep their numbers bit for bit)",
                          choices=("auto", "on", "off")))


def use_onednn_convs(choice: str, quiet: bool = False, note_fallback: bool = True) -> bool:
    """train.conv -> whether to switch the models' convolutions to paddle_gan.ops (oneDNN).
    auto falls back to Paddle's kernels with a one-line note; onednn raises ConfigError instead.
    quiet: say nothing (the ranks that do not write); note_fallback: say so when auto falls back."""
    if choice == "paddle":
        return False
    try:
        ops.load(announce=None if quiet else say)  # the one-time build (~20 s) is always announced
        return True
    except ops.OpsError as e:
        if choice == "onednn":
            raise ConfigError(f"train.conv: onednn is not available here: {e} (train.conv=paddle uses Paddle's own)")
        if not quiet and note_fallback:
            say(f"note: Paddle's own convolutions (train.conv=auto; the faster oneDNN ones are unavailable: {e})")
        return False


def for_inference(model, conv: str = "auto"):
    """`model` (a generator or a feature extractor, used forward-only in eval mode) with its
    convolutions on paddle_gan.ops' oneDNN operator, as train.conv `conv` says: auto = where it
    builds, else Paddle's own (silently: the scores do not depend on it); onednn = or a ConfigError;
    paddle = Paddle's own. Returns the model (switched in place)."""
    if conv != "paddle" and use_onednn_convs(conv, note_fallback=False):
        ops.use_onednn(model)
    return model


class PenaltyBatchNorm(nn.BatchNorm2D):
    """BatchNorm2D in training mode composed of differentiable primitives (means, a reciprocal square
    root, products) on [N, C, H*W] views, for a D whose input gradient is penalised (R1, WGAN-GP):
    their second derivatives are fast where Paddle's batch_norm_double_grad kernel took most of a
    penalised step (R1 on DCGAN-32 ran at 0.02x PyTorch's speed). The same normalisation (batch mean
    and biased variance, epsilon; in eval mode the running statistics) and the same running statistics
    update. Parameters and state-dict keys are BatchNorm2D's. With `fused` (set where the models run on
    paddle_gan.ops) training mode is one operator of its own (ops/batchnorm.cc: the same function with
    its derivatives written out, on all cores; Paddle's elementwise kernels run on one), which also
    computes on [N, H, W, C] tensors: then the layer may sit in a channels-last chain (ops.channels_last
    sets _data_format)."""
    fused = False

    @property
    def nhwc_capable(self) -> bool:
        return self.fused

    def forward(self, x):
        nhwc = self._data_format == "NHWC"
        c = x.shape[3] if nhwc else x.shape[1]
        if self.training and self.fused and x.dtype == paddle.float32:
            y, mean, var = ops.load().fast_bn(x, self.weight, self.bias, float(self._epsilon), nhwc)
            self._update_running(mean, var)
            return y
        # [N, C, H * W] with per-channel vectors as [C, 1], or [N H W, C] with them as [C]
        v, axes, per_channel = (x.reshape([-1, c]), [0], [c]) if nhwc else (x.reshape([x.shape[0], c, -1]), [0, 2],
                                                                            [c, 1])
        if self.training:
            mean = v.mean(axis=axes)
            centred = v - mean.reshape(per_channel)
            var = centred.square().mean(axis=axes)
            self._update_running(mean, var)
        else:  # the running statistics (differentiable here too: Paddle's eval kernel has no backward)
            centred, var = v - self._mean.reshape(per_channel), self._variance
        scale = paddle.rsqrt(var + self._epsilon) * self.weight
        return (centred * scale.reshape(per_channel) + self.bias.reshape(per_channel)).reshape(x.shape)

    def _update_running(self, mean, var):
        ops.update_running(self, mean, var)


def use_penalty_batchnorm(model, fused: bool = False) -> int:
    """Switch model's BatchNorm2D layers (in place) to PenaltyBatchNorm (on the operator's BatchNorm
    when `fused`); returns how many."""
    n = 0
    for layer in model.sublayers(include_self=True):
        if type(layer) in ops.PLAIN_BATCHNORMS and layer._data_format == "NCHW":
            layer.__class__ = PenaltyBatchNorm
            layer.fused = fused
            n += 1
    return n


def channels_last_wanted(t, onednn: bool, cpu_bfloat16: bool, note=say, penalised: bool = False) -> tuple:
    """train.channels_last (`t` = cfg.train) resolved for (G, D): auto = on where the convolutions run in
    bfloat16 on the operator (their numbers are not float32's anyway), and for a D whose input gradient
    is penalised (`penalised`: R1, WGAN-GP; 7-10 % faster R1 steps, its BatchNorm is the operator's own
    anyway), never under train.to_static. note(line) hears that `on` does nothing where the operator is
    not used (None: silent, the ranks that do not write)."""
    if t.channels_last == "on" and (t.conv == "paddle" or t.to_static):
        raise ConfigError(f"train.channels_last: on needs the oneDNN operator in dygraph (train.conv={t.conv}, "
                          f"train.to_static={str(t.to_static).lower()}); use off or auto")
    if t.channels_last == "on" and not onednn and note:  # a GPU, or train.conv=auto without the operator
        note("note: train.channels_last=on does nothing here (it is for the oneDNN operator's CPU convolutions)")
    if not onednn or t.to_static or t.channels_last == "off":
        return False, False
    return (True, True) if t.channels_last == "on" else (cpu_bfloat16, cpu_bfloat16 or penalised)


def use_channels_last(model, low: bool = False) -> int:
    """ops.channels_last on every chain of layers that `model` and its parts offer
    (channels_last_layers(), gan/models), with bfloat16 activations between their layers in bfloat16
    when `low`; returns how many chains run channels-last."""
    return sum(ops.channels_last(layer.channels_last_layers(), low) for layer in model.sublayers(include_self=True)
               if hasattr(layer, "channels_last_layers"))


def apply_speed_switches(G, D, t, onednn: bool, penalised: bool = False, channels_last: tuple = (False, False)):
    """train.conv (oneDNN convolutions, when `onednn`), train.to_static (`t` = cfg.train), when D's
    input gradient is penalised PenaltyBatchNorm, and channels-last chains (`channels_last`: for G and
    for D, from channels_last_wanted; in bfloat16 their activations are bfloat16 too, but for a penalised
    D: its second derivative needs float32 ones), and the plain NCHW BatchNorm2D layers left to
    ops.ExactBatchNorm2D (Paddle's numbers on all cores; not under to_static, nor in a penalised D),
    applied to G and D in place; parameters, state-dict keys and optimizer state stay as they are."""
    if t.to_static and penalised:  # (seen with the operator's and with Paddle's convolutions, Paddle 3.3 on a CPU)
        raise ConfigError("train.to_static: not with a gradient penalty (R1, WGAN-GP): their second derivative fails "
                          "in Paddle's static graphs; use train.to_static=false")
    for model in (G, D) if onednn else ():
        ops.use_onednn(model)
    if penalised:
        use_penalty_batchnorm(D, fused=onednn)
    for model, wanted in zip((G, D), channels_last):  # (after PenaltyBatchNorm: it joins chains on batchnorm.cc)
        if wanted:
            use_channels_last(model, low=not (penalised and model is D))
    # the BatchNorm2D layers left: Paddle's numbers on all cores (first derivative only: not in a penalised D)
    for model in ((G,) if penalised else (G, D)) if onednn and not t.to_static else ():
        ops.use_exact_batchnorm(model)
    if t.to_static:
        G, D = paddle.jit.to_static(G, full_graph=True), paddle.jit.to_static(D, full_graph=True)
    return G, D
