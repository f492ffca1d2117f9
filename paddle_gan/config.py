"""Typed run configuration: commented defaults, YAML loading, strict `-o section.key=value` overrides.

Every key a run can use is a dataclass field below; its comment is its documentation. A YAML file or
an override that names an unknown key, or gives a value of the wrong type, raises ConfigError naming
the key, before anything is built or written.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field

import yaml

from .errors import ConfigError
from .models import MODELS

# The choices of each config key that has a fixed list, written once and imported where needed.
MODEL_NAMES = tuple(MODELS)  # model.name
DATASET_NAMES = ("mnist", "fashion_mnist", "image_folder", "cifar10")  # data.name
SPLITS = ("train", "test")  # data.split
EVAL_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")  # train.eval_metric
EXTRACTORS = ("auto", "lenet", "inception")  # train.eval_extractor, tools/eval.py --extractor
CONVS = ("auto", "onednn", "paddle")  # train.conv
AMP = ("", "float16", "bfloat16")  # train.amp
INITS = ("dcgan", "paddle")  # model.init


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # mnist | fashion_mnist | image_folder | cifar10
    root: str = ""  # folder with the files; "" = default places (README "Data"); required for image_folder
    split: str = "train"  # train | test (IDX and CIFAR datasets)
    download: bool = True  # fetch missing IDX/CIFAR files when online (MD5-checked)
    limit: int = 0  # use only the first N images (0 = all)
    cache: bool = True  # image_folder: keep the decoded uint8 array in ~/.cache/paddle_gan for the next run


@dataclass
class ModelConfig:
    name: str = "dcgan"  # dcgan (ConvT k4 from 1x1) | dcgan_dense (Dense -> 4x4, ConvT k5) | mlp
    z_dim: int = 100  # latent size; z ~ N(0, I)
    img_size: int = 32  # output height = width (conv models: 4 * 2^k; mlp: any)
    channels: int = 1  # 1 = grey, 3 = RGB
    g_channels: int = 64  # conv G: width of the last hidden layer; doubles towards z
    d_channels: int = 64  # conv D: width of the first layer; doubles with depth
    g_hidden: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])  # mlp G hidden sizes
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])  # mlp D hidden sizes
    dropout: float = 0.0  # D: dropout after each hidden LeakyReLU (dcgan_dense setup: 0.3)
    init: str = "dcgan"  # dcgan: weights N(0, 0.02), BN weight N(1, 0.02), biases 0 | paddle: framework default


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam learning rate (DCGAN paper)
    beta1: float = 0.5  # Adam beta1 (DCGAN paper; 0.9 makes GAN training oscillate)
    beta2: float = 0.999  # Adam beta2


@dataclass
class TrainConfig:
    steps: int = 10000  # total G updates; each step is one D update then one G update
    batch_size: int = 64  # images per D and per G update
    seed: int = 0  # same seed + same config -> identical weights on CPU
    log_every: int = 50  # steps between status lines, rows of the metrics log and VisualDL points
    sample_every: int = 500  # steps between fixed-noise sample grids; 0 = at the end of every data epoch (first and last step always get one)
    save_every: int = 1000  # steps between checkpoints (the last step is always saved)
    keep_checkpoints: int = 3  # newest checkpoints kept on disk (0 = keep all)
    num_samples: int = 64  # images in the fixed-noise sample grid
    eval_every: int = 0  # steps between evaluations (0 = off; the last step is evaluated too): metrics/* and checkpoints/best/
    eval_samples: int = 2000  # generated and real images per evaluation during training (tools/eval.py defaults to 10000)
    eval_metric: str = "fid"  # the score that picks checkpoints/best/: fid, kid (lower is better), is, precision, recall, density, coverage
    eval_extractor: str = "auto"  # features for the scores: lenet (MNIST-like), inception (RGB), auto = lenet where one is trained
    inception_weights: str = ""  # FID Inception weights (.pdparams, or pytorch-fid's .pth); "" = ~/.cache/paddle_gan/InceptionV3.pdparams, downloaded once
    progress_gif: bool = False  # at the end of a run, assemble samples/*.png into progress.gif
    amp: str = ""  # "" = float32 | float16 | bfloat16: mixed precision (autocast O1; float16 adds a GradScaler per optimizer). For GPUs: on CPU Paddle's autocast keeps float32, so nothing changes
    conv: str = "auto"  # convolutions for CPU training: onednn (paddle_gan/ops, built on first use with g++; ~1.7x faster) | paddle (Paddle's own kernels, the reference) | auto = onednn where it builds, else paddle
    to_static: bool = False  # compile G and D with paddle.jit.to_static (same results; for GPUs: on CPU it measured about 2x slower than dygraph)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    opt_G: OptimConfig = field(default_factory=OptimConfig)
    opt_D: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Keys that define what is being trained; a resume that changes one of them would load weights or
# data positions into something else. Everything not listed may change on resume (and is logged).
IDENTITY_KEYS = ("model.*", "data.name", "data.split", "data.limit")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _coerce(key: str, value, tp):
    """Check `value` against the annotated type `tp`; return the (possibly widened) value."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        # PyYAML reads `2e-4` (no dot) as a string; accept any string that is a finite number.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp} for {key}")  # a bug in this file, not user input


