"""tools/train.py's command line turned into a run: which config, which run folder, which checkpoint
to continue from (resolve), and the training call with its exit code (run).
"""
from __future__ import annotations

import copy
import os

import paddle

from . import device, distributed, layout
from .checkpoint import load_checkpoint, load_latest
from .history import list_checkpoints
from .config import apply_overrides, diff, load_config, validate
from .errors import CheckpointError, ConfigError, run_tool
from .logger import say
from .runlock import RunLock


def resolve(config_path: str | None, overrides: list[str], output: str | None, resume: str | None,
            probe_lock: bool = True, note=say):
    """(cfg, run_dir, loaded checkpoint or None) for a command line; raises ConfigError/CheckpointError.
    The checkpoint is read and verified here, once, before any data is decoded. What is worth saying
    (skipped checkpoints, changed settings) goes to `note`.
    probe_lock: fail now if another trainer holds the run folder (off for the ranks that do not write)."""
    ckpt = None
    if resume not in (None, "latest"):
        if not os.path.isdir(resume):
            raise CheckpointError(f"--resume {resume}: no such checkpoint folder")
        if layout.is_run(resume):  # a run folder: its newest checkpoint
            output = output or resume
            resume = "latest"
        else:
            run_dir = layout.run_of_checkpoint(resume)
            if output is None and run_dir is None:
                raise ConfigError(f"--resume {resume}: not inside <run>/checkpoints/; give --output for the run folder")
            output = output or run_dir
            ckpt = load_checkpoint(resume)
    if output is None:
        if config_path is None:
            raise ConfigError("give a config (-c FILE) or a run folder (--output DIR)")
        output = os.path.join("work", os.path.splitext(os.path.basename(config_path))[0])
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output {output} is a file, not a run folder")
    if probe_lock and os.path.isdir(output):  # fail early and clearly if another process trains there
        RunLock(output).acquire().release()
    if resume == "latest":
        ckpt = load_latest(output, log=lambda m: note(f"warning: {m}"))
        if ckpt is None and list_checkpoints(output):
            raise CheckpointError(f"--resume: no valid checkpoint in {layout.checkpoints_dir(output)}")
        if ckpt is None:  # killed before its first save, or never started: nothing to lose, start from step 0
            note(f"--resume: no checkpoint in {output} yet; starting from step 0")

    if ckpt is None:
        if config_path is None:
            raise ConfigError("a new run needs a config file (-c FILE)")
        cfg = load_config(config_path, overrides)
        existing = list_checkpoints(output)
        if existing:
            raise ConfigError(f"{output} already holds checkpoints (newest: step {existing[-1][0]}); "
                              f"continue it with --resume, or start a new run with --output DIR")
        return cfg, output, None

    saved = ckpt["cfg"]
    if config_path is not None:
        cfg = load_config(config_path, overrides)
    else:
        cfg = apply_overrides(copy.deepcopy(saved), overrides)
        validate(cfg)
    identity, other = diff(saved, cfg)
    if identity:
        raise ConfigError(f"cannot resume {ckpt['path']} with a different model or dataset: {'; '.join(identity)}")
    if other:
        note(f"resume with changed settings: {'; '.join(other)}")
    return cfg, output, ckpt


def run(config: str | None = None, overrides: list[str] = (), output: str | None = None,
        resume: str | None = None) -> int:
    """The body of tools/train.py; returns the process exit code (0 done, 2 bad input, 1 training
    error, 130/143 stopped by SIGINT/SIGTERM after saving)."""
    from .train import train

    def body() -> int:
        world = distributed.init()
        notes: list[str] = []
        cfg, run_dir, ckpt = resolve(config, list(overrides), output, resume, probe_lock=world.writer,
                                     note=notes.append)
        used = device.use(cfg.train.device)
        if world.parallel and used.startswith("gpu"):  # one GPU per process: the launcher's choice for this rank
            paddle.set_device("gpu")
            used = paddle.get_device()
        if world.writer:
            say(f"run folder: {run_dir} | device {used} ({device.build()})"
                + (f" | {world.size} processes x train.batch_size={cfg.train.batch_size}" if world.parallel else ""))
            for line in notes:
                say(line)
        result = train(cfg, run_dir, ckpt, world)
        if result["stopped_by"] is not None:
            return 128 + result["stopped_by"]
        if world.writer:
            say(f"done: step {result['step']}, checkpoint {result['checkpoint']}")
        return 0

    return run_tool(body, interrupted="interrupted; nothing saved since the last checkpoint")
