"""The run's checkpoint folders over time: listing them, rotating old ones away, tidying what a
killed process left behind, and moving a later history aside when a run branches from an older
checkpoint.

Branching: resuming from a checkpoint that is not the newest (`--resume RUN/checkpoints/step_X`, or
`.../best`) would otherwise leave the later checkpoints, log rows and sample grids of the old
history next to the new one. Before training starts they are moved, never deleted, to
checkpoints/abandoned-<time>/ (its own step folders, best/ if it is later than the branch point,
its own metrics log and sample grids), with a printed line; the branch point itself stays where it is.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time

from . import layout
from ..errors import CheckpointError
from .state_json import read_state


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, folder) of every visible checkpoint of a run, oldest first (not verified)."""
    root = layout.checkpoints_dir(run_dir)
    if not os.path.isdir(root):
        return []
    found = [(step, os.path.join(root, name)) for name in os.listdir(root)
             if (step := layout.parse_step(name)) is not None and os.path.isdir(os.path.join(root, name))]
    return sorted(found)


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


# files.atomic_write's temporaries (.<name>.<random>.tmp) of the files a run writes: a hidden .tmp file
# of any other name in the folder is not the run's to delete
_ATOMIC_LEFTOVER = re.compile(r"^\.(%s|step_\d{7,}\.png)\.[^.]+\.tmp$" % "|".join(
    re.escape(n) for n in (layout.CONFIG, layout.CURVES, layout.PROGRESS_GIF, layout.METRICS, layout.VDL_POSITION)))


# what a killed save (.step_*.tmp-<pid>, .best.tmp-<pid>), rotation (.step_*.del-<pid>) or re-save (step_*.old-<pid>)
# leaves in checkpoints/
_CHECKPOINT_LEFTOVER = re.compile(r"^(\.(step_\d{7,}|best)\.(tmp|del)-\d+|(step_\d{7,}|best)\.old-\d+)$")


def clean_temporary(run_dir: str) -> None:
    """Tidy what a killed run left behind: hidden checkpoint folders being written (.step_*.tmp-*,
    .best.tmp-*) or deleted (.step_*.del-*), and atomic_write temporaries in the run folder, samples/ and vdl/. A complete
    checkpoint swapped out for a re-save of the same step (step_*.old-*) is put back if the new one
    never arrived. Only call this while holding the run folder's lock."""
    root = layout.checkpoints_dir(run_dir)
    if os.path.isdir(root):
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if ".old-" in name and not os.path.exists(os.path.join(root, name.split(".old-")[0])):
                os.rename(path, os.path.join(root, name.split(".old-")[0]))
            elif _CHECKPOINT_LEFTOVER.match(name):  # only names a save or a rotation makes: nothing of a user's
                shutil.rmtree(path, ignore_errors=True)
    for folder in (run_dir, layout.samples_dir(run_dir), layout.vdl_dir(run_dir)):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if _ATOMIC_LEFTOVER.match(name) and os.path.isfile(os.path.join(folder, name)):
                    os.unlink(os.path.join(folder, name))


def abandon_later(run_dir: str, step: int, log=print) -> str | None:
    """Move every checkpoint of run_dir later than `step` (best/ too, if later) into a new
    checkpoints/abandoned-<time>/ folder; returns that folder (the logger moves the later log rows
    and sample grids there too), or None if nothing is later. Newest first, so a kill part-way
    leaves a run whose newest checkpoint is still one consistent history."""
    later = [(s, p) for s, p in list_checkpoints(run_dir) if s > step]
    best = layout.best_dir(run_dir)
    try:
        best_step = read_state(best, verify=False)["step"] if os.path.isdir(best) else None
    except CheckpointError:
        best_step = None  # a damaged best/ is no history of anyone's; leave it for the trainer to replace
    if not later and (best_step is None or best_step <= step):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = layout.abandoned_dir(run_dir, stamp)
    n = 1
    while os.path.exists(dest):
        n += 1
        dest = layout.abandoned_dir(run_dir, f"{stamp}-{n}")
    os.makedirs(dest)
    if best_step is not None and best_step > step:
        os.rename(best, os.path.join(dest, layout.BEST))
    for _, path in reversed(later):
        os.rename(path, os.path.join(dest, os.path.basename(path)))
    parts = [f"checkpoints {', '.join(str(s) for s, _ in later)}"] if later else []
    parts += [f"best/ (step {best_step})"] if best_step is not None and best_step > step else []
    log(f"branching at step {step}: the later history ({'; '.join(parts)}, and the log rows and sample grids "
        f"after step {step}) moved to {dest} (kept, never deleted)")
    return dest


def move_aside(rows: list[dict], samples: list[str], dest: str) -> None:
    """Keep an abandoned history's log rows (appended to the metrics log in dest) and sample grids."""
    if rows:
        with open(layout.metrics_path(dest), "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    if samples:
        os.makedirs(layout.samples_dir(dest), exist_ok=True)
        for path in samples:
            os.rename(path, os.path.join(layout.samples_dir(dest), os.path.basename(path)))