def _section_types(cfg: Config) -> dict[str, dict[str, object]]:
    return {
        f.name: typing.get_type_hints(type(getattr(cfg, f.name))) for f in dataclasses.fields(cfg)
    }


def _set(cfg: Config, key: str, value, raw: bool = False) -> None:
    types = _section_types(cfg)
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in types:
        raise ConfigError(f"{key}: unknown key (sections: {', '.join(types)})")
    section, name = parts
    if name not in types[section]:
        known = ", ".join(types[section])
        raise ConfigError(f"{key}: unknown key (known in {section}: {known})")
    tp = types[section][name]
    if raw and tp is not str:  # an -o value: parse it as YAML, except for plain strings
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{key}: cannot parse value {value!r}") from None
    setattr(getattr(cfg, section), name, _coerce(key, value, tp))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        _set(cfg, key.strip(), value, raw=True)
    return cfg


def from_dict(data: dict, where: str = "config") -> Config:
    cfg = Config()
    if data is None:
        return cfg
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
    sections = [f.name for f in dataclasses.fields(cfg)]
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{section}: unknown section (sections: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys, got {values!r}")
        for name, value in values.items():
            _set(cfg, f"{section}.{name}", value)
    return cfg


def load_config(path: str | None = None, overrides: list[str] = ()) -> Config:
    """Defaults <- YAML file <- overrides, then semantic checks. Raises ConfigError."""
    data = None
    if path is not None:
        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
    cfg = from_dict(data, where=str(path))
    apply_overrides(cfg, list(overrides))
    validate(cfg)
    return cfg


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
    need(m.z_dim >= 1, "model.z_dim", "must be >= 1")
    need(m.channels in (1, 3), "model.channels", f"must be 1 or 3, got {m.channels}")
    need(m.img_size >= 4, "model.img_size", "must be >= 4")
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
    need(t.steps >= 0, "train.steps", "must be >= 0")
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
    need(t.conv in CONVS, "train.conv", f"must be auto, onednn or paddle, got {t.conv!r}")
    need(t.amp in AMP, "train.amp", f"must be \"\" (off), float16 or bfloat16, got {t.amp!r}")
    for name in ("opt_G", "opt_D"):
        o = getattr(cfg, name)
        need(o.lr > 0, f"{name}.lr", "must be > 0")
        need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, f"{name}.beta1", "betas must be in [0, 1)")


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def diff(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(identity changes, other changes) between two configs, as 'key: old -> new' strings."""
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    identity, other = [], []
    for key in a:
        if a[key] == b[key]:
            continue
        line = f"{key}: {a[key]!r} -> {b[key]!r}"
        frozen = any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in IDENTITY_KEYS)
        (identity if frozen else other).append(line)
    return identity, other


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
