"""Typed run configuration: commented defaults, YAML loading, strict `-o section.key=value` overrides.

Every key a run can use is declared with its default, its one-line comment, its bounds and its
choices: the trainer's own in schema.py, every component's next to its code (registry.declare; a
model's in its file), so the schema, the parser, --help and the error messages follow the
registries. A YAML file or an override that names an unknown key, a key of another model, or gives
a value of the wrong type, raises ConfigError naming the key, before anything is built or written.
"""
from __future__ import annotations

from ..errors import ConfigError
from .checks import validate
from .compare import diff, dump, flatten, identity_keys
from .parse import apply_overrides, from_dict, load_config, suggest
from .schema import SECTIONS, Config, Section, default, describe, keys, model_keys, model_section

__all__ = ["Config", "ConfigError", "SECTIONS", "Section", "apply_overrides", "default", "describe", "diff", "dump", "flatten",
           "from_dict", "identity_keys", "keys", "load_config", "model_keys", "model_section", "suggest", "validate"]
