#!/usr/bin/env python
"""How long a resume takes to start, with and without a long history behind it:

    python benchmarks/bench_start.py                       # 200,000 metric rows and 4,000 grids
    python benchmarks/bench_start.py --rows 2000000 --grids 4000

Trains a 2-step quickstart run into a temporary folder, then gives it the history of a long run:
ROWS metric rows in metrics.jsonl, GRIDS sample grids in samples/, a checkpoint at the last step,
and VisualDL's records and position as a long run leaves them. Then it resumes the run for one
step (tools/train.py --resume, a fresh process) and prints one JSON line: seconds from the start to
the "resumed from" line and to the end of the process, for the long history and for the same run
with its short one, and the process's peak memory. The CPU is named in the line.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["model.g_channels=8", "model.d_channels=8", "train.batch_size=8", "train.log_every=1",
         "train.eval_every=0", "train.sample_every=2", "train.save_every=2"]


def _train(run: str, *extra: str) -> None:
    cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), "--output", run, "-o", *SMALL, *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)


def _grow(run: str, rows: int, grids: int) -> int:
    """Give `run` (a 2-step run) the history of a run at step rows + 2; returns that step."""
    far = rows + 2
    with open(os.path.join(run, "metrics.jsonl")) as f:
        last = json.loads(f.read().strip().splitlines()[-1])
    with open(os.path.join(run, "metrics.jsonl"), "a") as f:
        for start in range(3, far + 1, 10_000):
            f.write("".join(json.dumps(dict(last, step=s)) + "\n" for s in range(start, min(start + 10_000, far + 1))))
    grid = os.path.join(run, "samples", "step_0000002.png")
    for s in range(3, grids + 3):
        shutil.copyfile(grid, os.path.join(run, "samples", f"step_{s:07d}.png"))
    ckpt = os.path.join(run, "checkpoints", f"step_{far:07d}")
    os.rename(os.path.join(run, "checkpoints", "step_0000002"), ckpt)
    with open(os.path.join(ckpt, "state.json")) as f:
        meta = json.load(f)
    meta["step"] = far
    with open(os.path.join(ckpt, "state.json"), "w") as f:
        json.dump(meta, f)
    records = os.path.join(run, "vdl", "vdlrecords.paddle_gan.log")
    with open(os.path.join(run, "vdl", "position.json"), "w") as f:
        json.dump({"bytes": os.path.getsize(records), "step": far}, f)
    return far


def _time_resume(run: str, step: int) -> dict:
    """Seconds to the 'resumed from' line and to the end of a one-step resume; peak RSS in MB."""
    cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), "--output", run, "--resume",
           "-o", f"train.steps={step + 1}"]
    t0 = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=REPO)
    resumed = None
    for line in p.stdout:
        if resumed is None and line.startswith("resumed from"):
            resumed = time.perf_counter() - t0
    err = p.stderr.read()
    p.wait()
    if p.returncode != 0:
        raise SystemExit(f"error: the resume failed: {err.strip().splitlines()[-1:]}")
    return {"to_resumed_line_s": round(resumed, 2), "total_s": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(int(err.strip().splitlines()[-1]) / 1024)}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000, help="metric rows of the long history")
    ap.add_argument("--grids", type=int, default=4_000, help="sample grids of the long history")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        short, long = os.path.join(tmp, "short"), os.path.join(tmp, "long")
        _train(short, "train.steps=2")
        shutil.copytree(short, long)
        far = _grow(long, args.rows, args.grids)
        out = {"rows": args.rows, "grids": args.grids, "short_history": _time_resume(short, 2),
               "long_history": _time_resume(long, far), "cpu": _cpu()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
