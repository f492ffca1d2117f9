"""state.json: what a checkpoint folder says about itself, checked rather than believed.

Whoever hands over a checkpoint hands over its state.json too, so its hashes only catch accidents;
what it claims is checked field by field before anything trusts it: the step must be the folder's,
every file the layout needs must be listed with its size and SHA-256, file names must be plain names
of that layout (nothing outside the folder), and every field must have its type. A state.json that
fails is a damaged checkpoint (CheckpointError, one line naming the file and the field).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat

from . import layout
from ..config import ConfigError, from_dict, validate
from ..errors import CheckpointError

FORMAT = "paddle_gan.checkpoint/1"
STATE_FILE = "state.json"
# state dict key -> the file it is kept in; then the fixed noise
STATE_DICTS = {"G": "G.pdparams", "D": "D.pdparams", "opt_G": "G.pdopt", "opt_D": "D.pdopt", "G_ema": "G_ema.pdparams"}
# a generator-only checkpoint also holds its generator in safetensors (a format with no code path at
# all): what generate, eval and export read when it is there (the pickle beside it is for Paddle users)
SAFETENSORS = {"G": "G.safetensors", "G_ema": "G_ema.safetensors"}
NOISE_FILE = "fixed_noise.npy"
KNOWN_FILES = (*STATE_DICTS.values(), *SAFETENSORS.values(), NOISE_FILE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILE_BYTES = 1 << 40  # no checkpoint file of any model here comes near 1 TiB
MAX_POSITION = 10 ** 12  # epochs, and images into an epoch


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


GENERATOR_ONLY = "generator"  # state.json "contents" of a checkpoint that holds a generator alone (the zoo)


def required_files(cfg, contents: str = "") -> list[str]:
    """The files a checkpoint of a run with config `cfg` must hold (G_ema only with train.ema); a
    generator-only one holds the generator that tools use (G_ema with train.ema, else G) and the noise."""
    if contents == GENERATOR_ONLY:  # (the generator's .pdparams or .safetensors: check_state asks for one)
        return [NOISE_FILE]
    return [name for key, name in STATE_DICTS.items() if key != "G_ema" or cfg.train.ema] + [NOISE_FILE]


# Keys whose default changed after checkpoints without them had been written: the value those
# checkpoints were trained with, so that a resume continues the run it was and not the new default.
WRITTEN_BEFORE = {("train", "class_fakes"): True}


def checkpoint_config(meta: dict):
    """The Config a checkpoint was trained with, type- and value-checked like any config file."""
    config = dict(meta["config"])
    for (section, key), value in WRITTEN_BEFORE.items():
        if isinstance(config.get(section), dict) and key not in config[section]:
            config[section] = {**config[section], key: value}
    try:
        cfg = from_dict(config, where="checkpoint config", lenient_model_keys=True)
        validate(cfg)
        return cfg
    except ConfigError as e:
        raise CheckpointError(f"checkpoint config: {e}") from None


def check_state(meta, ckpt: str) -> None:
    """Raise CheckpointError (naming state.json and the field) unless `meta` is a state.json this
    package could have written for the folder `ckpt`."""
    path = os.path.join(ckpt, STATE_FILE)

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise CheckpointError(f"{path}: {what}")

    need(isinstance(meta, dict) and meta.get("format") == FORMAT, f"not a {FORMAT} state file")
    need(_is_int(meta.get("step")) and meta["step"] >= 0, f"step must be a whole number >= 0, got {meta.get('step')!r}")
    folder_step = layout.parse_step(os.path.basename(os.path.normpath(ckpt)))
    need(folder_step is None or folder_step == meta["step"],
         f"says step {meta['step']}, but the folder is {layout.step_name(folder_step or 0)}")
    need("config" in meta and isinstance(meta["config"], dict), "config missing or not a mapping")
    cfg = checkpoint_config(meta)
    files = meta.get("files")
    need(isinstance(files, dict), f"files must be a mapping of file name -> size and hash, got {type(files).__name__}")
    for name, info in files.items():
        need(name in KNOWN_FILES, f"lists {name!r}, which is not a file of a checkpoint ({', '.join(KNOWN_FILES)})")
        need(isinstance(info, dict) and _is_int(info.get("bytes")) and 0 <= info["bytes"] <= MAX_FILE_BYTES
             and isinstance(info.get("sha256"), str) and bool(_SHA256.match(info["sha256"])),
             f"files[{name!r}] must hold bytes (a whole number up to {MAX_FILE_BYTES}) and sha256 (64 hex digits)")
    need(meta.get("contents", "") in ("", GENERATOR_ONLY), f"contents must be \"{GENERATOR_ONLY}\" or absent")
    for name in required_files(cfg, meta.get("contents", "")):
        need(name in files, f"does not list {name} (every file of a checkpoint is listed with its size and hash)")
    if meta.get("contents") == GENERATOR_ONLY:
        need(any(n in files for d in (STATE_DICTS, SAFETENSORS) for k, n in d.items() if k in ("G", "G_ema")),
             "lists no generator (G or G_ema, .pdparams or .safetensors)")
    data = meta.get("data")
    need(isinstance(data, dict) and set(data) == {"epoch", "offset"}
         and all(_is_int(v) and 0 <= v <= MAX_POSITION for v in data.values()),
         f"data must be {{epoch, offset}}, whole numbers in 0..{MAX_POSITION}")
    need(_is_int(meta.get("seed")) and 0 <= meta["seed"] < 2 ** 32, "seed must be a whole number in 0..2^32-1")
    need(isinstance(meta.get("amp", {}), dict), "amp must be a mapping")
    need(isinstance(meta.get("terms", {}), dict) and all(isinstance(v, dict) for v in meta.get("terms", {}).values()),
         "terms must map term names to mappings")
    need(all(isinstance(meta.get(k, ""), str) for k in ("device", "paddle_build", "paddle", "paddle_gan")),
         "device, paddle_build, paddle and paddle_gan must be strings")
    classes = meta.get("classes", [])
    need(isinstance(classes, list) and all(isinstance(c, str) for c in classes)
         and len(classes) in (0, cfg.model.num_classes), "classes must be a list of model.num_classes names")
    ev = meta.get("eval", {})
    need(isinstance(ev, dict) and (not ev or (isinstance(ev.get("metric"), str)
                                             and isinstance(ev.get("value"), (int, float)))),
         "eval must hold metric (a name) and value (a number)")


def _read_regular(path: str, limit: int = -1) -> bytes:
    """The bytes of a regular file (a FIFO or device would block or never end); OSError otherwise."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    with open(path, "rb") as f:
        return f.read(limit)


