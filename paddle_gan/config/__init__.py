"""Typed run configuration: commented defaults, YAML loading, strict `-o section.key=value` overrides.

Every key a run can use is a dataclass field in schema.py; its comment is its documentation. A YAML file or
an override that names an unknown key, or gives a value of the wrong type, raises ConfigError naming
the key, before anything is built or written.
"""
from __future__ import annotations

from ..errors import ConfigError
from .checks import validate
from .compare import IDENTITY_KEYS, diff, dump, flatten
from .parse import apply_overrides, from_dict, load_config
from .schema import (AMP, CONVS, D_CONDS, D_NORMS, DATASET_NAMES, EVAL_METRICS, EXTRACTORS, INITS, LABELLED, LOSSES,
                     MODEL_NAMES, SPLITS, Config, DataConfig, ModelConfig, OptimConfig, TrainConfig)

__all__ = ["AMP", "CONVS", "Config", "ConfigError", "D_CONDS", "D_NORMS", "DATASET_NAMES", "DataConfig",
           "EVAL_METRICS", "EXTRACTORS", "IDENTITY_KEYS", "INITS", "LABELLED", "LOSSES", "MODEL_NAMES", "ModelConfig",
           "OptimConfig", "SPLITS", "TrainConfig", "apply_overrides", "diff", "dump", "flatten", "from_dict",
           "load_config", "validate"]
