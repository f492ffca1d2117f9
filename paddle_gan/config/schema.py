"""Every key a run can use. The trainer's own keys are declared below (with the keys that choose a
component of a family: model.name, train.loss, train.amp, ...: their choices are the family's
registry); every component declares its own keys next to its code (registry.declare: the objective's
terms, the EMA, the convolution kernels, the metrics; a model's own keys in its file,
gan/models/<name>.py). A key is its default, its one-line comment (its documentation: --help shows
it), its bounds and its choices (registry.Key). Sections are built from the keys declared when a
Config is made, so a component registered later has its keys too. In a file and in -o overrides the
model section is flat: model.g_channels, not model.arch.g_channels."""
from __future__ import annotations

import copy

from .. import device
from ..registry import KEYS, Key, declare
from ..data import DATASETS, SPLITS
from ..gan.augment import AUGMENTS
from ..gan.losses import LOSSES
from ..gan.models import MODELS
from ..gan.models.heads import HEADS
from ..gan.models.layers import INITS
from ..gan.precision import PRECISIONS
from ..metrics import EXTRACTORS, METRICS
from .. import gan  # noqa: F401  (the objective's terms, the EMA and the kernels declare their keys on import)

SECTIONS = ("data", "model", "train", "opt_G", "opt_D")
CORE = "the trainer"  # owner of the keys below

declare("data", CORE,
        name=Key("fashion_mnist", "which dataset (data/: mnist | fashion_mnist | image_folder | cifar10)",
                 choices=DATASETS, identity=True),
        root=Key("", "folder with the files; \"\" = default places (README \"Data\"); required for image_folder"),
        split=Key("train", "train | test (IDX and CIFAR datasets)", choices=SPLITS, identity=True),
        download=Key(True, "fetch missing IDX/CIFAR files when online (MD5-checked)"),
        limit=Key(0, "use only the first N images (0 = all)", low=0, high=10 ** 9, identity=True),
        cache=Key(True, "image_folder: keep the decoded uint8 array in ~/.cache/paddle_gan for the next run"),
        max_pixels=Key(64_000_000, "image_folder: images with more pixels are skipped and counted (read from the "
                                   "header, before decoding)", low=1, high=1 << 31))
declare("model", CORE,
        name=Key("dcgan", "which model (its networks and its own keys: gan/models/<name>.py)", choices=MODELS),
        z_dim=Key(100, "latent size; z ~ N(0, I)", low=1, high=4096),
        img_size=Key(32, "output height = width (what a model can build: its checks say)", low=4, high=1024),
        channels=Key(1, "1 = grey, 3 = RGB", choices=(1, 3)),
        init=Key("dcgan", "dcgan: weights N(0, 0.02), BN weight N(1, 0.02), biases 0 | ortho: orthogonal weights, "
                          "biases 0 | paddle: framework default", choices=INITS),
        spectral_norm=Key(False, "spectral normalisation of every weight layer of D (Miyato 2018)"),
        num_classes=Key(0, "class-conditional G and D (0 = unconditional); how G takes the label is the model's "
                           "choice", low=0, high=100_000),
        d_cond=Key("projection", "how a conditional D uses the label: projection (Miyato & Koyama 2018) | acgan "
                                 "(a class head, Odena 2017)", choices=HEADS))
declare("train", CORE,
        steps=Key(10000, "total G updates; each step is train.n_critic D updates then one G update", low=0,
                  high=10 ** 9),
        minutes=Key(0.0, "a time budget: stop (saved, like Ctrl-C; exit 0) at the first step after this many minutes "
                         "of this start's training (0 = none)", low=0, high=10 ** 7),
        batch_size=Key(64, "images per D and per G update", low=1, high=65536),
        seed=Key(0, "same seed + same config -> identical weights on CPU", low=0, high=2 ** 32 - 1),
        log_every=Key(50, "steps between status lines, rows of the metrics log and VisualDL points", low=1, high=10 ** 9),
        sample_every=Key(500, "steps between fixed-noise sample grids; 0 = at the end of every data epoch (first and "
                              "last step always get one)", low=0, high=10 ** 9),
        save_every=Key(1000, "steps between checkpoints (the last step is always saved)", low=1, high=10 ** 9),
        keep_checkpoints=Key(3, "newest checkpoints kept on disk (0 = keep all)", low=0, high=10 ** 6),
        num_samples=Key(64, "images in the fixed-noise sample grid", low=1, high=4096),
        progress_gif=Key(False, "at the end of a run, assemble samples/*.png into progress.gif"),
        device=Key("auto", "auto (GPU 0 when Paddle is a CUDA build and sees a GPU, else the CPU) | cpu | gpu | gpu:N"),
        loss=Key("nonsaturating", "nonsaturating (DCGAN's BCE) | hinge (SNGAN) | wgan_gp (critic + gradient penalty) | "
                                  "lsgan (least squares); formulas in gan/losses.py", choices=LOSSES),
        n_critic=Key(1, "D updates per G update, each on its own real batch (WGAN-GP: 5)", low=1, high=100),
        diffaug=Key("", "DiffAugment policy (Zhao 2020): comma-separated of color, translation, cutout, applied to "
                        "every image D sees; \"\" = off", choices=AUGMENTS, many=True),
        amp=Key("", "\"\" = float32 | float16 | bfloat16: mixed precision (gan/precision.py says what each does on "
                    "a GPU and on a CPU)", choices=PRECISIONS),
        eval_metric=Key("fid", "the score that picks checkpoints/best/: fid, kid (lower is better), is, precision, "
                               "recall, density, coverage (a score of train.eval_metrics)"),
        eval_metrics=Key("fid,class_acc", "the metrics of an evaluation during training, comma-separated "
                                          "(metrics/catalog.py: fid, kid, is, prdc, class_acc; class_acc scores "
                                          "conditional runs only); the one train.eval_metric needs is added",
                         choices=METRICS, many=True),
        eval_extractor=Key("auto", "features for the scores: lenet (MNIST-like), inception (RGB), auto = lenet where "
                                   "one is trained", choices=("auto", *EXTRACTORS)))
