"""Reading a config: defaults <- YAML file <- `-o section.key=value` overrides, each value checked
against its key's type; an unknown key or a wrong type is a ConfigError naming the key."""
from __future__ import annotations

import math
import os
import typing

import yaml

from ..errors import ConfigError, cut, echo
from ..gan.models import MODELS
from .checks import validate
from .schema import SECTIONS, Config, keys, model_keys, model_section


MAX_FILE = 1 << 20  # bytes: a config is a few kB; a bigger file is refused, never cut
MAX_DEPTH = 16  # nesting of YAML collections (a config needs 3: sections, keys, lists)
MAX_NODES = 100_000  # YAML nodes in one document


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags that construct objects), bounded: no aliases at all (a config
    never needs them, and nested aliases are the 'billion laughs' that expand without bound), at most
    MAX_DEPTH levels of nesting and MAX_NODES nodes. Breaking a bound raises ConfigError."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"{self.where}: YAML aliases (*name) are not allowed in a config (line {mark.line + 1})")
        self.depth = getattr(self, "depth", 0) + 1
        self.nodes = getattr(self, "nodes", 0) + 1
        if self.depth > MAX_DEPTH or self.nodes > MAX_NODES:
            mark = self.peek_event().start_mark
            what = f"nested deeper than {MAX_DEPTH} levels" if self.depth > MAX_DEPTH else f"more than {MAX_NODES} values"
            raise ConfigError(f"{self.where}: {what} (line {mark.line + 1}); a config is a few sections of keys")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def safe_yaml(text: str, where: str):
    """The YAML document in text, through the bounded loader; yaml.YAMLError for bad syntax."""
    loader = _Loader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _coerce(key: str, value, tp):
    """Check `value` against the annotated type `tp`; return the (possibly widened) value."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_tp)}, got {echo(value)}")
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {echo(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {echo(value)}")
    if tp is float:
        # PyYAML reads `2e-4` (no dot) as a string; accept any string that is a finite number.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {echo(value)}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"{key}: expected a finite number, got {echo(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {echo(value)}")
    raise TypeError(f"unsupported config type {tp} for {key}")  # a bug in this file, not user input


def owners(name: str) -> list[str]:
    """The models that have `name` among their own keys."""
    return [model for model in MODELS if name in model_keys(model)]


def suggest(name: str, known) -> str:
    """' (did you mean X?)' for a close match of a mistyped key among `known`, else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _target(cfg: Config, key: str):
    """(the section that holds `key`, the key's name, its registry.Key); ConfigError for an unknown key.
    A model key belongs to the common keys or to the chosen model's own keys (cfg.model.arch)."""
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        section = parts[0] if len(parts) == 2 else ""
        return _unknown(key, f"sections: {', '.join(SECTIONS)}", suggest(section, SECTIONS) if section else "")
    section, name = parts
    table = keys(section)
    if name in table:
        return getattr(cfg, section), name, table[name]
    if section == "model":
        model = cfg.model.name
        own = model_keys(model)
        if name in own:
            return cfg.model.arch, name, own[name]
        others = [m for m in owners(name) if m != model]
        if others:
            raise ConfigError(f"{key}: a key of {', '.join(others)}, not of {model} ({model}'s own keys: "
                              f"{', '.join(own)})")
        table = {**table, **own}
    return _unknown(key, f"known in {section}: {', '.join(table)}", suggest(name, table))


def _unknown(key: str, known: str, hint: str):
    if hint:
        raise ConfigError(f"{cut(key)}: unknown key{hint}")
    raise ConfigError(f"{cut(key)}: unknown key ({known})")


def _set(cfg: Config, key: str, value, raw: bool = False) -> None:
    holder, name, spec = _target(cfg, key)
    tp = spec.kind
    if raw and tp is not str:  # an -o value: parse it as YAML, except for plain strings
        if len(value) > MAX_FILE:
            raise ConfigError(f"{key}: a value of {len(value)} characters; at most {MAX_FILE}")
        try:
            value = safe_yaml(value, key)
        except (yaml.YAMLError, RecursionError):
            raise ConfigError(f"{key}: cannot parse value {echo(value)}") from None
    value = _coerce(key, value, tp)
    if key == "model.name":
        if value not in MODELS:
            raise ConfigError(f"model.name: unknown model {echo(value)} (choose from {', '.join(MODELS)})")
        if value != cfg.model.name:  # the new model's own keys, at its defaults (and its common defaults)
            cfg.model = model_section(value, like=cfg.model)
        return
    setattr(holder, name, value)


def _apply(cfg: Config, items: list[tuple[str, object, bool]], where: str | None = None) -> Config:
    """Set (key, value, raw) items in order, but model.name (its last setting) first: which keys the
    model section has depends on it, and a key of another model must be an error, not lost. An error
    in an item of a file (raw False) says which file (`where`)."""
    names = [item for item in items if item[0] == "model.name"]
    for key, value, raw in names[-1:] + [item for item in items if item[0] != "model.name"]:
        try:
            _set(cfg, key, value, raw)
        except ConfigError as e:
            raise ConfigError(_in_file(str(e), where) if where and not raw else str(e)) from None
    return cfg


def _override_items(overrides: list[str]) -> list[tuple[str, object, bool]]:
    items = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {echo(item)}: expected section.key=value")
        key, value = item.split("=", 1)
        items.append((key.strip(), value, True))
    return items


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    return _apply(cfg, _override_items(overrides))


def _dict_items(data, where: str, lenient_model_keys: bool = False) -> list[tuple[str, object, bool]]:
    """The (key, value) items of a parsed YAML config. lenient_model_keys: leave out the keys of other
    models (a checkpoint written before each model had its own keys lists every model's keys)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
    items = []
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: {cut(str(section))}: unknown section{suggest(str(section), SECTIONS)} "
                              f"(sections: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: {section}: expected a mapping of keys, got {echo(values)}")
        for name, value in values.items():
            items.append((f"{section}.{name}", value, False))
    if lenient_model_keys:
        name = (data.get("model") or {}).get("name", keys("model")["name"].default)
        mine = set(keys("model")) | (set(model_keys(name)) if name in MODELS else set())
        items = [it for it in items if not (it[0].startswith("model.") and it[0][6:] not in mine
                                            and any(m != name for m in owners(it[0][6:])))]
    return items


def from_dict(data: dict, where: str = "config", lenient_model_keys: bool = False) -> Config:
    return _apply(Config(), _dict_items(data, where, lenient_model_keys), where)


def _in_file(message: str, where: str) -> str:
    """A key's error, saying which file it is in (once)."""
    return message if message.startswith(f"{where}:") else f"{where}: {message}"


def _nearby(path: str) -> str:
    """' (did you mean X?)' for a YAML file beside `path` with a close name, else ''."""
    import glob

    folder = os.path.dirname(path) or "."
    names = [os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(folder), "*.yaml"))]
    hint = suggest(os.path.basename(path), names)
    return hint.replace("you mean ", f"you mean {os.path.join(os.path.dirname(path), '')}") if hint else ""


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
                raw = f.read(MAX_FILE + 1)
            if len(raw) > MAX_FILE:
                raise ConfigError(f"{path}: larger than {MAX_FILE} bytes (1 MiB); a config is a few kB, and a bigger "
                                  f"file is refused, not cut")
            data = safe_yaml(raw.decode("utf-8"), str(path))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}{_nearby(path)}; --list shows the configs") from None
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
    cfg = _apply(Config(), _dict_items(data, str(path)) + _override_items(list(overrides)),
                 str(path) if path is not None else None)
    validate(cfg)
    return cfg
