"""Value checks that types alone cannot express (ranges, choices, keys that go together); each
error names its key. The chosen model checks its own keys (models.py); every choice list comes from
choices.py or the table that implements it."""
from __future__ import annotations

import dataclasses

from .. import device
from ..errors import ConfigError
from ..gan.losses import LOSSES
from .choices import (AMP, CLASSIFYING, CONVS, D_CONDS, DATASET_NAMES, DIFFAUG, EVAL_METRICS, EXTRACTORS, INITS,
                      LABELLED, SPLITS, echo, one_of)
from .models import MODELS
from .schema import Config, TrainConfig


# Upper bounds of the numeric keys, checked before anything is allocated: far beyond any real run,
# so that a typo or a hostile file (n_critic = 10^23 collected 23 GB of batches) is one error line.
BOUNDS = {
    "data.limit": 10 ** 9, "data.max_pixels": 1 << 31,
    "model.z_dim": 4096, "model.num_classes": 100_000,
    "train.steps": 10 ** 9, "train.batch_size": 65536, "train.log_every": 10 ** 9, "train.sample_every": 10 ** 9,
    "train.save_every": 10 ** 9, "train.keep_checkpoints": 10 ** 6, "train.num_samples": 4096,
    "train.eval_every": 10 ** 9, "train.eval_samples": 1_000_000, "train.n_critic": 100, "train.r1_every": 10 ** 6,
}
MAX_WIDTH = 8192  # any layer width of any model (channels, hidden sizes)
MAX_LAYERS = 64  # entries of a list of hidden sizes


