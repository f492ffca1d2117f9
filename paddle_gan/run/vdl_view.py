"""The VisualDL view of a run's log (vdl/): one record file, vdlrecords.paddle_gan.log, continued
across starts.

VisualDL shows only the newest vdlrecords file of a folder, and its records cannot be deleted, so a
run that resumes must never leave points of steps it trains again. At every flush (each checkpoint)
and at the end, the file's size and the last step in it are noted in vdl/position.json. A start from
that step (the usual resume: the last checkpoint) cuts the file back to the noted size, which drops
whatever a killed process wrote after its last checkpoint, adds the rows and grids between the noted
step and the start (none, usually), and appends from there: no replay, whatever the length of the
history. Only when the file went past the start (a branch from an older checkpoint), or its position
is missing or does not match the file, is it rebuilt from the metrics log and the sample grids (the
record; this view is derived from them).
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os

from ..files import atomic_write_text
from ..bounds import MAX_GRID_PIXELS
from ..images import read_png
from ..progress import say
from . import layout

IMAGE_TAG = layout.SAMPLES  # VisualDL's tag for the sample grids, named like their folder


def _position(vdl_dir: str) -> dict | None:
    try:
        with open(layout.vdl_position_path(vdl_dir)) as f:
            pos = json.load(f)
        ok = isinstance(pos, dict) and all(isinstance(pos.get(k), int) and not isinstance(pos.get(k), bool)
                                           for k in ("bytes", "step"))
        return pos if ok else None
    except (OSError, ValueError):
        return None


class VisualDLView:
    def __init__(self, run_dir: str, start_step: int, flush_secs: int, rows_after, all_rows):
        """rows_after(step): metrics-log rows with a step in (step, start_step]; all_rows(): every row
        up to start_step (for a rebuild)."""
        from visualdl import LogWriter  # imported here: it is slow to import and only the trainer needs it

        self.dir = layout.vdl_dir(run_dir)
        os.makedirs(self.dir, exist_ok=True)
        records = os.path.join(self.dir, layout.VDL_RECORDS)
        for other in glob.glob(os.path.join(self.dir, "vdlrecords*")):  # VisualDL would show only the newest
            if os.path.basename(other) != layout.VDL_RECORDS:
                os.unlink(other)
        pos = _position(self.dir)
        size = os.path.getsize(records) if os.path.isfile(records) else -1
        self.appending = bool(pos) and pos["step"] <= start_step and 0 <= pos["bytes"] <= size
        if self.appending:
            os.truncate(records, pos["bytes"])  # what a killed process wrote after its last checkpoint
        elif size >= 0:
            os.unlink(records)
        with contextlib.redirect_stdout(io.StringIO()):  # VisualDL prints that it adds to an existing file
            self.vdl = LogWriter(logdir=self.dir, file_name=layout.VDL_RECORDS, flush_secs=flush_secs)
        if self.appending and pos["bytes"] > 0:
            writer = getattr(getattr(self.vdl, "_file_writer", None), "_general_file_writer", None)
            if writer is None or not hasattr(writer, "write_started"):  # another VisualDL: rebuild instead
                self.vdl.close()
                os.unlink(records)
                self.appending = False
                with contextlib.redirect_stdout(io.StringIO()):
                    self.vdl = LogWriter(logdir=self.dir, file_name=layout.VDL_RECORDS, flush_secs=flush_secs)
            else:
                writer.write_started = True  # its first write would truncate the file otherwise
        since = pos["step"] if self.appending else -1
        self.last_step = max(since, 0)
        self.rows = rows_after(since) if self.appending else all_rows()
        self.samples = [(s, p) for s, p in layout.sample_files(run_dir) if max(since, 0) < s <= start_step]

    def replay(self, scalars) -> None:
        """Add what the file lacks: scalars(row) for the rows, and the sample grids with their times."""
        for row in self.rows:
            scalars(row)
        for step, path in self.samples:
            try:  # a grid that is not one this run could have written is left out, never decoded
                grid = read_png(path, MAX_GRID_PIXELS)
            except OSError as e:
                say(f"note: VisualDL leaves out {e}")
                continue
            self.image(step, grid, walltime=int(os.path.getmtime(path) * 1000))
        self.rows = self.samples = None

    def scalar(self, tag: str, value: float, step: int, walltime: int) -> None:
        self.vdl.add_scalar(tag, value, step, walltime=walltime)
        self.last_step = max(self.last_step, step)

    def image(self, step: int, grid, walltime: int | None = None) -> None:
        self.vdl.add_image(IMAGE_TAG, grid, step, **({"walltime": walltime} if walltime else {}))
        self.last_step = max(self.last_step, step)

    def flush(self) -> None:
        """Write everything out, then note where the file ends and the last step it holds."""
        self.vdl.flush()
        size = os.path.getsize(os.path.join(self.dir, layout.VDL_RECORDS))
        atomic_write_text(layout.vdl_position_path(self.dir), json.dumps({"bytes": size, "step": self.last_step}))

    def close(self) -> None:
        self.flush()
        self.vdl.close()
