"""The networks of every model, and the one builder from config.

Each model is a file here named like it (dcgan.py for model.name: dcgan): a layers.Model registered
in MODELS with its own keys, its checks, generator(m) and discriminator(m), m being the model section
(its own keys: m.arch). The builder adds what is the same for every model: the class head of a
conditional D (heads.py), model.init and spectral norm. A model defined elsewhere registers itself
the same way (@MODELS.register(name) on its class) and needs nothing else.
"""
from __future__ import annotations

import math

import paddle
from paddle import nn

from .heads import HEADS
from .layers import INITS, MODELS, Model, call, spectral_norm

__all__ = ["MODELS", "Model", "build_generator", "build_models", "call", "lazy_networks", "parameter_count"]


def _build_generator(m) -> nn.Layer:
    return INITS[m.init](MODELS[m.name].generator(m))


# Paddle names parameters from a process-wide counter, and optimizer state (.pdopt) is keyed by
# those names; building under a fresh name scope gives the same names in every process and on
# every rebuild, so saved optimizer state always matches.
def build_generator(m) -> nn.Layer:
    """Generator from a model section, named and initialised exactly as build_models names it."""
    with paddle.utils.unique_name.guard():
        return _build_generator(m)


def _with_head(D, m):
    return HEADS[m.d_cond](D, m.num_classes) if m.num_classes else D


def build_models(m) -> tuple[nn.Layer, nn.Layer]:
    """(G, D) from a model section; G is built (and initialised from the Paddle RNG) first, then D.
    Conditional models (model.num_classes) take the label as a second input."""
    with paddle.utils.unique_name.guard():
        G = _build_generator(m)
        D = INITS[m.init](_with_head(MODELS[m.name].discriminator(m), m))
        return G, (spectral_norm(D) if m.spectral_norm else D)


def lazy_networks(m) -> tuple[nn.Layer, nn.Layer]:
    """(G, D) as build_models names and shapes them, built under paddle.LazyGuard: no weight is made
    (milliseconds, whatever the size), and without model.init and spectral norm (which would make
    tensors): what they are, not what they compute."""
    with paddle.LazyGuard(), paddle.utils.unique_name.guard():
        return MODELS[m.name].generator(m), _with_head(MODELS[m.name].discriminator(m), m)


def parameter_count(m) -> tuple[int, int]:
    """(G's, D's) number of parameters, from their shapes alone (lazy_networks), so a model too big for
    memory is known before it is built for real."""
    return tuple(sum(math.prod(p.shape) for p in net.parameters()) for net in lazy_networks(m))


from . import dcgan, dcgan_dense, mlp, resnet, stylegan2  # noqa: E402,F401  (the built-in models register themselves)
