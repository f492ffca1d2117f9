"""Checkpoints: self-describing folders written atomically, verified on load, rotated.

Layout of a checkpoint folder (layout.checkpoint_dir: `<run>/checkpoints/step_<7-digit step>/`):
  G.pdparams, D.pdparams   model state dicts (paddle.load + set_state_dict)
  G_ema.pdparams           the EMA generator's state dict, in runs with train.ema
  G.pdopt, D.pdopt         Adam state dicts (moments, beta powers)
  fixed_noise.npy          the z batch behind every sample grid of the run
  state.json               written last: format, step, data position, seed, resolved config,
                           versions, and the size + SHA-256 of every file above
A folder is built under a hidden temporary name and renamed into place only when complete and
fsynced, so a visible step_XXXXXXX/ is always whole; state.json's hashes catch later damage.
Loading reads each file once and checks its size and hash on the very bytes it deserialises.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import time

import numpy as np
import paddle

from . import __version__, layout
from .config import from_dict
from .errors import CheckpointError, ConfigError
from .utils import atomic_write_text, fsync_dir

FORMAT = "paddle_gan.checkpoint/1"
STATE_FILE = "state.json"
# what save_checkpoint takes and load_checkpoint returns -> the file it is kept in
STATE_DICTS = {"G": "G.pdparams", "D": "D.pdparams", "opt_G": "G.pdopt", "opt_D": "D.pdopt", "G_ema": "G_ema.pdparams"}
OPTIONAL = ("G_ema",)  # only in some runs (train.ema > 0)
NOISE_FILE = "fixed_noise.npy"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_paddle(obj, path: str) -> None:
    paddle.save(obj, path)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def save_checkpoint(ckpt_root: str, step: int, models: dict, fixed_noise: np.ndarray,
                    state: dict, name: str | None = None) -> str:
    """Write checkpoint `step` under ckpt_root atomically; returns its folder (step_XXXXXXX, or `name`,
    e.g. "best", replaced as a whole). `models`: {key of STATE_DICTS: object with a state_dict()}
    (G, D, opt_G, opt_D, and G_ema if any). `state` is the trainer state (data position, seed,
    config ...) stored in state.json next to the file hashes."""
    os.makedirs(ckpt_root, exist_ok=True)
    name = name or layout.step_name(step)
    final = os.path.join(ckpt_root, name)
    tmp = os.path.join(ckpt_root, f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        for key, obj in models.items():
            _write_paddle(obj.state_dict(), os.path.join(tmp, STATE_DICTS[key]))
        with open(os.path.join(tmp, NOISE_FILE), "wb") as f:
            np.save(f, np.asarray(fixed_noise, np.float32))
            f.flush()
            os.fsync(f.fileno())
        files = {name: {"bytes": os.path.getsize(os.path.join(tmp, name)), "sha256": _sha256(os.path.join(tmp, name))}
                 for name in sorted(os.listdir(tmp))}
        meta = dict(format=FORMAT, step=step, **state, files=files, paddle_gan=__version__,
                    paddle=paddle.__version__, time=time.time())
        atomic_write_text(os.path.join(tmp, STATE_FILE), json.dumps(meta, indent=1) + "\n")
        fsync_dir(tmp)
        if os.path.exists(final):  # the same step saved again (or a new best): swap the old folder out first
            old = final + f".old-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_state(ckpt: str, verify: bool = True) -> dict:
    """state.json of a checkpoint folder; with verify, also check every listed file's size and hash."""
    path = os.path.join(ckpt, STATE_FILE)
    if not os.path.isdir(ckpt):
        raise CheckpointError(f"{ckpt}: not a checkpoint folder")
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (incomplete checkpoint)") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} state file")
    if verify:
        for name in meta["files"]:
            _read_verified(ckpt, meta, name)
    return meta


