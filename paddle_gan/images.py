"""Image grids and PNG files: the sample grids of training and tools/generate.py are built here, and
every image the package reads is sized from its header before it is decoded (header_pixels)."""
from __future__ import annotations

import math
import warnings

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


# What a file is, by its first bytes, as OpenCV picks its decoder: only these four are decoded, so
# that the size read from the header below is the size the decoder will allocate. (A Radiance HDR
# file named huge.png decoded to 2.1 GB past data.max_pixels when any header PIL could not read was
# let through.)
SIGNATURES = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "BMP": (b"BM",), "WEBP": (b"RIFF",)}


def _format(head: bytes) -> str | None:
    for name, starts in SIGNATURES.items():
        if head.startswith(starts) and (name != "WEBP" or head[8:12] == b"WEBP"):
            return name
    return None


def header_pixels(path: str, formats=tuple(SIGNATURES)) -> int | None:
    """Width x height from the file's header, without decoding it; None unless the file is one of
    `formats` (PNG, JPEG, BMP, WebP) by its content and PIL reads that format's header."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    kind = _format(head)
    if kind is None or kind not in formats:
        return None
    if kind == "PNG":  # its IHDR chunk comes first: width and height as big-endian 32-bit numbers
        return int.from_bytes(head[16:20], "big") * int.from_bytes(head[20:24], "big") if head[12:16] == b"IHDR" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit
        try:
            with Image.open(path, formats=[kind]) as im:
                return im.size[0] * im.size[1]
        except Image.DecompressionBombError:  # over twice PIL's own limit: certainly over ours too
            return 1 << 62
        except Exception:
            return None


def read_png(path: str, max_pixels: int) -> np.ndarray:
    """PNG -> uint8 HWC RGB (grey PNGs come back with 3 equal channels), decoded only if its header
    says it is a PNG of at most max_pixels pixels; OSError naming the file otherwise."""
    pixels = header_pixels(path, formats=("PNG",))
    if pixels is None or pixels > max_pixels:
        raise OSError(f"{path}: " + ("not a PNG whose size its header gives" if pixels is None else
                                      f"{pixels} pixels, more than the {max_pixels} of any grid here"))
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return img[..., ::-1].copy()
