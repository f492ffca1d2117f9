"""One training state: everything a resume restores (G, D, the EMA generator, both optimizers, the
precision's loss scales, the state of the objective's terms, the data position and the step), saved
and restored through state_dict() / load_state_dict() only, so that saving and restoring cannot
drift apart. Also the one place an optimizer is built and its state is described (Adam's
accumulator names are spelled here and nowhere else), and what a checkpoint of a config must hold:
every tensor's key, shape and dtype, from the networks' shapes alone (expected), which a loaded
state dict is checked against before anything is set (check_fits: Paddle's set_state_dict only
warns about a tensor that does not fit and keeps the fresh one).
"""
from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from ..errors import CheckpointError, echo
from .models import lazy_networks

NAMES_KEY = "StructuredToParameterName@@"  # paddle.save's map of structured names to parameter names
# Adam's accumulators of one parameter, as Paddle names them (suffix, shape; None = the parameter's)
ADAM = (("moment1_0", None), ("moment2_0", None), ("beta1_pow_acc_0", [1]), ("beta2_pow_acc_0", [1]))


def make_optimizer(opt, model) -> paddle.optimizer.Optimizer:
    """The optimizer of a network from its config section (opt_G or opt_D): Adam."""
    return paddle.optimizer.Adam(learning_rate=opt.lr, beta1=opt.beta1, beta2=opt.beta2, parameters=model.parameters())


def make_optimizers(cfg, G, D):
    """(opt_G, opt_D)."""
    return make_optimizer(cfg.opt_G, G), make_optimizer(cfg.opt_D, D)


def optimizer_state(params, stepped: bool = True) -> dict:
    """The accumulators an optimizer of `params` holds after its first step, keyed as Paddle saves them
    (none before it: a checkpoint of step 0 holds none, which fits too). BatchNorm's running
    statistics are parameters no optimizer updates."""
    if not stepped:
        return {}
    return {f"{p.name}_{suffix}": (shape or list(p.shape), _dtype(p))
            for p in params if not p.stop_gradient for suffix, shape in ADAM}


def _dtype(t) -> str:
    return str(t.dtype).replace("paddle.", "")


def layer_state(model) -> dict:
    return {k: (list(v.shape), _dtype(v)) for k, v in model.state_dict().items()}


def _spectral_norm_state(D) -> dict:
    """D's state keys as spectral_norm (layers.py) leaves them: each weight of a Conv2D, Linear or
    Embedding becomes weight_orig, with its power-iteration vectors weight_u [h] and weight_v [w]
    (h = the output dimension: 1 for Linear's [in, out] weight, else 0)."""
    state = layer_state(D)
    for prefix, layer in D.named_sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Linear, nn.Embedding)):
            key = f"{prefix}.weight" if prefix else "weight"
            shape, dtype = state.pop(key)
            h = shape[1 if isinstance(layer, nn.Linear) else 0]
            state[key + "_orig"] = (shape, dtype)
            state[key + "_u"], state[key + "_v"] = ([h], dtype), ([int(np.prod(shape)) // h], dtype)
    return state


def expected(cfg, loaded: dict | None = None) -> dict:
    """{G, D, opt_G, opt_D, G_ema: {key: (shape, dtype)}} that a checkpoint of config cfg holds: the
    networks built under paddle.LazyGuard (shapes and names, no weight made: milliseconds, whatever
    the size), spectral norm's keys as it makes them, the optimizers' accumulators where the
    checkpoint has any."""
    loaded = loaded or {}
    m = cfg.model
    G, D = lazy_networks(m)
    g = layer_state(G)
    stepped = {k: any(n != NAMES_KEY for n in loaded.get(k, {})) for k in ("opt_G", "opt_D")}
    return {"G": g, "D": _spectral_norm_state(D) if m.spectral_norm else layer_state(D), "G_ema": g,
            "opt_G": optimizer_state(G.parameters(), stepped["opt_G"]),
            "opt_D": optimizer_state(D.parameters(), stepped["opt_D"])}


def check_fits(path: str, loaded: dict, expected_state: dict) -> None:
    """Raise CheckpointError (one line naming the file, the key and both shapes or dtypes) unless the
    state dict `loaded` has exactly the tensors of `expected_state` ({key: (shape, dtype name)})."""
    for key, (shape, dtype) in expected_state.items():
        if key not in loaded:
            raise CheckpointError(f"{path}: missing {key} (the model has it: {dtype} {shape})")
        v = loaded[key]
        have = (list(np.shape(v)), str(np.asarray(v).dtype) if isinstance(v, np.ndarray) else type(v).__name__)
        if have[0] != list(shape) or have[1] != dtype:
            raise CheckpointError(f"{path}: {key} is {have[1]} {have[0]}, the model expects {dtype} {list(shape)}")
    names = loaded.get(NAMES_KEY, {})
    if not isinstance(names, dict) or not all(isinstance(x, str) for kv in names.items() for x in kv):
        raise CheckpointError(f"{path}: {NAMES_KEY} must map names to names")
    extra = [k for k in loaded if k not in expected_state and k != NAMES_KEY]
    if extra:
        raise CheckpointError(f"{path}: {len(extra)} tensor(s) the model does not have, e.g. {echo(extra[0])}")


class TrainingState:
    """Everything a resume restores, as one object: the networks and optimizers (each saved as its own
    state-dict file), the displayed generator (`display`: G, or the EMA one: generators.py), the
    precision policy's loss scales, the objective's term state, the data position and the step."""

    def __init__(self, G, D, opt_G, opt_D, display, precision, objective, stream, step: int = 0):
        self.G, self.D, self.opt_G, self.opt_D, self.display = G, D, opt_G, opt_D, display
        self.precision, self.objective, self.stream, self.step = precision, objective, stream, step

    def tensors(self) -> dict:
        """The objects whose state dicts are the checkpoint's tensor files: G, D, opt_G, opt_D[, G_ema]."""
        return {"G": self.G, "D": self.D, "opt_G": self.opt_G, "opt_D": self.opt_D, **self.display.state_dicts()}

    def state_dict(self) -> dict:
        """{G, D, opt_G, opt_D[, G_ema]: their state dicts, amp, terms, data, step}."""
        return {**{k: obj.state_dict() for k, obj in self.tensors().items()}, "amp": self.precision.state_dict(),
                "terms": self.objective.state_dict(), "data": self.stream.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict, where: dict | None = None) -> None:
        """Restore a state_dict() (a loaded checkpoint: run/checkpoint.load_checkpoint). Every tensor
        file is checked against the live networks and optimizers first; a mismatch is a
        CheckpointError naming the file (where: {key: its path}) and nothing is set."""
        where = where or {}
        live = {"G": layer_state(self.G), "D": layer_state(self.D), "G_ema": layer_state(self.G),
                "opt_G": optimizer_state(self.G.parameters(), any(k != NAMES_KEY for k in state.get("opt_G", {}))),
                "opt_D": optimizer_state(self.D.parameters(), any(k != NAMES_KEY for k in state.get("opt_D", {})))}
        for key in self.tensors():
            if key in state:
                check_fits(where.get(key, key), state[key], live[key])
        for key, obj in self.tensors().items():
            if key in state:
                obj.set_state_dict(state[key])
        self.display.restored("G_ema" in state, state["step"])
        self.precision.set_state_dict(state.get("amp", {}))
        self.objective.set_state_dict(state.get("terms", {}))
        self.stream.load_state_dict(state["data"])
        self.step = state["step"]
