"""Comparing configs (what a resume may change) and writing one out."""
from __future__ import annotations

import yaml

from .schema import Config

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
    for key in a:
        if a[key] == b[key]:
            continue
        line = f"{key}: {a[key]!r} -> {b[key]!r}"
        frozen = any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in IDENTITY_KEYS)
        (identity if frozen else other).append(line)
    return identity, other


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
