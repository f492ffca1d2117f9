#!/usr/bin/env python
"""tools/train.py with one fault injected at an exact point, for the fault-tolerance tests.

    FAULT=<point>:<step> python tests/fault_train.py <tools/train.py arguments>

Points (each hits the real write path of the package, then fails the way the real fault would):
  kill_in_checkpoint   SIGKILL after two of the four state files of checkpoint <step> are written
  kill_in_rotation     SIGKILL after an old checkpoint is hidden, before it is deleted (saving <step>)
  kill_in_sample       SIGKILL with half of samples/step_<step>.png written
  kill_in_metrics      SIGKILL with half of the metrics.jsonl row of <step> written (a torn line)
  enospc_checkpoint    OSError(ENOSPC) writing the third state file of checkpoint <step>
  enospc_metrics       OSError(ENOSPC) writing the metrics.jsonl row of <step>
  crash_rank1          rank 1 of a distributed run raises (an uncaught error) in step <step>
"""
import errno
import os
import runpy
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import shutil  # noqa: E402
import types  # noqa: E402

from paddle_gan import files  # noqa: E402
from paddle_gan.run import checkpoint, checkpoint_history, run_log  # noqa: E402

point, at = os.environ["FAULT"].split(":")
at = int(at)
tag = f"step_{at:07d}"


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def enospc(path):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


if point in ("kill_in_checkpoint", "enospc_checkpoint"):
    real_write, written = checkpoint._write_paddle, []

    def _write_paddle(obj, path):
        if f".{tag}.tmp-" in path:
            written.append(path)
            if point == "enospc_checkpoint" and len(written) == 3:
                enospc(path)
            if point == "kill_in_checkpoint" and len(written) == 3:
                die()
        real_write(obj, path)

    checkpoint._write_paddle = _write_paddle
elif point == "kill_in_rotation":
    def rmtree(path, *a, **k):
        if ".del-" in path and os.path.exists(os.path.join(os.path.dirname(path), tag)):
            die()
        shutil.rmtree(path, *a, **k)

    # rotation (checkpoint_history._remove) sees this shutil; every other module keeps the real one
    checkpoint_history.shutil = types.SimpleNamespace(rmtree=rmtree)
elif point == "kill_in_sample":
    def atomic_write_bytes(path, data):
        if path.endswith(tag + ".png"):
            files.atomic_write(path, lambda f: (f.write(data[:len(data) // 2]), f.flush(), die()))
        files.atomic_write(path, lambda f: f.write(data))

    run_log.atomic_write_bytes = atomic_write_bytes
elif point in ("kill_in_metrics", "enospc_metrics"):
    real_scalars = run_log.RunLogger.scalars

    def scalars(self, row):
        if row["step"] == at:
            if point == "enospc_metrics":
                enospc(self.metrics_path)
            line = run_log.json.dumps(row)
            self._metrics.write(line[:len(line) // 2])
            self._metrics.flush()
            die()
        real_scalars(self, row)

    run_log.RunLogger.scalars = scalars
elif point == "crash_rank1":
    from paddle_gan import train

    real_step, calls = train.train_step, []

    def train_step(*a, **k):
        calls.append(1)
        if os.environ.get("PADDLE_TRAINER_ID") == "1" and len(calls) == at:
            raise ValueError(f"injected crash of rank 1 in step {at}")
        return real_step(*a, **k)

    train.train_step = train_step
else:
    sys.exit(f"unknown FAULT point {point}")

sys.argv = [os.path.join(REPO, "tools", "train.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
