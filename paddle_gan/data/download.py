"""Finding a dataset's files on this machine, and fetching them (MD5-checked) when they are missing
and the machine is online."""
from __future__ import annotations

import hashlib
import os
import urllib.request

from ..errors import DataError
from ..files import atomic_write_bytes
from .arrays import log


def paddle_data_home() -> str:
    """Paddle's own dataset cache (where paddle.vision.datasets download to)."""
    return os.path.join(os.path.expanduser("~"), ".cache", "paddle", "dataset")


def download(url: str, dst: str, md5: str | None, timeout: float = 30.0) -> str:
    """Fetch url to dst (atomically, MD5-checked unless md5 is None). Raises DataError with the reason."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    log(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            payload = r.read()
    except Exception as e:  # URLError, timeouts, HTTP errors: all mean "could not fetch"
        raise DataError(f"could not download {url} ({getattr(e, 'reason', e)})") from None
    got = hashlib.md5(payload).hexdigest()
    if md5 is not None and got != md5:
        raise DataError(f"download of {url} has MD5 {got}, expected {md5}; not saved")
    atomic_write_bytes(dst, payload)
    return dst


def search_dirs(root: str, defaults: list[str]) -> list[str]:
    """Where to look for a dataset's files: an explicit data.root alone (it must exist: a typo must
    not train on some other copy), or the default places when data.root is empty."""
    if not root:
        return defaults
    if not os.path.isdir(root):
        raise DataError(f"data.root {root!r} does not exist" if not os.path.exists(root) else
                        f"data.root {root!r} is not a folder")
    return [root]


def locate(name: str, filename: str, dirs: list[str], source, allow_download: bool) -> str:
    """First dirs/filename (or its un-gzipped twin) that exists; else download into dirs[0]."""
    candidates = [filename] + ([filename[:-3]] if filename.endswith(".gz") else [])
    for d in dirs:
        for c in candidates:
            path = os.path.join(d, c)
            if os.path.isfile(path):
                return path
    where = ", ".join(dirs)
    if not allow_download:
        raise DataError(f"{name}: {filename} not found in {where}; put the file there or set data.root "
                        f"(data.download is false)")
    _, prefix, md5s = source
    try:
        return download(prefix + filename, os.path.join(dirs[0], filename), md5s[filename])
    except DataError as e:
        raise DataError(f"{name}: {filename} not found in {where}, and {e}; copy the file into one of "
                        f"those folders or set data.root") from None
