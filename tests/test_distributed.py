"""Data-parallel training: the real tools/train.py under `python -m paddle.distributed.launch`
with 2 CPU processes (gloo), on the bundled Fashion-MNIST images."""
import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    CONFIGS,
    REPO,
    TINY,
    assert_same_state,
    load_state,
    read_jsonl,
    run_train,
)

from paddle_gan.data import BUNDLED_DIR
from paddle_gan.run.checkpoint import load_checkpoint
from paddle_gan.run.state_json import read_state

QUICK = ["-c", os.path.join(CONFIGS, "quickstart.yaml")]


def launch_cmd(tmp_path, *args, script="tools/train.py", name="launch"):
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
            "--log_dir", str(tmp_path / f"{name}_logs"), os.path.join(REPO, script), *args]


def launch(tmp_path, *args, env=None, name="launch", script="tools/train.py", check=True):
    p = subprocess.run(launch_cmd(tmp_path, *args, script=script, name=name), capture_output=True, text=True,
                       cwd=REPO, env=dict(os.environ, **(env or {})), timeout=300)
    logs = {r: (tmp_path / f"{name}_logs" / f"workerlog.{r}").read_text() for r in (0, 1)}
    if check and p.returncode != 0:
        raise AssertionError(f"launch exited {p.returncode}\n{p.stdout[-3000:]}\n{logs[0][-3000:]}\n{logs[1][-3000:]}")
    return p, logs


def steps_of(run):
    return [r["step"] for r in read_jsonl(run / "metrics.jsonl") if "loss_D" in r]


def checkpoints(run):
    return sorted(os.path.basename(p) for p in glob.glob(str(run / "checkpoints" / "step_*")))


def test_two_processes_one_writer_then_resume_across_world_sizes(tmp_path):
    run = tmp_path / "run"
    _, logs = launch(tmp_path, *QUICK, "--output", str(run), "-o", *TINY, "train.steps=8")
    # one run folder, written by rank 0 only
    assert "2 processes x train.batch_size=16" in logs[0]
    assert "step 8/8" in logs[0] and "step " not in logs[1] and "run folder" not in logs[1]
    assert sorted(os.listdir(run)) == ["checkpoints", "config.yaml", "curves.png", "metrics.jsonl", "samples",
                                       "train.lock", "vdl"]
    assert steps_of(run) == [2, 4, 6, 8]
    assert checkpoints(run) == ["step_0000004", "step_0000008"]
    for c in checkpoints(run):  # complete, hash-checked, and in the single-process format
        ckpt = str(run / "checkpoints" / c)
        state = load_checkpoint(ckpt, read_state(ckpt))
        assert not any(k.startswith("_layers") for k in state["G"])
    assert read_state(str(run / "checkpoints" / "step_0000008"))["data"] == {"epoch": 0, "offset": 8 * 2 * 16}

    # the 2-process checkpoint continues in 1 process; batch 32 keeps the global batch of 2 x 16
    p = run_train("--output", str(run), "-o", "train.steps=12", "train.batch_size=32", "--resume")
    assert "resume with changed settings" in p.stdout and "train.batch_size: 16 -> 32" in p.stdout
    assert steps_of(run) == [2, 4, 6, 8, 10, 12]
    assert read_state(str(run / "checkpoints" / "step_0000012"))["data"] == {"epoch": 0, "offset": 12 * 32}

    # ... and back to 2 processes: a distributed resume
    _, logs = launch(tmp_path, "--output", str(run), "-o", "train.steps=14", "train.batch_size=16", "--resume",
                     name="resume")
    assert "resumed from" in logs[0] and "step_0000012" in logs[0]
    assert steps_of(run) == [2, 4, 6, 8, 10, 12, 14]
    assert read_state(str(run / "checkpoints" / "step_0000014"))["data"] == {"epoch": 0, "offset": 14 * 32}


