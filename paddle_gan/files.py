"""Writing files so that a crash never leaves a half-written one: atomic writes (temporary file,
fsync, rename), durable renames, and whole output folders (write_folder) that never replace a
folder a command did not write itself."""
from __future__ import annotations

import os
import shutil
import tempfile


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


def sha256_of(path: str) -> str:
    """The SHA-256 of a file, read a MiB at a time."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def append_line(path: str, line: str) -> None:
    """Append one line to a log file under an exclusive lock, in one write, fsynced: concurrent
    writers (several tools/eval.py on one run) never lose or interleave a line, and nothing already
    there is rewritten."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no flock (Windows, some network mounts): O_APPEND alone
            pass
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the OS or the
    file system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    except (AttributeError, OSError):
        return False


def swap_folder(new: str, final: str, old: str) -> None:
    """Put the complete folder `new` at `final`, durably. An existing `final` is exchanged with `new` in
    one atomic step where the OS can, so a reader or a kill sees the earlier folder or the new one and
    never neither; elsewhere it is renamed to `old` first (a kill between the two renames leaves it
    there, whole). The earlier folder is deleted once the new one is in place."""
    if os.path.lexists(final):
        if _exchange(new, final):
            shutil.rmtree(new, ignore_errors=True)  # (now the earlier folder)
        else:
            os.rename(final, old)
            os.rename(new, final)
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, final)
    fsync_dir(os.path.dirname(os.path.abspath(final)))


_DIR_MODE = 0o777 & ~_umask()  # what os.makedirs would give; mkdtemp alone makes folders private (0700)


def write_folder(target: str, fill, previous, option: str = "--out") -> str:
    """Make the folder `target` whole or not at all: fill(tmp) writes its files into a fresh hidden
    folder beside it, which is then renamed into place. An existing `target` is replaced, whole, only
    if previous(target) finds it a previous output of the same command (its own manifest, and no
    other entry); otherwise ConfigError (one line naming `option`) and nothing is written or
    removed. Nothing outside `target` is ever deleted; a kill at any moment leaves either the old
    folder or the new one (and at most a hidden temporary beside it). Returns target, normalised.
    previous(path) -> None if it is ours to replace, else why not (e.g. "holds notes.txt")."""
    from .errors import ConfigError

    target = os.path.normpath(target)
    if os.path.islink(target):
        raise ConfigError(f"{option} {target}: a symbolic link; give the folder it points to, or a new folder")
    if os.path.lexists(target):
        if not os.path.isdir(target):
            raise ConfigError(f"{option} {target}: a file, not a folder; give a new folder")
        why = previous(target)
        if why:
            raise ConfigError(f"{option} {target}: exists and is not an earlier output of this command ({why}); "
                              f"nothing was written or removed: give a new folder")
    parent = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(os.path.abspath(target))}.", suffix=".tmp")
    except OSError as e:
        raise ConfigError(f"{option} {target}: cannot write there ({e.strerror or e})") from None
    try:
        fill(tmp)
        os.chmod(tmp, _DIR_MODE)
        fsync_dir(tmp)
        swap_folder(tmp, target, tmp[:-len(".tmp")] + ".old")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def only_entries(folder: str, allowed) -> str | None:
    """None if every entry of `folder` is a regular file whose name allowed(name) accepts, else why
    not (the first other entry): what a command checks before it replaces a folder it wrote."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.islink(path) or not os.path.isfile(path) or not allowed(name):
            from .errors import printable

            return f"holds {printable(name)}{'/' if os.path.isdir(path) else ''}, which it did not write"
    return None


def read_limited(path: str, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, its size checked before a byte is read
    (a FIFO or device would block; a sparse 10 GB file would fill memory); DataError otherwise."""
    import stat

    from .errors import DataError

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path}: not a regular file ({what})")
        if st.st_size > limit:
            raise DataError(f"{path}: {st.st_size} bytes, more than the {limit} that {what} can have")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file ({what})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > limit:  # it grew while being read
        raise DataError(f"{path}: more than the {limit} bytes that {what} can have")
    return data
