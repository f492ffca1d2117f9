"""Run logging: the metrics log (one JSON row per interval: the record), the sample grid PNGs,
and the VisualDL view of both (file names: layout.py).

The metrics log and the sample grids are the source of truth; VisualDL's view of them (vdl_view.py)
is continued across starts, and rebuilt from them only when it cannot be. Rows and grids past the
resume step are dropped first (read from the log's tail), so every step appears once.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from . import layout
from ..files import atomic_write_bytes
from ..images import encode_png
from ..progress import say
from .checkpoint_history import move_aside
from .vdl_view import VisualDLView

# metrics log key -> VisualDL tag, for the keys the loop adds to a row; the step's own keys come with
# their tags (RunLogger's `tags`: gan/objective.py TAGS, the group "GAN", which VisualDL sorts before
# lr, perf and score and opens first). Any other numeric key is an evaluation score: score/<key>
# (score/G_ema/<key> for the EMA generator).
LOOP_TAGS = {"lr_G": "lr/G", "lr_D": "lr/D", "img_per_s": "perf/img_per_s"}
NOT_PLOTTED = ("step", "time", "epoch")


def _row(line: bytes) -> dict | None:
    """A metrics-log row, or None for a line that is not one: not UTF-8, not JSON, not an object with
    a whole-number step >= 0 (a torn last line after a kill, or a file edited or damaged by hand)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    ok = isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool)
    return row if ok and row["step"] >= 0 else None


def split_metrics(path: str) -> tuple[list[dict], list[bytes]]:
    """(rows, unreadable lines) of a metrics log."""
    rows, bad = [], []
    if os.path.isfile(path):
        with open(path, "rb") as f:
            for line in f:
                row = _row(line)
                if row is not None:
                    rows.append(row)
                elif line.strip():
                    bad.append(line.rstrip(b"\n") + b"\n")
    return rows, bad


def read_metrics(path: str) -> list[dict]:
    """Rows of a metrics log; lines that are not rows (a torn last line after a kill) are passed over."""
    return split_metrics(path)[0]


def tag_for(key: str, tags: dict, generator: str = "G") -> str:
    """The VisualDL tag of a metrics-log key; scores of the EMA generator say so (score/G_ema/...)."""
    return tags.get(key, f"score/{key}" if generator == "G" else f"score/{generator}/{key}")


def split_tail(path: str, step: int) -> tuple[int, list[dict], list[bytes]]:
    """(the byte offset where the rows up to `step` end, the rows after it, the lines after it that are
    not rows) of a metrics log, read backwards from its end: the cost is that of the tail, not of the
    history (rows are written in step order). A last line without its newline is a torn write."""
    if not os.path.isfile(path):
        return 0, [], []
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        start, data = size, b""
        while True:
            n = min(1 << 16, start)
            start -= n
            f.seek(start)
            data = f.read(n) + data
            lines = data.split(b"\n")  # the last element is what follows the last newline (b"" if none)
            offsets, pos = [], start
            for line in lines:
                offsets.append(pos)
                pos += len(line) + 1
            first = 0 if start == 0 else 1  # lines[0] may be cut off by the chunk edge
            for i in range(len(lines) - 2, first - 1, -1):  # complete lines only, newest first
                row = _row(lines[i])
                if row is not None and row["step"] <= step:
                    keep, tail = offsets[i] + len(lines[i]) + 1, lines[i + 1:]
                    break
            else:
                if start > 0:
                    continue
                keep, tail = 0, lines
            rows = [r for r in (_row(ln) for ln in tail if ln.strip()) if r is not None]
            bad = [ln + b"\n" for ln in tail if ln.strip() and _row(ln) is None]
            if tail and tail[-1].strip() and _row(tail[-1]) is not None:  # a row without its newline: torn
                rows.pop()
                bad.append(tail[-1] + b"\n")
            return keep, rows, bad