def _mlp_args(run, batch):
    return ["-c", os.path.join(CONFIGS, "gan_mlp_mnist.yaml"), "--output", str(run), "-o",
            "data.name=fashion_mnist", "data.split=test", "data.root=" + BUNDLED_DIR, "data.limit=256",
            "model.g_hidden=[128]", "model.d_hidden=[64]",  # one hidden G layer: no BatchNorm anywhere
            "train.steps=2", "train.log_every=1", "train.sample_every=0", "train.save_every=1",
            "train.keep_checkpoints=0", f"train.batch_size={batch}"]


def test_two_processes_of_batch_b_equal_one_process_of_batch_2b(tmp_path):
    """MLP GAN without BatchNorm: same samples and noise, gradients averaged over ranks, so the same
    weights and Adam moments (up to float summation order) after each of two steps."""
    launch(tmp_path, *_mlp_args(tmp_path / "two", 8))
    run_train(*_mlp_args(tmp_path / "one", 16))
    for step in (1, 2):
        for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
            a = load_state(tmp_path / "one" / "checkpoints" / f"step_{step:07d}" / f)
            b = load_state(tmp_path / "two" / "checkpoints" / f"step_{step:07d}" / f)
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], np.ndarray) and a[k].dtype.kind == "f":
                    # Adam's first step moves each weight by ~lr = 2e-4, so 1e-5 would show any real difference
                    np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5 if "pdparams" in f else 1e-8,
                                               err_msg=f"step {step} {f} {k}")
    one, two = read_jsonl(tmp_path / "one" / "metrics.jsonl"), read_jsonl(tmp_path / "two" / "metrics.jsonl")
    for r1, r2 in zip(one, two):  # logged losses are means over ranks = the 2B-batch losses
        for k in ("loss_D", "loss_G", "D_real", "D_fake"):
            assert r1[k] == pytest.approx(r2[k], rel=1e-5), (r1["step"], k)


