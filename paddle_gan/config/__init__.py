"""Typed run configuration: commented defaults, YAML loading, strict `-o section.key=value` overrides.

Every key a run can use is a dataclass field in schema.py (the model's own keys in models.py); its
comment is its documentation. A YAML file or an override that names an unknown key, a key of another
model, or gives a value of the wrong type, raises ConfigError naming the key, before anything is
built or written. The choice lists: choices.py.
"""
from __future__ import annotations

from ..errors import ConfigError
from .checks import validate
from .choices import AMP, CONVS, D_CONDS, DATASET_NAMES, EVAL_METRICS, EXTRACTORS, INITS, LABELLED, SPLITS
from .compare import IDENTITY_KEYS, diff, dump, flatten
from .models import MODELS, ModelKeys
from .parse import apply_overrides, from_dict, load_config
from .schema import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

__all__ = ["AMP", "CONVS", "Config", "ConfigError", "D_CONDS", "DATASET_NAMES", "DataConfig", "EVAL_METRICS",
           "EXTRACTORS", "IDENTITY_KEYS", "INITS", "LABELLED", "MODELS", "ModelConfig", "ModelKeys", "OptimConfig",
           "SPLITS", "TrainConfig", "apply_overrides", "diff", "dump", "flatten", "from_dict", "load_config",
           "validate"]
