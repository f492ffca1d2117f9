"""What a checkpoint must hold to be loaded into the models and optimizers of its own config: every
tensor's key, shape and dtype (run/checkpoint.check_fits compares). Paddle's set_state_dict only warns
about a tensor that does not fit and keeps the fresh one, so a re-signed G.pdparams with one wrong
shape would otherwise resume, generate and evaluate with random weights."""
from __future__ import annotations

import paddle

from ..run.checkpoint import NAMES_KEY
from .models import build_generator, build_models
from .step import make_optimizers

ADAM = (("moment1_0", None), ("moment2_0", None), ("beta1_pow_acc_0", [1]), ("beta2_pow_acc_0", [1]))


def _dtype(t) -> str:
    return str(t.dtype).replace("paddle.", "")


def layer_state(model) -> dict:
    return {k: (list(v.shape), _dtype(v)) for k, v in model.state_dict().items()}


def adam_state(opt, loaded: dict | None = None) -> dict:
    """Adam's accumulators of each trainable parameter, keyed as Paddle saves them. An optimizer that
    has not stepped yet has none: a checkpoint of step 0 holds no accumulators, which fits too."""
    loaded = loaded or {}
    want = {}
    if any(k != NAMES_KEY for k in loaded):  # (paddle.save's name map is checked by check_fits)
        for p in opt._parameter_list:
            if p.stop_gradient:  # BatchNorm's running statistics: parameters Adam never updates
                continue
            for suffix, shape in ADAM:
                want[f"{p.name}_{suffix}"] = (shape or list(p.shape), _dtype(p))
    return want


def expected(cfg, loaded: dict | None = None) -> dict:
    """{G, D, opt_G, opt_D, G_ema: {key: (shape, dtype)}} for a run of config cfg."""
    loaded = loaded or {}
    with paddle.utils.unique_name.guard():
        G, D = build_models(cfg.model)
        opt_G, opt_D = make_optimizers(cfg, G, D)
    g = layer_state(G)
    return {"G": g, "D": layer_state(D), "opt_G": adam_state(opt_G, loaded.get("opt_G")),
            "opt_D": adam_state(opt_D, loaded.get("opt_D")), "G_ema": g}


def expected_generator(cfg) -> dict:
    return layer_state(build_generator(cfg.model))
