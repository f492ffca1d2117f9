"""The speed switches applied to freshly built models: train.conv (paddle_gan.ops' oneDNN
convolutions instead of Paddle's CPU kernels) and train.to_static. The trainer and
benchmarks/bench_train.py both go through here, so they time and train the same thing.
"""
from __future__ import annotations

import paddle

from .. import ops
from ..errors import ConfigError
from ..progress import say
from ..registry import Key, declare

declare("train", "kernels",
        conv=Key("auto", "convolutions for CPU training: onednn (paddle_gan/ops, built on first use with g++; ~1.7x "
                         "faster) | paddle (Paddle's own kernels, the reference) | auto = onednn where it builds, else "
                         "paddle", choices=("auto", "onednn", "paddle")),
        to_static=Key(False, "compile G and D with paddle.jit.to_static (same results; for GPUs: on CPU it measured "
                             "about 2x slower than dygraph)"))


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


def apply_speed_switches(G, D, t, onednn: bool):
    """train.conv (oneDNN convolutions, when `onednn`) and train.to_static (`t` = cfg.train) applied
    to G and D in place; parameters, state-dict keys and optimizer state stay as they are."""
    for model in (G, D) if onednn else ():
        ops.use_onednn(model)
    if t.to_static:
        G, D = paddle.jit.to_static(G, full_graph=True), paddle.jit.to_static(D, full_graph=True)
    return G, D
