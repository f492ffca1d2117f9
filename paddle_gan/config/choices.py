"""The choice lists of the config keys that have one, each written once: the checks, the error
messages and --help read them from here, and a test compares each with the table that implements
it (the data loaders, the extractors, the precisions, ...). model.name's list is the registry in
models.py; train.loss's is the table of objectives in gan/losses.py."""
from __future__ import annotations

DATASET_NAMES = ("mnist", "fashion_mnist", "image_folder", "cifar10")  # data.name (data.LOADERS)
SPLITS = ("train", "test")  # data.split
LABELLED = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10}  # datasets with class labels, and how many
EVAL_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")  # train.eval_metric
EXTRACTORS = ("auto", "lenet", "inception")  # train.eval_extractor, tools/eval.py --extractor
CONVS = ("auto", "onednn", "paddle")  # train.conv (gan/kernels.py)
AMP = ("", "float16", "bfloat16")  # train.amp (gan/precision.py)
INITS = ("dcgan", "paddle", "ortho")  # model.init (gan/models/layers.py INITS)
D_CONDS = ("projection", "acgan")  # model.d_cond (gan/models/heads.py HEADS)
CLASSIFYING = {"projection": False, "acgan": True}  # whether a d_cond's head classifies (its class losses apply)
DIFFAUG = ("color", "translation", "cutout")  # train.diffaug's policies (gan/augment.py AUGMENTS)

ECHO = 60  # characters of a bad value that an error line repeats


def cut(text: str) -> str:
    """text, cut to ECHO characters: an error line names a bad value, never megabytes of it."""
    return text if len(text) <= ECHO else f"{text[:ECHO]}... ({len(text)} characters)"


def echo(value) -> str:
    """repr(value), cut to ECHO characters."""
    return cut(repr(value))


def one_of(value, choices) -> str:
    """The error text of a value that is not one of `choices`, built from the choice list itself."""
    return f"must be one of {', '.join(repr(c) if c == '' else str(c) for c in choices)}, got {echo(value)}"
