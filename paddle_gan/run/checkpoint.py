"""Checkpoints: self-describing folders, written atomically and loaded without trusting them.

Layout of a checkpoint folder (layout.checkpoint_dir: `<run>/checkpoints/step_<7-digit step>/`):
  G.pdparams, D.pdparams   model state dicts (paddle.load + set_state_dict)
  G_ema.pdparams           the EMA generator's state dict, in runs with train.ema
  G.pdopt, D.pdopt         Adam state dicts (moments, beta powers)
  fixed_noise.npy          the z batch behind every sample grid of the run
  state.json               written last: format, step, data position, seed, resolved config,
                           versions, and the size + SHA-256 of every file above
A folder is built under a hidden temporary name and renamed into place only when complete and
fsynced, so a visible step_XXXXXXX/ is always whole; state.json's hashes catch later damage.
Loading checks state.json field by field (state_json.py), reads each file once, checks its size and
hash on the very bytes it deserialises, and unpickles them with a restricted unpickler that cannot
run code (safepickle.py). Listing, rotation and branching of a run's checkpoints: checkpoint_history.py.
Checkpoints (below) is what the training loop writes them with.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time

import numpy as np
import paddle

from .. import __version__, device, safepickle
from ..errors import CheckpointError, TrainingError
from ..gan.state import check_fits
from ..files import atomic_write_text, fsync_dir, only_entries, sha256_of, swap_folder, write_folder
from . import layout
from .checkpoint_history import list_checkpoints, rotate
from .state_json import (FORMAT, GENERATOR_ONLY, NOISE_FILE, SAFETENSORS, STATE_DICTS, STATE_FILE, checkpoint_config,
                         read_state, read_verified)


def _write_paddle(obj, path: str) -> None:
    paddle.save(obj, path)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def save_checkpoint(ckpt_root: str, step: int, tensors: dict, fixed_noise: np.ndarray,
                    state: dict, name: str | None = None) -> str:
    """Write checkpoint `step` under ckpt_root atomically; returns its folder (step_XXXXXXX, or `name`,
    e.g. "best", replaced as a whole). `tensors`: {key of STATE_DICTS: a state dict} (G, D, opt_G,
    opt_D, and G_ema if any). `state` is the trainer state (data position, seed, config ...) stored
    in state.json next to the file hashes."""
    os.makedirs(ckpt_root, exist_ok=True)
    name = name or layout.step_name(step)
    final = os.path.join(ckpt_root, name)
    tmp = os.path.join(ckpt_root, f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        for key, state_dict in tensors.items():
            _write_paddle(state_dict, os.path.join(tmp, STATE_DICTS[key]))
        with open(os.path.join(tmp, NOISE_FILE), "wb") as f:
            np.save(f, np.asarray(fixed_noise, np.float32))
            f.flush()
            os.fsync(f.fileno())
        files = {name: {"bytes": os.path.getsize(os.path.join(tmp, name)), "sha256": sha256_of(os.path.join(tmp, name))}
                 for name in sorted(os.listdir(tmp))}
        meta = dict(format=FORMAT, step=step, **state, files=files, paddle_gan=__version__,
                    paddle=paddle.__version__, time=time.time())
        atomic_write_text(os.path.join(tmp, STATE_FILE), json.dumps(meta, indent=1) + "\n")
        fsync_dir(tmp)
        # the same step saved again (or a new best) replaces the earlier folder (clean_temporary puts an
        # .old-<pid> one back if a kill came between the two renames where they cannot be one exchange)
        swap_folder(tmp, final, final + f".old-{os.getpid()}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_state_dict(ckpt: str, meta: dict, name: str) -> dict:
    """A state dict file, verified, through the restricted unpickler: nothing in it can run."""
    path = os.path.join(ckpt, name)
    data = read_verified(ckpt, meta, name)
    try:
        return safepickle.load_state_dict(data)
    except safepickle.RefusedPickle as e:
        raise CheckpointError(f"{path}: refused to load: {e}") from None
    except Exception as e:  # a file that passed its hash but still does not unpickle
        raise CheckpointError(f"{path}: cannot load ({type(e).__name__})") from None


def generator_file(meta: dict, which: str) -> str | None:
    """The file that holds generator `which` (G or G_ema) in a checkpoint: its safetensors where the
    checkpoint has one (no pickle is read then), else its .pdparams; None if it has neither."""
    for name in (SAFETENSORS[which], STATE_DICTS[which]):
        if name in meta["files"]:
            return name
    return None


def read_generator_state(ckpt: str, meta: dict, which: str) -> dict:
    """Generator `which`'s state dict, verified as it is read (safetensors or the restricted unpickler)."""
    name = generator_file(meta, which)
    if name is None:
        raise CheckpointError(f"{ckpt}: holds no {which}")
    if name.endswith(".safetensors"):
        from safetensors.numpy import load

        try:
            return dict(load(read_verified(ckpt, meta, name)))
        except Exception as e:  # a file that passed its hash but is not safetensors
            raise CheckpointError(f"{os.path.join(ckpt, name)}: cannot load ({type(e).__name__})") from None
    return read_state_dict(ckpt, meta, name)


