"""Comparing configs (what a resume may change) and writing one out."""
from __future__ import annotations

import yaml

from ..errors import echo
from .schema import SECTIONS, Config, keys

UNSET = "(not a key of this model)"


def identity_keys() -> tuple:
    """Keys that define what is being trained (every model key, and the keys declared identity=True);
    a resume that changes one of them would load weights or data positions into something else.
    Everything else may change on resume (and is logged)."""
    return ("model.*",) + tuple(f"{s}.{n}" for s in SECTIONS if s != "model" for n, k in keys(s).items() if k.identity)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def diff(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(identity changes, other changes) between two configs, as 'key: old -> new' strings."""
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    identity, other = [], []
    for key in list(a) + [k for k in b if k not in a]:  # another model has other keys
        if a.get(key, UNSET) == b.get(key, UNSET):
            continue
        line = f"{key}: {echo(a.get(key, UNSET))} -> {echo(b.get(key, UNSET))}"
        frozen = any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in identity_keys())
        (identity if frozen else other).append(line)
    return identity, other


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
