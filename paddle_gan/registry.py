"""One registry per family of components, each filled where its components are defined, and the config
keys a component declares next to its code.

    MODELS = Registry("model", chooser="model.name")      # in the family's own module
    @MODELS.register("dcgan")                              # next to the component
    class DCGAN: ...
    keys = {"g_channels": Key(64, "G: width of the last hidden layer", low=1, high=MAX_WIDTH)}

The config schema, the `-o` parser, `--help`, the error messages, the VisualDL tags, the panels of
curves.png and which way a score is better are read from the registries (config/schema.py walks
them), so a component is one file plus its registration and nothing else names it. This module
imports nothing of the package: every family may import it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

MAX_WIDTH = 8192  # any layer width of any model (channels, hidden sizes): a key's usual upper bound


@dataclasses.dataclass(frozen=True)
class Key:
    """A config key: its default (whose type is the key's type, unless `type` says otherwise), the
    one-line comment that documents it, its bounds (checked before anything is allocated), the
    registry whose names are its choices (a comma-separated list of them with `many`), and whether a
    resume may change it (identity keys define what is trained)."""
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    choices: Any = None  # a Registry (its names, as they are when checked) or a tuple
    many: bool = False  # a comma-separated list of choices, each at most once ("" = none)
    type: Any = None  # e.g. list[int]; default: type(default)
    identity: bool = False  # what is trained: a resume may not change it

    @property
    def kind(self):
        return self.type or type(self.default)

    def names(self) -> tuple:
        return tuple(self.choices) if self.choices is not None else ()


class Registry:
    """name -> component, in registration order. `chooser`: the config key whose value names one
    (e.g. "train.loss"), for its error messages."""

    def __init__(self, family: str, chooser: str = ""):
        self.family, self.chooser = family, chooser
        self._items: dict[str, Any] = {}

    def register(self, name: str, component: Any = None):
        """Register `component` under `name`; without a component, a decorator that does."""
        def add(obj):
            if not isinstance(name, str) or (name in self._items and self._items[name] is not obj):
                raise ValueError(f"{self.family} {name!r} is registered already")
            self._items[name] = obj
            global VERSION
            VERSION += 1
            return obj
        return add if component is None else add(component)

    def unregister(self, name: str) -> None:
        """Take `name` out again (tests that register a component for a while)."""
        global VERSION
        self._items.pop(name, None)
        VERSION += 1

    def __contains__(self, name) -> bool:
        return name in self._items

    def __getitem__(self, name: str):
        return self._items[name]

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self):
        return list(self._items.items())

    def values(self):
        return list(self._items.values())

    def get(self, name: str, default=None):
        return self._items.get(name, default)

    def __repr__(self) -> str:
        return f"Registry({self.family}: {', '.join(self._items)})"


VERSION = 0  # bumped by every registration: what is derived from the registries is rebuilt when it changes

# Config keys that components declare, per section ("train", "data", ...): {section: {name: (Key, owner)}}
KEYS: dict[str, dict[str, tuple[Key, str]]] = {}


def declare(section: str, owner: str, **keys: Key) -> None:
    """Keys of section `section` declared by the component `owner` (named in a clash)."""
    global VERSION
    table = KEYS.setdefault(section, {})
    for name, key in keys.items():
        if name in table and table[name][1] != owner:
            raise ValueError(f"{section}.{name} is declared by {table[name][1]} already")
        table[name] = (key, owner)
    VERSION += 1


def withdraw(section: str, owner: str) -> None:
    """Forget the keys `owner` declared in `section` (tests)."""
    global VERSION
    table = KEYS.get(section, {})
    for name in [n for n, (_, o) in table.items() if o == owner]:
        del table[name]
    VERSION += 1


# Config checks beyond each key's bounds and choices, registered by the families and components that
# own the keys they check: fn(cfg, need), need(ok, key, message) raising a ConfigError naming the key.
# config/checks.py runs them all after the keys' own checks (and the chosen model's check).
CHECKS = Registry("config check")