class RunLogger:
    """Writes metrics rows and sample grids of one run folder, continuing from `start_step`.

    Rows and grids after start_step are a history that will not be continued: the steps a killed run
    logged after its last checkpoint (dropped: they are trained again, identically), or with
    `abandoned` (checkpoint_history.abandon_later's folder) a branch left behind, moved there. Lines of
    the log's tail that are not rows (a write cut off by a kill) are moved beside it
    (layout.rejected_metrics_path) with a warning, never deleted. A start reads only the log's tail and
    continues the VisualDL view (vdl_view.py), so it costs the same after 10 rows as after 10 million."""

    def __init__(self, run_dir: str, start_step: int, tags: dict, flush_secs: int = 10, abandoned: str | None = None):
        """tags: the VisualDL tag of each key the step returns (gan/objective.py TAGS)."""
        self.run_dir, self.tags = run_dir, {**tags, **LOOP_TAGS}
        self.metrics_path = layout.metrics_path(run_dir)
        os.makedirs(layout.samples_dir(run_dir), exist_ok=True)
        keep, later_rows, bad = split_tail(self.metrics_path, start_step)
        if bad:
            with open(layout.rejected_metrics_path(run_dir), "ab") as f:
                f.write(b"".join(bad))
                f.flush()
                os.fsync(f.fileno())
            say(f"warning: {len(bad)} line(s) of {self.metrics_path} are not log rows (a write cut off by a kill, "
                f"or damage); moved to {layout.rejected_metrics_path(run_dir)}")
        later = [p for s, p in layout.sample_files(run_dir) if s > start_step]
        if abandoned:
            move_aside(later_rows, later, abandoned)
        if later_rows or bad:
            os.truncate(self.metrics_path, keep)
        for path in later if not abandoned else ():
            os.unlink(path)
        self.view = VisualDLView(run_dir, start_step, flush_secs,
                                 rows_after=lambda s: split_tail(self.metrics_path, s)[1],
                                 all_rows=lambda: [r for r in read_metrics(self.metrics_path) if r["step"] <= start_step])
        self.view.replay(self._vdl_scalars)
        self._metrics = open(self.metrics_path, "a")

    def _vdl_scalars(self, row: dict) -> None:
        wall = int(row.get("time", time.time()) * 1000)
        for key, value in row.items():
            if key not in NOT_PLOTTED and isinstance(value, (int, float)):
                self.view.scalar(tag_for(key, self.tags, row.get("generator", "G")), float(value), row["step"], wall)

    def scalars(self, row: dict) -> None:
        """One metrics log row ({'step': ..., name: value}); also plotted in VisualDL."""
        row = dict(row, time=row.get("time", time.time()))
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()
        self._vdl_scalars(row)

    def image(self, step: int, grid: np.ndarray) -> str:
        """Save a uint8 HWC sample grid as samples/step_XXXXXXX.png and show it in VisualDL (from step 1:
        VisualDL's page opens on its first image, and the untrained G's step-0 grid is grey squares)."""
        path = layout.sample_path(self.run_dir, step)
        atomic_write_bytes(path, encode_png(grid))
        if step > 0:
            self.view.image(step, np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid)
        return path

    def flush(self) -> None:
        self._metrics.flush()
        os.fsync(self._metrics.fileno())
        self.view.flush()

    def close(self) -> None:
        """Flush and close; never raises, as it runs while an error (e.g. disk full) is being reported."""
        if not self._metrics.closed:
            for fn in (self.flush, self._metrics.close, self.view.close):
                try:
                    fn()
                except Exception:
                    pass


class Interval:
    """Means of the step results since the last log row, and this session's pace for the ETA. A key
    that only some steps return (a lazy penalty) is the mean over the steps that returned it."""

    def __init__(self):
        self.sums, self.counts, self.steps, self.seconds = {}, {}, 0, 0.0
        self.session_steps, self.session_seconds = 0, 0.0

    def add(self, out: dict[str, float], seconds: float) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.steps, self.seconds = self.steps + 1, self.seconds + seconds
        self.session_steps, self.session_seconds = self.session_steps + 1, self.session_seconds + seconds

    def take(self, images_per_step: int) -> dict[str, float]:
        """The interval's means (and img/s), starting a new interval."""
        row = {k: v / self.counts[k] for k, v in self.sums.items()}
        row["img_per_s"] = self.steps * images_per_step / self.seconds
        self.sums, self.counts, self.steps, self.seconds = {}, {}, 0, 0.0
        return row

    def eta(self, steps_left: int) -> float:
        return steps_left * self.session_seconds / self.session_steps


def status_line(step: int, total: int, row: dict, eta_s: float) -> str:
    eta = f"{int(eta_s // 60)}m{int(eta_s % 60):02d}s" if np.isfinite(eta_s) else "?"
    return (f"step {step}/{total} ({100 * step / max(total, 1):.0f}%) | loss_D {row['loss_D']:.3f} "
            f"loss_G {row['loss_G']:.3f} | D(x) {row['D_real']:.3f} D(G(z)) {row['D_fake']:.3f} | "
            f"{row['img_per_s']:.0f} img/s | ETA {eta}")
