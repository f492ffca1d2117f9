"""Pictures of a run: curves.png (losses, D outputs and metrics against step) and a GIF of the
sample grids, as encoded bytes (curves_png, progress_gif) or written atomically from a run folder."""
from __future__ import annotations

import io
import os

import numpy as np

from . import layout
from ..files import atomic_write_bytes
from ..bounds import MAX_GIF_FRAMES, MAX_GRID_PIXELS, need_memory
from ..images import read_png
from ..progress import say
from .run_log import read_metrics

def curves_png(rows: list[dict], training: list, scores: list) -> bytes:
    """Training curves and every evaluation score against step, one readable panel each: linear axes
    with labelled ticks, and the last value of each score written beside its last point.
    training: the training panels, [(title, keys)] (gan/objective.py panels() knows the step's keys);
    scores: the score panels, [(title, score names)] (each drawn for every extractor: <score>_<x>;
    metrics/catalog.py's panels)."""
    import logging

    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    # its font cache note ("generated new fontManager", first use on a machine) would land in the
    # run's output through the handler Paddle puts on the root logger
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)]
        return [p[0] for p in pts], [p[1] for p in pts]

    keys = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and "_std_" not in k}
    panels = [(title, [k for k in group if k in keys], False) for title, group in training]
    panels += [(title, sorted(k for k in keys if k.startswith(tuple(f"{n}_" for n in names)) and "per_class" not in k),
                True) for title, names in scores]
    panels = [p for p in panels if p[1]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.8 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, names, scores) in zip(axes[:, 0], panels):
        for key in names:
            x, y = series(key)
            if x:
                line, = ax.plot(x, y, marker="o" if scores else None, ms=3, label=key)
                if scores:  # the value itself, readable without guessing from the axis
                    ax.annotate(f"{y[-1]:.3g}", (x[-1], y[-1]), textcoords="offset points", xytext=(4, 4),
                                fontsize=8, color=line.get_color())
        ax.set_title(title, fontsize=9, loc="left")
        ax.margins(x=0.06, y=0.18)  # room for the last value's label, also at the top and bottom of a panel
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def progress_gif(frames: list[np.ndarray], ms_per_frame: int = 300) -> bytes:
    """uint8 HWC grids (grey or RGB, same size) -> an endlessly looping GIF."""
    from PIL import Image

    if not frames:
        raise ValueError("no sample grids to assemble")
    images = [Image.fromarray(f[..., 0] if f.shape[2] == 1 else f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def gif_frames(run_dir: str) -> list[np.ndarray]:
    """The run's sample grids for a GIF: at most MAX_GIF_FRAMES of them, evenly spaced (first and last
    kept), each decoded only if its header says it is a PNG within MAX_GRID_PIXELS, all of the first
    one's size, and their total within memory. A grid that fails is left out, with a note."""
    found = layout.sample_files(run_dir)
    if len(found) > MAX_GIF_FRAMES:
        picks = sorted({round(i * (len(found) - 1) / (MAX_GIF_FRAMES - 1)) for i in range(MAX_GIF_FRAMES)})
        found = [found[i] for i in picks]
    frames = []
    for _, path in found:
        try:
            frame = read_png(path, MAX_GRID_PIXELS)
        except OSError as e:
            say(f"note: progress.gif leaves out {e}")
            continue
        if frames and frame.shape != frames[0].shape:
            say(f"note: progress.gif leaves out {path}: {frame.shape[1]} x {frame.shape[0]} pixels, not the "
                f"{frames[0].shape[1]} x {frames[0].shape[0]} of the first grid")
            continue
        if not frames:
            need_memory(2 * frame.nbytes * len(found), "samples/", f"a GIF of {len(found)} grids")
        frames.append(frame)
    return frames


def write_progress_gif(run_dir: str, out_path: str) -> bool:
    """The run's samples/*.png as a GIF at out_path; False (nothing written) if there are none."""
    frames = gif_frames(run_dir)
    if not frames:
        return False
    atomic_write_bytes(out_path, progress_gif(frames))
    return True


def write_run_pictures(run_dir: str, gif: bool, training: list, scores: list) -> None:
    """The end-of-run pictures: curves.png from the metrics log (panels: curves_png), and progress.gif
    if asked."""
    path = layout.metrics_path(run_dir)
    if os.path.isfile(path) and os.path.getsize(path) > 8 << 20:  # ~50k rows: seconds, not a silence
        say(f"drawing {layout.curves_path(run_dir)} from {os.path.getsize(path) >> 20} MB of metrics log")
    rows = read_metrics(path)
    if rows:
        atomic_write_bytes(layout.curves_path(run_dir), curves_png(rows, training, scores))
    if gif:
        say(f"writing {layout.progress_gif_path(run_dir)} ({len(layout.sample_files(run_dir))} sample grids)")
        write_progress_gif(run_dir, layout.progress_gif_path(run_dir))
