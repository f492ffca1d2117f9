"""Generators that ship with the package, ready to use without training: generator-only checkpoint
folders (tools/export.py --format checkpoint), one per entry, read by tools/generate.py and
tools/eval.py and tools/export.py with --pretrained NAME (add_argument, listed, checkpoint: the three
tools' one way of taking it). What each is and how well it scores: README "Pretrained
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


def add_argument(group) -> None:
    """--pretrained NAME on a tool's argparse group of sources (beside --checkpoint)."""
    group.add_argument("--pretrained", metavar="NAME", help="a generator that ships with the package (README "
                       "'Pretrained generators'), e.g. fashion_mnist; --pretrained list shows them")


def listed(name: str | None) -> bool:
    """--pretrained list: prints the entries' names (then the tool is done); False for anything else."""
    if name != "list":
        return False
    print("\n".join(names()))
    return True


def checkpoint(pretrained: str | None, given: str | None) -> str | None:
    """The checkpoint folder a tool reads: the zoo entry `pretrained`, else the folder `given` (a
    checkpoint, or a run folder: its newest checkpoint), else None."""
    if pretrained:
        return path(pretrained)
    if given:
        from ..run.generator import find_checkpoint

        return find_checkpoint(given)
    return None