def earlier_generator_only(path: str, also=()) -> str | None:
    """None if `path` is a generator-only checkpoint this package wrote (its state.json says so and it
    holds nothing else but the names in `also`), else why not: what export --format checkpoint (and
    benchmarks/zoo_entry.py, with also=zoo.json) may replace."""
    try:
        meta = read_state(path, verify=False)
    except CheckpointError:
        return "no generator-only state.json"
    if meta.get("contents") != GENERATOR_ONLY:
        return "a training checkpoint, not a generator-only one"
    return only_entries(path, lambda name: name == STATE_FILE or name in meta["files"] or name in also)


def save_generator_only(ckpt: str, out: str, pickle: bool = True) -> str:
    """A copy of checkpoint `ckpt` that holds only what generate, eval and export read: its EMA
    generator (or G) as .safetensors and (pickle=True) as .pdparams, the fixed noise and state.json
    (contents: generator), verified as it is read. A few MB instead of G, D and both optimizers;
    without the pickle, what paddle_gan/zoo ships. `out` is written whole (files.write_folder): a new
    folder, or an earlier generator-only checkpoint, replaced; anything else is refused."""
    from safetensors.numpy import save

    meta = read_state(ckpt, verify=True)
    which = "G_ema" if generator_file(meta, "G_ema") else "G"
    state = read_generator_state(ckpt, meta, which)
    tensors = {k: np.ascontiguousarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
    blobs = {SAFETENSORS[which]: save(tensors), NOISE_FILE: read_verified(ckpt, meta, NOISE_FILE)}
    if pickle:
        blobs[STATE_DICTS[which]] = (read_verified(ckpt, meta, STATE_DICTS[which])
                                     if STATE_DICTS[which] in meta["files"] else _pdparams_bytes(state))

    def fill(tmp: str) -> None:
        for name, data in blobs.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        files = {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in sorted(blobs.items())}
        small = dict(meta, contents=GENERATOR_ONLY, files=files)
        atomic_write_text(os.path.join(tmp, STATE_FILE), json.dumps(small, indent=1) + "\n")

    return write_folder(out, fill, earlier_generator_only)


def _pdparams_bytes(state: dict) -> bytes:
    """A state dict as paddle.save writes it (for a generator-only checkpoint made from safetensors alone)."""
    buf = io.BytesIO()
    paddle.save(state, buf)
    return buf.getvalue()


def load_checkpoint(ckpt: str, meta: dict | None = None, expected=None) -> dict:
    """Everything a resume needs, each file read and verified once: the state.json fields plus the
    G, D, opt_G, opt_D state dicts, fixed_noise, the parsed Config under 'cfg' and the folder under
    'path'. `meta`: state.json as already read (read_state(ckpt, verify=False)), if at hand.
    expected(cfg, loaded) -> {state dict key: {tensor key: (shape, dtype)}} (gan/state.py): every
    file is checked against the models and optimizers its config builds (check_fits)."""
    meta = meta or read_state(ckpt, verify=False)
    if meta.get("contents") == GENERATOR_ONLY:
        raise CheckpointError(f"{ckpt}: a generator-only checkpoint (for generate, eval and export); it holds no D or "
                              f"optimizer state to continue training from")
    out = dict(meta, cfg=checkpoint_config(meta), path=ckpt)
    for key, name in STATE_DICTS.items():
        if name in meta["files"]:  # check_state made sure that every file the run needs is listed
            out[key] = read_state_dict(ckpt, meta, name)
    want = expected(out["cfg"], out) if expected else {}
    for key, name in STATE_DICTS.items():
        if key in want and key in out:
            check_fits(os.path.join(ckpt, name), out[key], want[key])
    try:
        noise = np.load(io.BytesIO(read_verified(ckpt, meta, NOISE_FILE)), allow_pickle=False)
    except ValueError as e:
        raise CheckpointError(f"{os.path.join(ckpt, NOISE_FILE)}: cannot load ({e})") from None
    m = out["cfg"].model
    if noise.dtype != np.float32 or noise.ndim != 2 or noise.shape[1] != m.z_dim or not len(noise):
        raise CheckpointError(f"{os.path.join(ckpt, NOISE_FILE)}: expected float32 [N, {m.z_dim}], "
                              f"got {noise.dtype} {list(noise.shape)}")
    out["fixed_noise"] = noise
    return out


def load_latest(run_dir: str, log=print, expected=None) -> dict | None:
    """load_checkpoint of the newest checkpoint of a run that loads; damaged ones (and, with
    `expected`, ones whose tensors do not fit) are skipped, saying so. None if there is none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path, expected=expected)
        except CheckpointError as e:
            log(f"skipping checkpoint {path}: {e}")
    return None


def _all_finite(*models) -> bool:
    return all(bool(paddle.isfinite(p).all()) for m in models for p in m.state_dict().values()
               if p.dtype in (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64))


class Checkpoints:
    """Writes the run's checkpoints (the training state: gan/state.py TrainingState, plus the fixed
    noise and what state.json says about the run) and remembers the last complete one, which every
    error message names."""

    def __init__(self, run_dir: str, cfg, state, fixed_noise, last: str | None, prepare=None, **fields):
        """state: the TrainingState; prepare(): called before each write (the EMA generator measures
        its BatchNorm statistics); fields: more state.json fields (the class names)."""
        self.run_dir, self.cfg, self.state, self.prepare = run_dir, cfg, state, prepare
        self.fixed_noise, self.last, self.fields = fixed_noise, last, fields
        self.saved_step = None

    def write(self, step: int, name: str | None = None, **extra) -> str:
        """Checkpoint `step` (or checkpoints/<name>/), refusing non-finite weights; returns its folder."""
        last = self.last or "none saved yet"
        if not _all_finite(self.state.G, self.state.D):
            raise TrainingError(f"non-finite weights at step {step}; not saved (last good checkpoint: {last})")
        if self.prepare:
            self.prepare()
        full = self.state.state_dict()
        tensors = {key: full[key] for key in self.state.tensors()}
        fields = {"seed": self.cfg.train.seed, "data": full["data"], "config": self.cfg.to_dict(), "amp": full["amp"],
                  **({"terms": full["terms"]} if full["terms"] else {}),
                  "rng": "paddle.seed(step_seed(seed, step)) before each step", "device": paddle.get_device(),
                  "paddle_build": device.build(), **self.fields, **extra}
        try:
            return save_checkpoint(layout.checkpoints_dir(self.run_dir), step, tensors, self.fixed_noise, fields,
                                   name=name)
        except OSError as e:  # e.g. disk full: the half-written folder is gone, older checkpoints untouched
            raise TrainingError(f"saving the step-{step} checkpoint{f' ({name})' if name else ''} failed: {e}; "
                                f"last complete checkpoint: {last} (free space, then --resume)") from None

    def save(self, step: int, logger) -> None:
        """A numbered checkpoint; then the logs are made durable and old checkpoints rotated."""
        self.last, self.saved_step = self.write(step), step
        logger.flush()
        rotate(self.run_dir, self.cfg.train.keep_checkpoints, protect=self.last)
