"""Value checks of a config, each error naming its key: first every key's own bounds and choices
(registry.Key, checked before anything is allocated: a typo or a hostile file is one error line),
then the chosen model's checks and the checks the families and components registered
(registry.CHECKS: keys that go together), then the trainer's own."""
from __future__ import annotations

from .. import device
from ..errors import ConfigError, echo, one_of
from ..gan.models import MODELS
from ..registry import CHECKS, Key
from .schema import SECTIONS, keys, model_keys

MAX_LAYERS = 64  # entries of a list of layer widths


def _check_key(key: str, spec: Key, value, need) -> None:
    if spec.choices is not None:
        names = spec.names()
        if spec.many:
            given = [p.strip() for p in value.split(",")] if value.strip() else []
            for i, name in enumerate(given):
                need(name in names, key, f"unknown {getattr(spec.choices, 'family', 'choice')} {echo(name)} "
                                         f"(choose from {', '.join(map(str, names))})")
                need(name not in given[:i], key, f"{name} is given twice (each once: {', '.join(map(str, names))})")
        else:
            need(value in names, key, one_of(value, names))
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list):
        need(1 <= len(value) <= MAX_LAYERS, key, f"needs 1 to {MAX_LAYERS} entries, got {len(value)}")
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            need(spec.high is None or v <= spec.high, key, f"must be <= {spec.high}, got {echo(value)}")
            need(spec.low is None or v >= spec.low, key, f"must be >= {spec.low}, got {echo(value)}")


def validate_choice(option: str, spec: Key, value) -> None:
    """A command-line option whose values are a key's choices (e.g. --metrics): ConfigError naming it."""
    def need(ok: bool, key: str, msg: str):
        if not ok:
            raise ConfigError(f"{key}: {msg}")
    _check_key(option, spec, value, need)


def validate(cfg) -> None:
    """Every check of a config; the first that fails raises a ConfigError naming its key."""
    def need(ok: bool, key: str, msg: str):
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    for section in SECTIONS:
        for name, spec in keys(section).items():
            _check_key(f"{section}.{name}", spec, getattr(getattr(cfg, section), name), need)
    m, t = cfg.model, cfg.train
    for name, spec in model_keys(m.name).items():
        _check_key(f"model.{name}", spec, getattr(m.arch, name), need)
    need(m.num_classes != 1, "model.num_classes", "one class is no condition: use 0 (unconditional) or >= 2")
    need(device.valid(t.device), "train.device", one_of(t.device, device.CHOICES))
    for name in ("opt_G", "opt_D"):
        o = getattr(cfg, name)
        need(o.lr > 0, f"{name}.lr", "must be > 0")
        need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, f"{name}.beta1", "betas must be in [0, 1)")
    MODELS[m.name].check(cfg, need)
    for check in CHECKS.values():
        check(cfg, need)


__all__ = ["ConfigError", "validate", "validate_choice"]
