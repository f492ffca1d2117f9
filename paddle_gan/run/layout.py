"""The run folder's layout: every file and folder name of a run, in one place.

    <run>/config.yaml  metrics.jsonl  [metrics.jsonl.rejected]  samples/step_XXXXXXX.png  vdl/  curves.png
          progress.gif  metric-<extractor>.jsonl  train.lock
          checkpoints/step_XXXXXXX/  checkpoints/best/  [checkpoints/abandoned-<time>/]

Other modules ask for paths here and never spell these names themselves, so the layout can be read
(and changed) in one file. A step is always written with 7 digits (more when it outgrows them).
"""
from __future__ import annotations

import glob
import os
import re

CONFIG = "config.yaml"  # the resolved config of the latest start
METRICS = "metrics.jsonl"  # one JSON row per log interval and per evaluation
SAMPLES = "samples"  # fixed-noise sample grids, one PNG per sampled step
VDL = "vdl"  # VisualDL's logdir
VDL_RECORDS = "vdlrecords.paddle_gan.log"  # the one record file in it (vdl_view.py continues it across starts)
VDL_POSITION = "position.json"  # beside it: the file's size and last step at the last flush
CURVES = "curves.png"
PROGRESS_GIF = "progress.gif"
LOCK = "train.lock"  # lock.RunLock: one writer per run folder
CHECKPOINTS = "checkpoints"
BEST = "best"  # checkpoints/best/: the best evaluated checkpoint, kept apart from rotation

_STEP = re.compile(r"^step_(\d{7,})$")
_SAMPLE = re.compile(r"^step_(\d{7,})\.png$")


def step_name(step: int) -> str:
    """step_0000500: the name of a step's checkpoint folder (and, with .png, of its sample grid)."""
    return f"step_{step:07d}"


def parse_step(name: str) -> int | None:
    """The step of a checkpoint folder name such as step_0000500, else None."""
    m = _STEP.match(name)
    return int(m.group(1)) if m else None


def config_path(run: str) -> str:
    return os.path.join(run, CONFIG)


def metrics_path(run: str) -> str:
    return os.path.join(run, METRICS)


def samples_dir(run: str) -> str:
    return os.path.join(run, SAMPLES)


def sample_path(run: str, step: int) -> str:
    return os.path.join(samples_dir(run), step_name(step) + ".png")


def sample_files(run: str) -> list[tuple[int, str]]:
    """(step, path) of every sample grid of a run, oldest first."""
    found = [(int(m.group(1)), p) for p in glob.glob(os.path.join(samples_dir(run), "step_*.png"))
             if (m := _SAMPLE.match(os.path.basename(p)))]
    return sorted(found)


def vdl_dir(run: str) -> str:
    return os.path.join(run, VDL)


def vdl_position_path(vdl: str) -> str:
    return os.path.join(vdl, VDL_POSITION)


def curves_path(run: str) -> str:
    return os.path.join(run, CURVES)


def progress_gif_path(run: str) -> str:
    return os.path.join(run, PROGRESS_GIF)


def lock_path(run: str) -> str:
    return os.path.join(run, LOCK)


def eval_record_path(run: str, extractor: str) -> str:
    """metric-<extractor>.jsonl: one record per tools/eval.py call on the run's checkpoints."""
    return os.path.join(run, f"metric-{extractor}.jsonl")


def checkpoints_dir(run: str) -> str:
    return os.path.join(run, CHECKPOINTS)


def best_dir(run: str) -> str:
    return os.path.join(checkpoints_dir(run), BEST)


def abandoned_dir(run: str, stamp: str) -> str:
    """checkpoints/abandoned-<stamp>/: the later history of a run that was branched from an older
    checkpoint (checkpoint_history.abandon_later); list_checkpoints and rotation never look inside."""
    return os.path.join(checkpoints_dir(run), f"abandoned-{stamp}")


def rejected_metrics_path(run: str) -> str:
    """Lines of the metrics log that could not be read, kept beside it instead of deleted."""
    return os.path.join(run, METRICS + ".rejected")


def looks_like_run(folder: str) -> bool:
    """A folder a trainer has written (checkpoints/, its lock, or its config and log), even one killed
    before its first checkpoint: what tools/train.py --output may write into besides a new or empty one."""
    have = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    return CHECKPOINTS in have or LOCK in have or {CONFIG, METRICS} <= have


def is_run(folder: str) -> bool:
    """A folder that holds a checkpoints/ folder (a run folder, as opposed to a checkpoint folder)."""
    return os.path.isdir(checkpoints_dir(folder))


def run_of_checkpoint(ckpt: str) -> str | None:
    """The run folder a checkpoint folder belongs to (<run>/checkpoints/<ckpt>), or None for a
    checkpoint that lies anywhere else (e.g. one copied on its own)."""
    parent = os.path.dirname(os.path.abspath(ckpt))
    return os.path.dirname(parent) if os.path.basename(parent) == CHECKPOINTS else None
