"""Value checks that types alone cannot express (ranges, choices, keys that go together); each
error names its key."""
from __future__ import annotations

import re

from ..errors import ConfigError
from .schema import (AMP, CONVS, D_CONDS, D_NORMS, DATASET_NAMES, EVAL_METRICS, EXTRACTORS, INITS, LABELLED, LOSSES,
                     MODEL_NAMES, SPLITS, Config, TrainConfig)


def validate(cfg: Config) -> None:
    """Value checks that types alone cannot express; each error names its key."""
    m, d, t = cfg.model, cfg.data, cfg.train

    def need(ok: bool, key: str, msg: str):
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    need(m.name in MODEL_NAMES, "model.name", f"unknown model {m.name!r} (choose from {', '.join(MODEL_NAMES)})")
    need(d.name in DATASET_NAMES, "data.name", f"unknown dataset {d.name!r} (choose from {', '.join(DATASET_NAMES)})")
    need(d.split in SPLITS, "data.split", f"must be train or test, got {d.split!r}")
    need(d.name != "image_folder" or d.root != "", "data.root", "image_folder needs data.root (a folder of images)")
    need(d.limit >= 0, "data.limit", "must be >= 0")
    need(d.max_pixels >= 1, "data.max_pixels", "must be >= 1")
    need(m.z_dim >= 1, "model.z_dim", "must be >= 1")
    need(m.channels in (1, 3), "model.channels", f"must be 1 or 3, got {m.channels}")
    need(4 <= m.img_size <= 1024, "model.img_size", f"must be in 4..1024, got {m.img_size}")
    if m.name != "mlp":
        k = m.img_size // 4
        need(m.img_size % 4 == 0 and k >= 2 and k & (k - 1) == 0, "model.img_size",
             f"conv models need 4 * 2^k pixels (8, 16, 32, 64, ...), got {m.img_size}")
    need(m.g_channels >= 1, "model.g_channels", "must be >= 1")
    need(m.d_channels >= 1, "model.d_channels", "must be >= 1")
    need(len(m.g_hidden) >= 1 and min(m.g_hidden) >= 1, "model.g_hidden", "needs >= 1 positive size")
    need(len(m.d_hidden) >= 1 and min(m.d_hidden) >= 1, "model.d_hidden", "needs >= 1 positive size")
    need(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")
    need(m.init in INITS, "model.init", f"must be dcgan or paddle, got {m.init!r}")
    need(m.d_norm in D_NORMS, "model.d_norm", f"must be one of {', '.join(D_NORMS)}, got {m.d_norm!r}")
    need(m.d_norm != "batch" or m.name == "dcgan", "model.d_norm",
         f"{m.name}'s D has no normalisation layers to choose (only dcgan's has BatchNorm)")
    need(m.num_classes >= 0, "model.num_classes", "must be >= 0 (0 = unconditional)")
    need(m.num_classes != 1, "model.num_classes", "one class is no condition: use 0 (unconditional) or >= 2")
    need(m.d_cond in D_CONDS, "model.d_cond", f"must be projection or acgan, got {m.d_cond!r}")
    if m.num_classes and d.name in LABELLED:
        need(m.num_classes == LABELLED[d.name], "model.num_classes",
             f"{d.name} has {LABELLED[d.name]} classes, got {m.num_classes}")
    need(t.steps >= 0, "train.steps", "must be >= 0")
    need(0 <= t.seed < 2 ** 32, "train.seed", f"must be in 0..{2 ** 32 - 1}, got {t.seed}")
    need(t.batch_size >= 1, "train.batch_size", f"must be >= 1, got {t.batch_size}")
    for key in ("log_every", "save_every"):
        need(getattr(t, key) >= 1, f"train.{key}", "must be >= 1")
    need(t.sample_every >= 0, "train.sample_every", "must be >= 0 (0 = once per epoch)")
    need(t.keep_checkpoints >= 0, "train.keep_checkpoints", "must be >= 0")
    need(t.num_samples >= 1, "train.num_samples", "must be >= 1")
    need(t.eval_every >= 0, "train.eval_every", "must be >= 0 (0 = off)")
    need(t.eval_samples >= 10, "train.eval_samples", "must be >= 10")
    need(t.eval_metric in EVAL_METRICS, "train.eval_metric",
         f"unknown score {t.eval_metric!r} (choose from {', '.join(EVAL_METRICS)})")
    need(t.eval_extractor in EXTRACTORS, "train.eval_extractor",
         f"must be auto, lenet or inception, got {t.eval_extractor!r}")
    need(bool(re.match(r"^(auto|cpu|gpu(:\d+)?)$", t.device)), "train.device",
         f"must be auto, cpu, gpu or gpu:N, got {t.device!r}")
    need(t.conv in CONVS, "train.conv", f"must be auto, onednn or paddle, got {t.conv!r}")
    need(t.loss in LOSSES, "train.loss", f"unknown loss {t.loss!r} (choose from {', '.join(LOSSES)})")
    need(t.gp_lambda > 0, "train.gp_lambda", "must be > 0")
    need(t.loss == "wgan_gp" or t.gp_lambda == TrainConfig.gp_lambda, "train.gp_lambda",
         f"only train.loss=wgan_gp has a gradient penalty (train.loss is {t.loss})")
    need(t.r1_gamma >= 0, "train.r1_gamma", "must be >= 0 (0 = off)")
    need(t.n_critic >= 1, "train.n_critic", "must be >= 1")
    need(0 <= t.ema < 1, "train.ema", f"must be in [0, 1) (0 = off), got {t.ema}")
    if (t.loss == "wgan_gp" or t.r1_gamma > 0) and m.dropout > 0:  # Paddle's dropout has no second derivative
        need(False, "model.dropout", f"{'wgan_gp' if t.loss == 'wgan_gp' else 'train.r1_gamma'} penalises D's input "
             f"gradient, which needs D's second derivatives, and Paddle's dropout has none: set model.dropout=0")
    need(t.amp in AMP, "train.amp", f"must be \"\" (off), float16 or bfloat16, got {t.amp!r}")
    for name in ("opt_G", "opt_D"):
        o = getattr(cfg, name)
        need(o.lr > 0, f"{name}.lr", "must be > 0")
        need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, f"{name}.beta1", "betas must be in [0, 1)")
