"""Reading a config: defaults <- YAML file <- `-o section.key=value` overrides, each value checked
against its key's type; an unknown key or a wrong type is a ConfigError naming the key."""
from __future__ import annotations

import dataclasses
import math
import os
import typing

import yaml

from ..errors import ConfigError
from .checks import validate
from .schema import Config


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
        if os.path.isdir(path):
            raise ConfigError(f"{path} is a folder; give a config file (configs/*.yaml)")
        if os.path.exists(path) and not os.path.isfile(path):
            raise ConfigError(f"{path} is not a regular file; give a config file (configs/*.yaml)")
        try:
            with open(path, "rb") as f:
                text = f.read(1 << 20).decode("utf-8")  # a config is a few kB; 1 MB is plenty
            data = yaml.safe_load(text)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (a YAML config is UTF-8 text)") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
        if data is None:
            raise ConfigError(f"{path}: empty; a config holds at least one of the sections data, model, train, "
                              f"opt_G, opt_D (an empty file would train every default for 10000 steps)")
    cfg = from_dict(data, where=str(path))
    apply_overrides(cfg, list(overrides))
    validate(cfg)
    return cfg
