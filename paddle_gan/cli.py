"""tools/train.py's command line turned into a run: which config, which run folder, which checkpoint
to continue from (resolve), the training call with its exit code (run), and the exact command that
continues a run (Invocation.command). With no config, no run folder and no checkpoint given, the run
is the quickstart: configs/quickstart.yaml into work/quickstart/.
"""
from __future__ import annotations

import copy
import glob
import os
import shlex
from dataclasses import dataclass, field

import paddle

from . import device, distributed
from .distributed import TIME_UP
from .config import apply_overrides, diff, load_config, validate
from .errors import CheckpointError, ConfigError, run_tool
from .gan.state import expected
from .progress import say
from .run import layout
from .run.checkpoint import load_checkpoint, load_latest
from .run.checkpoint_history import list_checkpoints
from .run.lock import RunLock


def resolve(config_path: str | None, overrides: list[str], output: str | None, resume: str | None,
            probe_lock: bool = True, note=say, default_config: str | None = None):
    """(cfg, run_dir, loaded checkpoint or None) for a command line; raises ConfigError/CheckpointError.
    The checkpoint is read and verified here, once, before any data is decoded. What is worth saying
    (skipped checkpoints, changed settings) goes to `note`.
    probe_lock: fail now if another trainer holds the run folder (off for the ranks that do not write).
    default_config: the config of a new run given none (-c), as --help promises: the quickstart."""
    ckpt = None
    if resume not in (None, "latest"):
        if not os.path.isdir(resume):
            raise CheckpointError(f"--resume {resume}: no such checkpoint folder")
        if os.path.basename(os.path.normpath(resume)) == layout.CHECKPOINTS and layout.is_run(
                os.path.dirname(os.path.normpath(resume)) or "."):  # <run>/checkpoints itself: that run
            resume = os.path.dirname(os.path.normpath(resume)) or "."
        if layout.is_run(resume):  # a run folder: its newest checkpoint
            output = output or resume
            resume = "latest"
        else:
            run_dir = layout.run_of_checkpoint(resume)
            if output is None and run_dir is None:
                raise ConfigError(f"--resume {resume}: not inside <run>/checkpoints/; give --output for the run folder")
            output = output or run_dir
            ckpt = load_checkpoint(resume, expected=expected)
    if output is None:
        if config_path is None:
            raise ConfigError("give a config (-c FILE) or a run folder (--output DIR)")
        output = os.path.join("work", os.path.splitext(os.path.basename(config_path))[0])
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output {output} is a file, not a run folder")
    if os.path.isdir(output) and os.listdir(output) and not layout.looks_like_run(output):
        raise ConfigError(f"--output {output}: a folder with files that are not a paddle_gan run (e.g. "
                          f"{sorted(os.listdir(output))[0]}); nothing was written: give a new or empty folder")
    if probe_lock and os.path.isdir(output):  # fail early and clearly if another process trains there
        RunLock(output).acquire().release()
    if resume == "latest":
        if not os.path.isdir(output):
            note(f"--resume: there is no run folder {output} (nothing to continue): starting a new run there, "
                 f"from step 0")
        skipped = []
        ckpt = load_latest(output, log=lambda m: (skipped.append(m), note(f"warning: {m}")), expected=expected)
        if ckpt is None and list_checkpoints(output):
            raise CheckpointError(f"--resume: no valid checkpoint in {layout.checkpoints_dir(output)} "
                                  f"(the newest: {skipped[0].split(': ', 1)[-1]})")
        elif ckpt is None:  # killed before its first save: nothing to lose, start from step 0
            note(f"--resume: no checkpoint in {output} yet; starting from step 0")

    if ckpt is None:
        if config_path is None and default_config:
            config_path = default_config
            note(f"no config given: a new run of the quickstart ({os.path.relpath(default_config)})")
        if config_path is None:
            raise ConfigError("a new run needs a config file (-c FILE)")
        cfg = load_config(config_path, overrides)
        existing = list_checkpoints(output)
        if existing:
            raise ConfigError(f"{output} already holds checkpoints (newest: step {existing[-1][0]}); "
                              f"continue it with --resume (and -o train.steps=N to train longer), "
                              f"or start a new run with --output DIR")
        return cfg, output, None

    saved = ckpt["cfg"]
    if config_path is not None:
        cfg = load_config(config_path, overrides)
    else:
        cfg = apply_overrides(copy.deepcopy(saved), overrides)
        validate(cfg)
    if cfg.train.steps < ckpt["step"]:
        raise ConfigError(f"the run is already at step {ckpt['step']}, past train.steps={cfg.train.steps}: nothing to "
                          f"train (-o train.steps=N with N > {ckpt['step']} trains it further)")
    identity, other = diff(saved, cfg)
    if identity:
        raise ConfigError(f"cannot resume {ckpt['path']} with a different model or dataset: {'; '.join(identity)}")
    if other:
        note(f"resume with changed settings: {'; '.join(other)}")
    return cfg, output, ckpt


