"""Progress you can see: a live tqdm bar when stderr is a terminal; nothing extra when it is a pipe
or a file (a log, CI), where the plain status lines of the logger tell the story, one per interval.

PADDLE_GAN_PROGRESS=1 forces the bars on, =0 off. While a bar is on screen, say() prints above it
instead of through it.
"""
from __future__ import annotations

import os
import sys

_open = 0  # bars on screen now


def enabled() -> bool:
    forced = os.environ.get("PADDLE_GAN_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


class _Off:
    """The bar's interface, doing nothing (no terminal)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _On:
    def __init__(self, **kw):
        from tqdm import tqdm

        try:  # a terminal that reports no width (some emulators, a bare pty) would get an empty bar
            sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except OSError:
            sized = False
        self._bar = tqdm(dynamic_ncols=sized, ncols=None if sized else 100, file=sys.stderr, **kw)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix_str(self, s: str) -> None:
        self._bar.set_postfix_str(s, refresh=False)

    def __enter__(self):
        global _open
        _open += 1
        return self

    def __exit__(self, *exc):
        global _open
        _open -= 1
        self._bar.close()
        return False


def bar(total: int, desc: str, unit: str = "it", initial: int = 0, leave: bool = False):
    """A progress bar (a context manager with update(n) and set_postfix_str(s)); a no-op off a terminal."""
    if not enabled() or total <= 0:
        return _Off()
    return _On(total=total, desc=desc, unit=unit, initial=initial, leave=leave, mininterval=0.2)


def say(msg: str) -> None:
    """One line on stdout, escaped (errors.printable: names from files cannot start another line or
    drive the terminal); above the bars when any are on screen. A leading newline is kept: it ends a
    bar's line (signals.py)."""
    from .errors import printable

    msg = str(msg)
    msg = "\n" * (len(msg) - len(msg.lstrip("\n"))) + printable(msg.lstrip("\n"))
    if _open:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stdout)
        sys.stdout.flush()
    else:
        print(msg, file=sys.stdout, flush=True)