def _read_verified(ckpt: str, meta: dict, name: str) -> bytes:
    """The bytes of file `name` of a checkpoint, after checking their size and SHA-256 against
    state.json: what is checked is exactly what gets deserialised."""
    fp = os.path.join(ckpt, name)
    info = meta["files"][name]
    try:
        with open(fp, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{fp}: missing") from None
    except OSError as e:
        raise CheckpointError(f"{fp}: unreadable ({e.strerror})") from None
    if len(data) != info["bytes"]:
        raise CheckpointError(f"{fp}: size {len(data)} bytes, expected {info['bytes']} (truncated?)")
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(f"{fp}: content does not match its SHA-256 in {STATE_FILE} (corrupt)")
    return data


def _load_state_dict(ckpt: str, meta: dict, name: str):
    data = _read_verified(ckpt, meta, name)
    try:
        return paddle.load(io.BytesIO(data))
    except Exception as e:  # a file that passed its hash but still does not unpickle
        raise CheckpointError(f"{os.path.join(ckpt, name)}: cannot load ({type(e).__name__})") from None


def checkpoint_config(meta: dict):
    try:
        return from_dict(meta["config"], where="checkpoint config")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint config does not fit this paddle_gan version ({e})") from None


def load_checkpoint(ckpt: str, meta: dict | None = None) -> dict:
    """Everything a resume needs, each file read and verified once: the state.json fields plus the
    G, D, opt_G, opt_D state dicts, fixed_noise, the parsed Config under 'cfg' and the folder under
    'path'. `meta`: state.json as already read (read_state(ckpt, verify=False)), if at hand."""
    meta = meta or read_state(ckpt, verify=False)
    out = dict(meta, cfg=checkpoint_config(meta), path=ckpt)
    for key, name in STATE_DICTS.items():
        if key not in OPTIONAL or name in meta["files"]:
            out[key] = _load_state_dict(ckpt, meta, name)
    try:
        out["fixed_noise"] = np.load(io.BytesIO(_read_verified(ckpt, meta, NOISE_FILE)), allow_pickle=False)
    except ValueError as e:
        raise CheckpointError(f"{os.path.join(ckpt, NOISE_FILE)}: cannot load ({e})") from None
    return out


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, folder) of every visible checkpoint of a run, oldest first (not verified)."""
    root = layout.checkpoints_dir(run_dir)
    if not os.path.isdir(root):
        return []
    found = [(step, os.path.join(root, name)) for name in os.listdir(root)
             if (step := layout.parse_step(name)) is not None and os.path.isdir(os.path.join(root, name))]
    return sorted(found)


def load_latest(run_dir: str, log=print) -> dict | None:
    """load_checkpoint of the newest checkpoint of a run that loads; damaged ones are skipped,
    saying so. None if there is none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path)
        except CheckpointError as e:
            log(f"skipping checkpoint {path}: {e}")
    return None


def _remove(path: str) -> None:
    """Delete a checkpoint folder without ever showing a half-deleted one: hide it by a rename
    first (atomic), then delete; a kill in between leaves a hidden folder clean_temporary removes."""
    hidden = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.del-{os.getpid()}")
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def rotate(run_dir: str, keep: int, protect: str | None = None) -> None:
    """Delete all but the `keep` newest checkpoints (keep=0: delete none); never `protect`."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        if protect is None or os.path.abspath(path) != os.path.abspath(protect):
            _remove(path)


_ATOMIC_LEFTOVER = re.compile(r"^\..+\.tmp$")  # utils.atomic_write's temporary files


def clean_temporary(run_dir: str) -> None:
    """Tidy what a killed run left behind: hidden checkpoint folders being written (.step_*.tmp-*,
    .best.tmp-*) or deleted (.step_*.del-*), and atomic_write temporaries in the run folder and samples/. A complete
    checkpoint swapped out for a re-save of the same step (step_*.old-*) is put back if the new one
    never arrived. Only call this while holding the run folder's lock."""
    root = layout.checkpoints_dir(run_dir)
    if os.path.isdir(root):
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if ".old-" in name and not os.path.exists(os.path.join(root, name.split(".old-")[0])):
                os.rename(path, os.path.join(root, name.split(".old-")[0]))
            elif name.startswith(".") or ".old-" in name:
                shutil.rmtree(path, ignore_errors=True)
    for folder in (run_dir, layout.samples_dir(run_dir)):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if _ATOMIC_LEFTOVER.match(name) and os.path.isfile(os.path.join(folder, name)):
                    os.unlink(os.path.join(folder, name))


@dataclasses.dataclass
class Generator:
    """A generator rebuilt from a checkpoint folder alone, in eval mode, and what it is."""
    G: object
    cfg: object  # the run's Config
    which: str  # "G_ema" (the EMA generator, used when the checkpoint has one) or "G"
    step: int
    classes: list  # names of the labels of a conditional model (model.num_classes of them), else []


def open_generator(ckpt: str, raw: bool = False) -> Generator:
    """The checkpoint's EMA generator if it has one (train.ema), else G; raw=True: G always."""
    from .models import build_generator

    meta = read_state(ckpt, verify=False)
    cfg = checkpoint_config(meta)
    which = "G_ema" if STATE_DICTS["G_ema"] in meta["files"] and not raw else "G"
    G = build_generator(cfg.model)
    G.set_state_dict(_load_state_dict(ckpt, meta, STATE_DICTS[which]))  # verified as it is read
    G.eval()
    classes = meta.get("classes") or [str(i) for i in range(cfg.model.num_classes)]
    return Generator(G, cfg, which, meta["step"], classes)


def load_generator(ckpt: str, raw: bool = False):
    """(G in eval mode, Config) rebuilt from a checkpoint folder alone (the EMA G if there is one)."""
    g = open_generator(ckpt, raw)
    return g.G, g.cfg