def read_state(ckpt: str, verify: bool = True) -> dict:
    """state.json of a checkpoint folder, checked (check_state); with verify, also every listed
    file's size and hash."""
    path = os.path.join(ckpt, STATE_FILE)
    if not os.path.isdir(ckpt):
        raise CheckpointError(f"{ckpt}: not a checkpoint folder")
    try:
        meta = json.loads(_read_regular(path, 1 << 24).decode("utf-8"))  # 16 MB: far more than any real one
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (incomplete checkpoint)") from None
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise CheckpointError(f"{path}: unreadable ({why})") from None
    check_state(meta, ckpt)
    if verify:
        for name in meta["files"]:
            read_verified(ckpt, meta, name)
    return meta


def read_verified(ckpt: str, meta: dict, name: str) -> bytes:
    """The bytes of file `name` of a checkpoint, after checking their size and SHA-256 against
    state.json (already checked): what is checked is exactly what gets deserialised."""
    fp = os.path.join(ckpt, name)
    info = meta["files"][name]
    try:
        if os.path.isfile(fp) and os.path.getsize(fp) != info["bytes"]:  # before reading a byte of it
            raise CheckpointError(f"{fp}: size {os.path.getsize(fp)} bytes, expected {info['bytes']} (truncated?)")
        data = _read_regular(fp, info["bytes"] + 1)  # never more than it claims: a huge file cannot fill memory
    except FileNotFoundError:
        raise CheckpointError(f"{fp}: missing") from None
    except OSError as e:
        raise CheckpointError(f"{fp}: unreadable ({e.strerror})") from None
    if len(data) != info["bytes"]:
        size = os.path.getsize(fp) if len(data) > info["bytes"] else len(data)
        raise CheckpointError(f"{fp}: size {size} bytes, expected {info['bytes']} (truncated?)")
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(f"{fp}: content does not match its SHA-256 in {STATE_FILE} (corrupt)")
    return data
