"""Comparing configs (what a resume may change) and writing one out."""
from __future__ import annotations

import yaml

from .choices import echo
from .schema import Config

UNSET = "(not a key of this model)"

# Keys that define what is being trained; a resume that changes one of them would load weights or
# data positions into something else. Everything not listed may change on resume (and is logged).
IDENTITY_KEYS = ("model.*", "data.name", "data.split", "data.limit")


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
        frozen = any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in IDENTITY_KEYS)
        (identity if frozen else other).append(line)
    return identity, other


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
