"""The networks of every model, and the one builder from config.

Each model is a file here named like it (dcgan.py for model.name: dcgan) with generator(m) and
discriminator(m), m being the model section (its own keys: m.arch, config/models.py); the registry of
names is config/models.py MODELS. layers.py has the contract they follow; the builder adds what is
the same for every model: the class head of a conditional D (heads.py), model.init and spectral norm.
"""
from __future__ import annotations

import importlib
import math

import paddle
from paddle import nn

from ...config.models import MODELS
from .heads import HEADS
from .layers import INITS, call, spectral_norm

__all__ = ["NETWORKS", "build_generator", "build_models", "call", "parameter_count"]

NETWORKS = {name: importlib.import_module(f"{__name__}.{name}") for name in MODELS}  # model.name -> its file


def _build_generator(m) -> nn.Layer:
    return INITS[m.init](NETWORKS[m.name].generator(m))


# Paddle names parameters from a process-wide counter, and optimizer state (.pdopt) is keyed by
# those names; building under a fresh name scope gives the same names in every process and on
# every rebuild, so saved optimizer state always matches.
def build_generator(m) -> nn.Layer:
    """Generator from a ModelConfig, named and initialised exactly as build_models names it."""
    with paddle.utils.unique_name.guard():
        return _build_generator(m)


def _networks(m) -> tuple[nn.Layer, nn.Layer]:
    """(G, D) as the model's file builds them, with the class head; no init, no spectral norm."""
    G = NETWORKS[m.name].generator(m)
    D = NETWORKS[m.name].discriminator(m)
    return G, (HEADS[m.d_cond](D, m.num_classes) if m.num_classes else D)


def build_models(m) -> tuple[nn.Layer, nn.Layer]:
    """(G, D) from a ModelConfig; G is built (and initialised from the Paddle RNG) first, then D.
    Conditional models (model.num_classes) take the label as a second input."""
    with paddle.utils.unique_name.guard():
        G = _build_generator(m)
        D = NETWORKS[m.name].discriminator(m)
        D = HEADS[m.d_cond](D, m.num_classes) if m.num_classes else D
        D = INITS[m.init](D)
        return G, (spectral_norm(D) if m.spectral_norm else D)


def parameter_count(m) -> tuple[int, int]:
    """(G's, D's) number of parameters, from their shapes alone: the networks are built under
    paddle.LazyGuard (no weight is made) without model.init and spectral norm (which would make
    tensors; neither changes a count), so a model too big for memory is known in milliseconds,
    before it is built for real."""
    with paddle.LazyGuard(), paddle.utils.unique_name.guard():
        G, D = _networks(m)
    return tuple(sum(math.prod(p.shape) for p in net.parameters()) for net in (G, D))