def _value(cfg: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def validate(cfg: Config) -> None:
    """Value checks that types alone cannot express; each error names its key."""
    m, d, t = cfg.model, cfg.data, cfg.train

    def need(ok: bool, key: str, msg: str):
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    for key, bound in BOUNDS.items():
        need(_value(cfg, key) <= bound, key, f"must be <= {bound}, got {echo(_value(cfg, key))}")
    for name, value in dataclasses.asdict(m.arch).items():  # a model's own widths
        widths = value if isinstance(value, list) else [value] if name.endswith("channels") else []
        need(len(widths) <= MAX_LAYERS, f"model.{name}", f"at most {MAX_LAYERS} layers, got {len(widths)}")
        need(all(w <= MAX_WIDTH for w in widths), f"model.{name}", f"widths must be <= {MAX_WIDTH}, got {echo(value)}")

    def choice(value, choices, key: str):
        need(value in choices, key, one_of(value, choices))

    choice(m.name, MODELS, "model.name")
    choice(d.name, DATASET_NAMES, "data.name")
    choice(d.split, SPLITS, "data.split")
    need(d.name != "image_folder" or d.root != "", "data.root", "image_folder needs data.root (a folder of images)")
    need(d.limit >= 0, "data.limit", "must be >= 0")
    need(d.max_pixels >= 1, "data.max_pixels", "must be >= 1")
    need(m.z_dim >= 1, "model.z_dim", "must be >= 1")
    need(m.channels in (1, 3), "model.channels", f"must be 1 or 3, got {echo(m.channels)}")
    need(4 <= m.img_size <= 1024, "model.img_size", f"must be in 4..1024, got {echo(m.img_size)}")
    choice(m.init, INITS, "model.init")
    need(m.num_classes >= 0, "model.num_classes", "must be >= 0 (0 = unconditional)")
    need(m.num_classes != 1, "model.num_classes", "one class is no condition: use 0 (unconditional) or >= 2")
    choice(m.d_cond, D_CONDS, "model.d_cond")
    if m.num_classes and d.name in LABELLED:
        need(m.num_classes == LABELLED[d.name], "model.num_classes",
             f"{d.name} has {LABELLED[d.name]} classes, got {m.num_classes}")
    m.arch.check(cfg, need)
    need(t.steps >= 0, "train.steps", "must be >= 0")
    need(0 <= t.seed < 2 ** 32, "train.seed", f"must be in 0..{2 ** 32 - 1}, got {echo(t.seed)}")
    need(t.batch_size >= 1, "train.batch_size", f"must be >= 1, got {t.batch_size}")
    for key in ("log_every", "save_every"):
        need(getattr(t, key) >= 1, f"train.{key}", "must be >= 1")
    need(t.sample_every >= 0, "train.sample_every", "must be >= 0 (0 = once per epoch)")
    need(t.keep_checkpoints >= 0, "train.keep_checkpoints", "must be >= 0")
    need(t.num_samples >= 1, "train.num_samples", "must be >= 1")
    need(t.eval_every >= 0, "train.eval_every", "must be >= 0 (0 = off)")
    need(t.eval_samples >= 10, "train.eval_samples", "must be >= 10")
    choice(t.eval_metric, EVAL_METRICS, "train.eval_metric")
    choice(t.eval_extractor, EXTRACTORS, "train.eval_extractor")
    need(device.valid(t.device), "train.device", one_of(t.device, device.CHOICES))
    choice(t.conv, CONVS, "train.conv")
    choice(t.loss, LOSSES, "train.loss")
    loss = LOSSES[t.loss]
    need(t.gp_lambda > 0, "train.gp_lambda", "must be > 0")
    need(loss.gradient_penalty or t.gp_lambda == TrainConfig.gp_lambda, "train.gp_lambda",
         f"train.loss={t.loss} has no gradient penalty (only {', '.join(n for n, l in LOSSES.items() if l.gradient_penalty)})")
    need(t.r1_gamma >= 0, "train.r1_gamma", "must be >= 0 (0 = off)")
    need(t.n_critic >= 1, "train.n_critic", "must be >= 1")
    need(t.r1_every >= 1, "train.r1_every", "must be >= 1 (1 = every D update)")
    need(t.r1_every == 1 or t.r1_gamma > 0, "train.r1_every", "needs the R1 penalty on (train.r1_gamma > 0)")
    need(0 <= t.ema < 1, "train.ema", f"must be in [0, 1) (0 = off), got {t.ema}")
    classifies = m.num_classes > 0 and CLASSIFYING[m.d_cond]
    # (train.class_fakes does nothing without a classifying D, and every checkpoint since the key
    # exists records it, whatever the model: it is not refused)
    for key in ("class_weight_D", "class_weight_G"):
        given = getattr(t, key) != getattr(TrainConfig, key)
        need(not given or classifies, f"train.{key}", f"only a classifying D has class losses "
             f"(model.num_classes > 0 and model.d_cond {' or '.join(k for k, v in CLASSIFYING.items() if v)})")
    for key in ("class_weight_D", "class_weight_G"):
        need(getattr(t, key) >= 0, f"train.{key}", "must be >= 0")
    policies = [p.strip() for p in t.diffaug.split(",")] if t.diffaug.strip() else []
    for i, name in enumerate(policies):
        need(name in DIFFAUG, "train.diffaug", f"unknown augmentation {echo(name)} (choose from {', '.join(DIFFAUG)})")
        need(name not in policies[:i], "train.diffaug", f"{name} is given twice (each augmentation once: "
                                                       f"{', '.join(DIFFAUG)})")
    broken = m.arch.breaks_second_derivatives()
    if (loss.gradient_penalty or t.r1_gamma > 0) and broken:
        penalty = f"train.loss={t.loss}" if loss.gradient_penalty else "train.r1_gamma"
        need(False, broken, f"{penalty} penalises D's input gradient, which needs D's second derivatives, and "
                            f"Paddle's dropout has none: set {broken}=0")
    choice(t.amp, AMP, "train.amp")
    for name in ("opt_G", "opt_D"):
        o = getattr(cfg, name)
        need(o.lr > 0, f"{name}.lr", "must be > 0")
        need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, f"{name}.beta1", "betas must be in [0, 1)")