for opt in ("opt_G", "opt_D"):
    declare(opt, CORE,
            lr=Key(2e-4, "Adam learning rate (DCGAN paper)"),
            beta1=Key(0.5, "Adam beta1 (DCGAN paper; 0.9 makes GAN training oscillate)"),
            beta2=Key(0.999, "Adam beta2"))


def keys(section: str) -> dict[str, Key]:
    """The keys of a section as declared now: the trainer's first, then the components' in the order
    they were declared. (The model section's own keys: model_keys.)"""
    table = KEYS.get(section, {})
    ordered = [n for n, (_, owner) in table.items() if owner == CORE] + \
              [n for n, (_, owner) in table.items() if owner != CORE]
    return {n: table[n][0] for n in ordered}


def model_keys(name: str) -> dict[str, Key]:
    """The own keys of model `name` (its file's `keys`)."""
    return dict(MODELS[name].keys)


class Section:
    """A config section: one attribute per key, at its default until set. The model section also
    holds `arch`, the section of the chosen model's own keys."""

    def __init__(self, name: str, table: dict[str, Key]):
        object.__setattr__(self, "_name", name)
        for key, spec in table.items():
            object.__setattr__(self, key, copy.deepcopy(spec.default))

    def to_dict(self) -> dict:
        """The section as files write it (the model section flat: its keys, then the model's own)."""
        out = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "arch"}
        return {**out, **(self.arch.to_dict() if "arch" in vars(self) else {})}

    def __eq__(self, other) -> bool:
        return isinstance(other, Section) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


def model_section(name: str, like: Section | None = None) -> Section:
    """A model section for model `name`: the common keys (as in `like`, if given; with the defaults the
    model changes) and its own at their defaults."""
    m = Section("model", keys("model"))
    for k, v in (like.to_dict() if like is not None else {}).items():
        if k in keys("model"):
            object.__setattr__(m, k, copy.deepcopy(v))
    object.__setattr__(m, "name", name)
    for k, v in MODELS[name].common_defaults.items():
        object.__setattr__(m, k, v)
    object.__setattr__(m, "arch", Section(name, model_keys(name)))
    return m


class Config:
    """A run's configuration: the sections data, model, train, opt_G, opt_D at their defaults."""

    def __init__(self):
        for s in SECTIONS:
            setattr(self, s, model_section(keys("model")["name"].default) if s == "model" else Section(s, keys(s)))

    def to_dict(self) -> dict:
        return {s: getattr(self, s).to_dict() for s in SECTIONS}

    def __eq__(self, other) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()


def describe() -> str:
    """Every key with its default and comment, as --help shows them: the sections, then each model's own."""
    import yaml

    def line(name: str, spec: Key) -> str:
        value = yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()
        return f"  {name} = {value}  # {spec.doc}"

    out = []
    for section in SECTIONS:
        out += [f"{section}:"] + [line(f"{section}.{n}", k) for n, k in keys(section).items()]
    for name in MODELS:
        out += [f"model.name={name}: {(MODELS[name].__doc__ or '').strip().splitlines()[0]}"]
        out += [line(f"model.{n}", k) for n, k in model_keys(name).items()]
    return "\n".join(out)


def default(key: str):
    """The default of a key 'section.name' (a model's own keys: of the default model... or of any model
    that has it)."""
    section, name = key.split(".")
    table = keys(section)
    if name in table:
        return table[name].default
    return next(model_keys(m)[name].default for m in MODELS if name in model_keys(m))


__all__ = ["Config", "Key", "SECTIONS", "Section", "default", "describe", "device", "keys", "model_keys", "model_section"]