def _wait_for(path, text, proc, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and text in open(path).read():
            return
        if proc.poll() is not None:
            raise AssertionError(f"launcher exited {proc.returncode} before '{text}'")
        time.sleep(0.2)
    raise AssertionError(f"no '{text}' in {path}")


def _rank_pid(rank, run):
    """pid of the tools/train.py process of `rank` training into `run`."""
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if str(run).encode() in cmd and f"PADDLE_TRAINER_ID={rank}".encode() in env:
            return int(pid)
    raise AssertionError(f"no rank {rank} process for {run}")


def _start_and_stop(tmp_path, run, args, target):
    """Start a 2-process run of 400 steps; once it is past step 6, SIGTERM the launcher or rank 1."""
    proc = subprocess.Popen(launch_cmd(tmp_path, *args, "train.steps=400", "--output", str(run), name=target),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path / f"{target}_logs" / "workerlog.0", "step 6/400", proc)
    os.kill(proc.pid if target == "launcher" else _rank_pid(1, run), signal.SIGTERM)
    code = proc.wait(timeout=60)
    log0 = (tmp_path / f"{target}_logs" / "workerlog.0").read_text()
    assert "stopped at step" in log0 and "Traceback" not in log0
    (stop_at,) = [int(c[5:]) for c in checkpoints(run)]  # both ranks stopped after the same step, saved once
    assert stop_at >= 6 and steps_of(run)[-1] == stop_at
    assert (run / "curves.png").exists()
    return code, stop_at


ARGS = [*QUICK, "-o", *TINY, "train.save_every=100", "train.sample_every=100"]


def test_sigterm_to_the_launcher_stops_every_rank_after_a_save(tmp_path):
    code, _ = _start_and_stop(tmp_path, tmp_path / "run", ARGS, "launcher")
    assert code == signal.SIGTERM  # the launcher exits with the signal's number


def test_sigterm_to_one_rank_stops_all_and_the_resume_is_exact(tmp_path):
    stopped = tmp_path / "stopped"
    code, stop_at = _start_and_stop(tmp_path, stopped, ARGS, "rank1")
    assert code == 128 + signal.SIGTERM  # every rank stopped as asked; none was killed

    launch(tmp_path, "--output", str(stopped), "-o", f"train.steps={stop_at + 4}", "--resume", name="resume")
    straight = tmp_path / "straight"
    launch(tmp_path, *ARGS, f"train.steps={stop_at + 4}", "--output", str(straight), name="straight")
    last = f"step_{stop_at + 4:07d}"
    for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(stopped / "checkpoints" / last / f, straight / "checkpoints" / last / f)


def test_a_late_sigterm_after_the_save_does_not_kill_the_exiting_process():
    """The launcher SIGTERMs the ranks still running once one has exited. One that arrives while a
    stopped rank shuts down, when Python has put the default (fatal) handlers back, must not turn exit
    143 into a kill: after a stop, SIGTERM is ignored by the OS itself (SigIgn), which shutdown keeps."""
    code = ("import os, signal, sys\n"
            "from paddle_gan.signals import StopOnSignal\n"
            "with StopOnSignal() as stop:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"  # a repeat after the loop and the save
            "ignored = [int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('SigIgn:')][0]\n"
            "print(bool(ignored >> (signal.SIGTERM - 1) & 1))\n"
            "sys.exit(128 + stop.signum)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, p.stderr
    assert p.stdout.split()[-1] == "True"  # (after the "SIGTERM: finishing this step" line)


def test_a_crashed_rank_stops_the_run_without_hanging(tmp_path):
    run = tmp_path / "run"
    t0 = time.time()
    p, logs = launch(tmp_path, *QUICK, "--output", str(run), "-o", *TINY, "train.steps=12",
                     env={"FAULT": "crash_rank1:6"}, script="tests/fault_train.py", check=False)
    assert p.returncode != 0 and time.time() - t0 < 120
    assert "injected crash of rank 1 in step 6" in logs[1]
    assert checkpoints(run) == ["step_0000004"]  # the last complete checkpoint, intact
    read_state(str(run / "checkpoints" / "step_0000004"))  # verifies every file's hash
    assert not [n for n in os.listdir(run / "checkpoints") if n.startswith(".")]
    run_train("--output", str(run), "-o", "train.steps=8", "--resume")  # (a 2-process resume: the tests above)
    assert steps_of(run) == [2, 4, 6, 8]


def test_sync_batchnorm_only_on_gpu_and_keys_unchanged(monkeypatch):
    from paddle_gan import distributed
    from paddle_gan.config import load_config
    from paddle_gan.gan.models import build_models

    G, _ = build_models(load_config(os.path.join(CONFIGS, "quickstart.yaml")).model)
    keys = list(G.state_dict())
    assert distributed.sync_batchnorm(G, distributed.World(0, 2)) is G  # CPU: per-replica BatchNorm
    monkeypatch.setattr(distributed, "on_gpu", lambda: True)
    S = distributed.sync_batchnorm(G, distributed.World(0, 2))
    assert "SyncBatchNorm" in {type(m).__name__ for m in S.sublayers()}
    assert list(S.state_dict()) == keys  # checkpoints stay interchangeable
    assert distributed.sync_batchnorm(G, distributed.SINGLE) is G


def test_batch_stream_shards_are_disjoint_and_cover_the_global_batch():
    from paddle_gan.data import BatchStream

    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
    one = BatchStream(images, 8, seed=3)
    ranks = [BatchStream(images, 4, seed=3, rank=r, world=2) for r in (0, 1)]
    for _ in range(12):  # across epoch ends (5 global batches of 8 per 40 images)
        whole = one.next().ravel()
        parts = [s.next().ravel() for s in ranks]
        assert not set(parts[0]) & set(parts[1])
        assert sorted(np.concatenate(parts)) == sorted(whole)
        assert ranks[0].state_dict() == ranks[1].state_dict() == one.state_dict()


def test_math_threads_are_shared_out_among_local_processes(monkeypatch):
    from paddle_gan import runtime

    monkeypatch.setattr(runtime, "usable_cores", lambda: 8)
    monkeypatch.delenv("PADDLE_LOCAL_SIZE", raising=False)
    assert runtime.threads_per_process() == 8
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "2")
    assert runtime.threads_per_process() == 4
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "16")
    assert runtime.threads_per_process() == 1
