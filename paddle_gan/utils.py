"""Small shared helpers: atomic file writes and image grids."""
from __future__ import annotations

import math
import os
import tempfile

import cv2
import numpy as np


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone makes files private (0600)


def atomic_write(path: str, write) -> None:
    """Call write(binary file) on a temporary file next to path, fsync it, then rename it onto path:
    readers see either the old file or the whole new one, never a part."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write_bytes(path: str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def display_scale(img_size: int, at_least: int = 64) -> int:
    """The whole-number zoom that shows an img_size image at `at_least` screen pixels or more."""
    return max(1, -(-at_least // img_size))


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """float images [N, C, H, W] in [-1, 1] -> one uint8 HWC grid (C = 1 or 3), pad pixels between,
    the whole grid enlarged `scale` times by repeating pixels (nearest neighbour: exact pixels)."""
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((pad + ncol * (h + pad), pad + nrow * (w + pad), c), np.uint8)
    pixels = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, img in enumerate(pixels):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid if scale == 1 else np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def encode_png(grid: np.ndarray) -> bytes:
    """uint8 HWC (grey or RGB) -> PNG bytes."""
    img = grid[..., ::-1] if grid.shape[2] == 3 else grid  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def read_png(path: str) -> np.ndarray:
    """PNG -> uint8 HWC RGB (grey PNGs come back with 3 equal channels)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return img[..., ::-1].copy()
