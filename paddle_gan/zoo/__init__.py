"""Generators that ship with the package, ready to use without training: generator-only checkpoint
folders (tools/export.py --format checkpoint), one per entry, read by tools/generate.py and
tools/eval.py with --pretrained NAME. What each is and how well it scores: README "Pretrained
generators" and the entry's state.json (its config and the step it was taken at)."""
from __future__ import annotations

import os

from ..errors import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    return sorted(d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "state.json")))


def path(name: str) -> str:
    """The checkpoint folder of zoo entry `name`; ConfigError listing the entries for another name."""
    if name not in names():
        raise ConfigError(f"--pretrained {name}: not a pretrained generator (choose from {', '.join(names()) or 'none'})")
    return os.path.join(HERE, name)