@dataclass
class Invocation:
    """A tools/train.py command line: what was given, and the quickstart when nothing was."""
    config: str | None = None
    overrides: list = field(default_factory=list)
    output: str | None = None
    resume: str | None = None
    quickstart: str | None = None  # the quickstart config, used when neither -c nor a run folder is given
    program: str = "python tools/train.py"  # how the user calls us (the installed command: paddle-gan-train)

    def __post_init__(self):
        self.default = self.config is None and self.output is None and self.resume in (None, "latest")
        if self.default and self.quickstart:
            self.config = self.quickstart

    def command(self, run_dir: str, steps: int | None = None) -> str:
        """The exact command that continues the run in run_dir (to `steps` in all, if given): the
        same config and overrides as now (a config file is read again on resume), --output unless
        it is the default folder, and --resume."""
        args = shlex.split(self.program)
        if self.config and not self.default:
            args += ["-c", self.config]
        if os.path.normpath(run_dir) != os.path.normpath(self.default_output() or ""):
            args += ["--output", run_dir]
        args.append("--resume")
        # a config file is read again on resume, so its overrides are given again; without one, the
        # checkpoint's own config already holds them
        keep = [o for o in self.overrides if not (steps and o.startswith("train.steps="))] if self.config else []
        keep += [f"train.steps={steps}"] if steps else []
        return shlex.join(args + (["-o", *keep] if keep else []))

    def default_output(self) -> str | None:
        return os.path.join("work", os.path.splitext(os.path.basename(self.config))[0]) if self.config else None


def configs_dir() -> str:
    """configs/ of the clone this package is in; installed, the copy inside the package."""
    here = os.path.dirname(os.path.abspath(__file__))
    clone = os.path.join(os.path.dirname(here), "configs")
    return clone if os.path.isfile(os.path.join(clone, "quickstart.yaml")) else os.path.join(here, "configs")


def describe_configs(folder: str) -> list[tuple[str, str]]:
    """(file name, its first line: a one-line comment saying what it trains) of every config in folder."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*.yaml"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        out.append((os.path.basename(path), first.lstrip("#").strip() if first.startswith("#") else ""))
    return out


def run(inv: Invocation) -> int:
    """The body of tools/train.py; returns the process exit code (0 done, 2 bad input, 1 training
    error, 130/143 stopped by SIGINT/SIGTERM after saving)."""
    from .train import choose_precision, train

    def body() -> int:
        world = distributed.init()
        notes: list[str] = []
        cfg, run_dir, ckpt = resolve(inv.config, list(inv.overrides), inv.output, inv.resume,
                                     probe_lock=world.writer, note=notes.append, default_config=inv.quickstart)
        used = device.use(cfg.train.device)
        if world.parallel and used.startswith("gpu"):  # one GPU per process: the launcher's choice for this rank
            paddle.set_device("gpu")
            used = paddle.get_device()
        said = []
        precision = choose_precision(cfg, world, note=said.append)  # (said in the first line, below)
        if world.writer:
            what = (f"no config given: the quickstart ({os.path.relpath(inv.config)}: DCGAN-32 on the Fashion-MNIST "
                    f"test split, offline) into {run_dir}/" if inv.default and not ckpt else f"run folder: {run_dir}")
            say(f"{what} | device {used} ({device.build()}) | {said[-1] if said else 'float32'}"
                + (f" | {world.size} processes x train.batch_size={cfg.train.batch_size}" if world.parallel else ""))
            for line in notes:
                say(line)
            say(f"watch it: visualdl --logdir {shlex.quote(layout.vdl_dir(run_dir))} --host 127.0.0.1 --port 8040, "
                f"then open http://127.0.0.1:8040/app/scalar")
        result = train(cfg, run_dir, ckpt, world, precision)
        if world.writer and result["stopped_by"] == TIME_UP:
            say(f"train.minutes={cfg.train.minutes:g} reached at step {result['step']}; checkpoint {result['checkpoint']}; "
                f"continue with: {inv.command(run_dir)}")
            return 0
        if world.writer and result["stopped_by"] is not None:
            say(f"stopped at step {result['step']}; checkpoint {result['checkpoint']}; continue with: "
                f"{inv.command(run_dir)}")
        elif world.writer:
            say(f"done: step {result['step']}, checkpoint {result['checkpoint']}; to train longer: "
                f"{inv.command(run_dir, steps=2 * result['step'] or cfg.train.steps)}")
        return 0 if result["stopped_by"] in (None, TIME_UP) else 128 + result["stopped_by"]

    return run_tool(body, interrupted="interrupted; nothing saved since the last checkpoint")
