"""What a failure means to the person at the terminal: the package's error kinds, and the one place
that turns them into an `error: ...` line on stderr and an exit code, for every tools/*.py.

Exit codes: 0 done; 2 bad input (a config key, a data file, a checkpoint, a run folder in use: the
message names it); 1 the work cannot go on (diverged, disk full, an unwritable output); 130 / 143
interrupted by SIGINT / SIGTERM.
"""
from __future__ import annotations

import sys


class ConfigError(ValueError):
    """A bad config file, key or value, or command line; the message is one line and names the key."""


class DataError(RuntimeError):
    """Missing, unreadable or unsuitable data; the message is one line and names the file or folder."""


class CheckpointError(RuntimeError):
    """A missing, incomplete or damaged checkpoint; the message is one line and names the file."""


class RunLockedError(RuntimeError):
    """Another process trains in this run folder; the message is one line naming it."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss, a full disk); the message names the step."""


BAD_INPUT = (ConfigError, DataError, CheckpointError, RunLockedError)  # exit 2
CANNOT_GO_ON = (TrainingError, OSError)  # exit 1 (OSError: an output that cannot be written)


ECHO = 60  # characters of a bad value that an error line repeats


def cut(text: str) -> str:
    """text, cut to ECHO characters: an error line names a bad value, never megabytes of it."""
    return text if len(text) <= ECHO else f"{text[:ECHO]}... ({len(text)} characters)"


def echo(value) -> str:
    """repr(value), cut to ECHO characters."""
    return cut(repr(value))


def one_of(value, choices) -> str:
    """The error text of a value that is not one of `choices`, built from the choice list itself."""
    return f"must be one of {', '.join(repr(c) if c == '' else str(c) for c in choices)}, got {echo(value)}"


def printable(text) -> str:
    """str(text) with every control character (newlines, terminal escapes, bidirectional overrides,
    line separators) written as a Python escape: a name taken from a file (a class name in a
    checkpoint's state.json, a folder name, a path) can never start a second line, forge an `error:`
    line or drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    # (isprintable: every character but the Unicode categories Other and Separator, ASCII space excepted)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def fail(message: str, code: int) -> int:
    """The one error line of a tool (escaped: one line, whatever names it quotes) and its exit code."""
    print(f"error: {printable(message)}", file=sys.stderr, flush=True)
    return code


def run_tool(body, interrupted: str = "interrupted") -> int:
    """body() -> exit code, with every expected failure turned into one error line and its code."""
    try:
        return body()
    except BAD_INPUT as e:
        return fail(str(e), 2)
    except CANNOT_GO_ON as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:  # a Ctrl-C outside the training loop's own handling
        return fail(interrupted, 130)
