"""Stopping on request: SIGINT or SIGTERM asks the training loop to stop after the current step
(it then saves and exits 130 / 143); a second SIGINT aborts at once."""
from __future__ import annotations

import signal

from .progress import say


class StopOnSignal:
    """SIGINT/SIGTERM ask the loop to stop after the current step; a second SIGINT aborts at once."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            # aborting: the process is on its way out, and a burst of further Ctrl-Cs must not raise
            # again in the middle of the clean-up (or in an atexit callback, as a traceback)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise KeyboardInterrupt
        if self.signum is not None:  # e.g. paddle.distributed.launch sends SIGTERM up to three times
            return
        self.signum = signum
        say(f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint "
            f"(Ctrl-C again aborts without saving)")

    def adopt(self, signum: int) -> None:
        """A parallel run stops on a signal that another rank received: treat it as this rank's own,
        so that this rank too keeps its handler to the end (see __exit__)."""
        self.signum = self.signum or signum

    def __enter__(self):
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def __exit__(self, *exc):
        if self.signum is not None:  # the process is on its way out. A repeated SIGTERM (paddle's launcher
            # sends it to the ranks still running once one has exited) must not reach Paddle's own handler,
            # which aborts, nor kill the process after the save; nor a Ctrl-C of a burst, which would
            # raise in Python's shutdown (an "Exception ignored in atexit callback" traceback): the
            # checkpoint is written by now. Python leaves an ignored signal ignored while it shuts down.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        for s, h in self._previous.items():
            signal.signal(s, h)
