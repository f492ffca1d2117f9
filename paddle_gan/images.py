"""Image grids and PNG files: the sample grids of training and tools/generate.py are built here."""
from __future__ import annotations

import math

import cv2
import numpy as np


def display_scale(img_size: int, at_least: int = 64) -> int:
    """The whole-number zoom that shows an img_size image at `at_least` screen pixels or more."""
    return max(1, -(-at_least // img_size))


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float images in [-1, 1] -> uint8 0..255 (rounded), as saved PNGs hold them."""
    return np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """float images [N, C, H, W] in [-1, 1] -> one uint8 HWC grid (C = 1 or 3), pad pixels between,
    the whole grid enlarged `scale` times by repeating pixels (nearest neighbour: exact pixels)."""
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((pad + ncol * (h + pad), pad + nrow * (w + pad), c), np.uint8)
    pixels = to_uint8(images).transpose(0, 2, 3, 1)
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
