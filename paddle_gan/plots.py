"""Pictures of a run: curves.png (losses, D outputs and metrics against step) and a GIF of the
sample grids, as encoded bytes (curves_png, progress_gif) or written atomically from a run folder."""
from __future__ import annotations

import io

import numpy as np

from . import layout
from .logger import read_metrics
from .utils import atomic_write_bytes, read_png

SKIP = ("step", "time", "epoch", "img_per_s", "lr_G", "lr_D")


def curves_png(rows: list[dict]) -> bytes:
    """Losses, D(x)/D(G(z)), and (if any) evaluation scores against step, one panel each."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    metric_keys = sorted({k for r in rows for k, v in r.items() if k not in SKIP and isinstance(v, (int, float))
                          and k not in ("loss_D", "loss_G", "D_real", "D_fake") and "_std_" not in k})
    panels = [("loss", ["loss_D", "loss_G"]), ("D output", ["D_real", "D_fake"])]
    distances = [k for k in metric_keys if k.startswith(("fid", "kid"))]
    inception_scores = [k for k in metric_keys if k.startswith("is_")]  # 1..classes, apart from the 0..1 scores
    others = [k for k in metric_keys if k not in distances and k not in inception_scores]
    for title, keys in (("FID / KID (lower is better)", distances), ("IS (higher is better)", inception_scores),
                        ("PR / DC (higher is better)", others)):
        if keys:
            panels.append((title, keys))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, keys) in zip(axes[:, 0], panels):
        for key in keys:
            x, y = series(key)
            if x:
                ax.plot(x, y, marker="o" if key in metric_keys else None, ms=3, label=key)
        if keys is distances:
            ax.set_yscale("symlog", linthresh=1e-3)  # orders of magnitude; KID (unbiased) can dip below 0
        ax.set_ylabel(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
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


def write_progress_gif(run_dir: str, out_path: str) -> bool:
    """The run's samples/*.png as a GIF at out_path; False (nothing written) if there are none."""
    frames = [read_png(path) for _, path in layout.sample_files(run_dir)]
    if not frames:
        return False
    atomic_write_bytes(out_path, progress_gif(frames))
    return True


def write_run_pictures(run_dir: str, gif: bool) -> None:
    """The end-of-run pictures: curves.png from the metrics log, and progress.gif if asked."""
    rows = read_metrics(layout.metrics_path(run_dir))
    if rows:
        atomic_write_bytes(layout.curves_path(run_dir), curves_png(rows))
    if gif:
        write_progress_gif(run_dir, layout.progress_gif_path(run_dir))
