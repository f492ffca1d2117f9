"""One writer per run folder: an exclusive lock on <run>/train.lock, held while training.

The lock is an OS file lock (flock), not the file's existence: the kernel drops it when the holder
exits, however it exits (kill -9 included), so a stale lock can never block a resume and there is
nothing to clean up. The file itself stays and records the last holder (pid, host, start time) so a
refused second writer can say who has the folder. Where the file system cannot lock (some network
mounts) or the OS has no flock (Windows), training goes on with a warning.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from . import layout
from ..errors import RunLockedError


class RunLock:
    def __init__(self, run_dir: str, warn=print):
        self.path = layout.lock_path(run_dir)
        self._warn = warn
        self._fd = None

    def _holder(self) -> str:
        try:
            with open(self.path) as f:
                h = json.load(f)
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["time"]))
            return f"pid {h['pid']} on {h['host']}, since {since}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def acquire(self) -> "RunLock":
        if fcntl is None:
            self._warn(f"warning: no file locks on this OS; make sure no other tools/train.py uses "
                       f"{os.path.dirname(self.path)}")
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLockedError(f"{os.path.dirname(self.path)} is in use by another tools/train.py "
                                     f"({self._holder()}); wait for it to finish or stop it first") from None
            self._warn(f"warning: cannot lock {self.path} ({e.strerror}); make sure no other tools/train.py "
                       f"uses this run folder")
            return self
        self._fd = fd
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}) + "\n"
        os.ftruncate(fd, 0)  # rewritten in place: replacing the file would leave the lock on an orphan inode
        os.pwrite(fd, record.encode(), 0)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
