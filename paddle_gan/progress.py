"""Progress you can see: a live tqdm bar when stderr is a terminal; in a pipe or a file (a log, CI),
a plain line at most every 5 s for work that takes longer (the training loop's own status lines tell
its story, one per interval, so its bar writes none).

PADDLE_GAN_PROGRESS=1 forces the bars on, =0 off. While a bar is on screen, say() prints above it
instead of through it.
"""
from __future__ import annotations

import os
import sys
import time

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


class _Lines(_Off):
    """Off a terminal: one plain line on stderr when `every` seconds have passed since the last (none
    for work that is done sooner), so a log never sits silent."""

    def __init__(self, total: int, desc: str, unit: str, every: float, initial: int = 0):
        self.total, self.desc, self.unit, self.every, self.n = total, desc, unit, every, initial
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(f"{self.desc}: {self.n}/{self.total} {self.unit} ({now - self.start:.0f} s)", file=sys.stderr,
                  flush=True)


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


def bar(total: int, desc: str, unit: str = "it", initial: int = 0, leave: bool = False, lines: float | None = 5.0):
    """A progress bar (a context manager with update(n) and set_postfix_str(s)); off a terminal, a line
    every `lines` seconds of work (None: nothing, where the caller prints its own)."""
    if total <= 0:
        return _Off()
    if not enabled():
        forced_off = os.environ.get("PADDLE_GAN_PROGRESS") == "0"
        return _Off() if lines is None or forced_off else _Lines(total, desc, unit, lines, initial)
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
