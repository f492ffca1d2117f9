"""Never lose a run: each promise of the README's "Fault tolerance" section, with the fault injected
into the real tools/train.py (kill -9 at chosen and at random moments, signals, damaged checkpoints,
divergence, incompatible resume, a second writer, bad input, a full disk)."""
import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    tool,
    CONFIGS,
    REPO,
    TINY,
    assert_same_state,
    quick,
    read_jsonl,
    run_train,
    train_cmd,
)

from paddle_gan.data import BUNDLED_DIR
from paddle_gan.errors import CheckpointError
from paddle_gan.run.checkpoint_history import list_checkpoints
from paddle_gan.run.run_log import read_metrics
from paddle_gan.run.state_json import read_state

FAULT_TRAIN = os.path.join(REPO, "tests", "fault_train.py")
CKPT_FILES = {"G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt", "fixed_noise.npy", "state.json"}
STATE_FILES = ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt")


def quick_args(run, *extra):
    return ["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY, *extra]


def with_fault(fault, *args):
    env = dict(os.environ, FAULT=fault)
    return subprocess.run([sys.executable, FAULT_TRAIN, *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)


def error_lines(stderr):
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def assert_only_whole_checkpoints(run):
    """Every visible step_XXXXXXX/ verifies (all files present, sizes and SHA-256 match)."""
    for _, path in list_checkpoints(str(run)):
        assert set(os.listdir(path)) == CKPT_FILES, path
        read_state(path)


def assert_same_run(a, b, step):
    """Two run folders hold the same checkpoint `step` bit for bit and the same metrics rows."""
    ca, cb = a / "checkpoints" / f"step_{step:07d}", b / "checkpoints" / f"step_{step:07d}"
    for name in STATE_FILES:
        assert_same_state(ca / name, cb / name)
    rows_a, rows_b = read_jsonl(a / "metrics.jsonl"), read_jsonl(b / "metrics.jsonl")
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a]
    for ra, rb in zip(rows_a, rows_b):
        assert {k: ra[k] for k in ("loss_D", "loss_G", "D_real", "D_fake")} == \
               {k: rb[k] for k in ("loss_D", "loss_G", "D_real", "D_fake")}, ra["step"]
    assert sorted(os.listdir(a / "samples")) == sorted(os.listdir(b / "samples"))
    last = f"step_{step:07d}.png"
    assert (a / "samples" / last).read_bytes() == (b / "samples" / last).read_bytes()


# ---- 1. kill -9 at any moment ---------------------------------------------------------------------

KILL_POINTS = ["kill_in_checkpoint:8", "kill_in_rotation:12", "kill_in_sample:16", "kill_in_metrics:18"]


def test_kill9_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL inside a checkpoint write, a rotation, a sample write, a metrics row, and at random
    moments; each time `--resume` continues from the newest whole checkpoint, and the end result
    equals a run that was never interrupted."""
    steps = ["train.steps=40", "train.keep_checkpoints=2"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_train(*quick_args(straight, *steps))
    kills = []
    for point in KILL_POINTS:  # exact points inside the write paths
        p = with_fault(point, *quick_args(killed, *steps), "--resume")
        assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
        kills.append(point)
        assert_only_whole_checkpoints(killed)
    rng = random.Random(4)
    for _ in range(4):  # random moments while steps run
        proc = subprocess.Popen(train_cmd(*quick_args(killed, *steps), "--resume"), cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines, delay = rng.randint(1, 4), rng.uniform(0.0, 0.1)
        while lines:  # let training run for a random number of status lines (2 steps each), then a bit more
            line = proc.stdout.readline()
            assert line, "training ended before the kill"
            lines -= "/40 (" in line
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL  # killed while training, not after it finished
        kills.append(f"random: {delay:.2f} s after the status line of step {line.split()[1]}")
        assert_only_whole_checkpoints(killed)
        newest = list_checkpoints(str(killed))[-1][0]
        logged = read_metrics(str(killed / "metrics.jsonl"))[-1]["step"]
        assert logged - newest <= 4  # at most train.save_every steps to redo
    run_train(*quick_args(killed, *steps), "--resume")
    assert len(kills) == 8
    assert_same_run(straight, killed, 40)
    # nothing half-written is left over anywhere
    leftovers = [os.path.join(d, f) for d, dirs, fs in os.walk(killed) for f in fs + dirs
                 if f.startswith(".") or ".del-" in f or ".old-" in f or f.endswith(".tmp")]
    assert leftovers == []


def test_leftovers_of_a_killed_save_are_tidied_and_a_swapped_out_checkpoint_is_put_back(tmp_path):
    from paddle_gan.run.checkpoint_history import clean_temporary

    run = tmp_path / "run"
    quick(run, "train.steps=8")
    ck = run / "checkpoints"
    os.rename(ck / "step_0000008", ck / "step_0000008.old-77")  # killed between the two renames of a re-save
    (ck / ".step_0000012.tmp-77").mkdir()
    (ck / ".step_0000004.del-77").mkdir()
    (ck / ".my_notes").write_text("mine")  # a user's hidden file: not the run's to delete
    (run / "samples" / ".step_0000012.png.abc123.tmp").write_bytes(b"half")
    (run / ".metrics.jsonl.xyz.tmp").write_text("{")
    (run / "vdl" / ".position.json.vqgf6lmd.tmp").write_text("{")  # killed while noting VisualDL's position
    (run / "vdl" / ".someone_elses.tmp").write_text("x")  # not a name the run writes: left alone
    clean_temporary(str(run))
    assert sorted(os.listdir(ck)) == [".my_notes", "step_0000004", "step_0000008"]
    read_state(str(ck / "step_0000008"))
    assert not [f for f in os.listdir(run / "samples") if f.startswith(".")]
    assert not [f for f in os.listdir(run) if f.startswith(".")]
    assert [f for f in os.listdir(run / "vdl") if f.startswith(".")] == [".someone_elses.tmp"]


# ---- 3. corrupt or truncated checkpoints ------------------------------------------------------------

def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped byte": ("G.pdparams", _flip, "content does not match its SHA-256 in state.json (corrupt)"),
    "zero-length file": ("D.pdparams", lambda p: p.write_bytes(b""), "size 0 bytes, expected"),
    "truncated file": ("G.pdopt", lambda p: p.write_bytes(p.read_bytes()[:100]), "size 100 bytes, expected"),
    "missing .pdopt": ("D.pdopt", lambda p: p.unlink(), "missing"),
    "garbled state.json": ("state.json", lambda p: p.write_text('{"format": "paddle_gan.chec'), "unreadable"),
    "missing state.json": ("state.json", lambda p: p.unlink(), "missing (incomplete checkpoint)"),
}


@pytest.fixture(scope="module")
def eight_step_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    quick(run, "train.steps=8")
    return run


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoint_named_is_refused_latest_is_skipped(tmp_path, eight_step_run, kind, capsys):
    name, damage, message = DAMAGE[kind]
    run = tmp_path / "run"
    shutil.copytree(eight_step_run, run)
    bad = run / "checkpoints" / "step_0000008"
    damage(bad / name)
    # named explicitly: one line naming the file, nothing trained or written
    with pytest.raises(CheckpointError) as e:
        read_state(str(bad))
    assert str(bad / name) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)
    assert tool("train", "--resume", str(bad)) == 2
    assert error_lines(capsys.readouterr().err) == [f"error: {e.value}"]
    # --resume alone: skips it, saying so, and continues from step 4
    p = run_train(*quick_args(run, "train.steps=10"), "--resume")
    assert f"skipping checkpoint {bad}" in p.stdout and "resumed from" in p.stdout and "step_0000004" in p.stdout
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")] == [2, 4, 6, 8, 10]
    assert_only_whole_checkpoints(run)


# ---- 4. divergence -----------------------------------------------------------------------------------

def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    quick(run, "train.steps=4")
    good = run / "checkpoints" / "step_0000004"
    before = {f: (good / f).read_bytes() for f in CKPT_FILES}
    # a learning rate that may change on resume, and blows the weights up at once
    p = quick(run, "train.steps=50", "opt_G.lr=1e30", "opt_D.lr=1e30", "train.save_every=1", "--resume", check=False)
    assert p.returncode == 1
    err = error_lines(p.stderr)
    assert len(err) == 1 and err[0].startswith("error: training diverged at step 5: ")
    assert err[0].endswith(f"; last good checkpoint: {good}")
    assert [s for s, _ in list_checkpoints(str(run))] == [4]  # nothing with NaN was written
    assert read_state(str(good))["step"] == 4 and {f: (good / f).read_bytes() for f in CKPT_FILES} == before


# ---- 6. one writer per run folder ----------------------------------------------------------------------

def test_run_lock_is_exclusive_and_released(tmp_path):
    from paddle_gan.run.lock import RunLock, RunLockedError

    with RunLock(str(tmp_path)):
        with pytest.raises(RunLockedError, match=rf"in use by another tools/train.py \(pid {os.getpid()} on "):
            RunLock(str(tmp_path)).acquire()
    RunLock(str(tmp_path)).acquire().release()  # free again once released


def test_second_writer_is_refused_and_a_killed_writers_lock_is_stale(tmp_path):
    run = tmp_path / "run"
    args = quick_args(run, "train.steps=100000", "train.save_every=8")
    first = subprocess.Popen(train_cmd(*args), cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        while not list_checkpoints(str(run)):  # under way, with a checkpoint to resume from later
            assert first.poll() is None, first.stdout.read()
            time.sleep(0.2)
        for extra in ([], ["--resume"]):  # a fresh start and a resume are both refused
            p = run_train(*args, *extra, check=False)
            errors = error_lines(p.stderr)
            assert p.returncode == 2 and len(errors) == 1, p.stdout + p.stderr
            assert f"is in use by another tools/train.py (pid {first.pid} on " in errors[0]
        assert first.poll() is None  # the first writer did not notice
    finally:
        first.kill()  # kill -9: the kernel drops its lock; the lock file stays behind
        first.communicate(timeout=60)
    assert (run / "train.lock").exists()
    newest = list_checkpoints(str(run))[-1][0]
    p = run_train(*quick_args(run, f"train.steps={newest + 2}"), "--resume")
    assert f"step_{newest:07d}" in p.stdout and list_checkpoints(str(run))[-1][0] == newest + 2


# ---- 7. bad input data and bad config values: one line, exit 2, nothing written -----------------------

def _idx_folder(root, images: bytes):
    root.mkdir()
    (root / "t10k-images-idx3-ubyte").write_bytes(images)
    with gzip.open(os.path.join(BUNDLED_DIR, "t10k-labels-idx1-ubyte.gz")) as f:
        (root / "t10k-labels-idx1-ubyte").write_bytes(f.read())


def _bundled_images() -> bytes:
    with gzip.open(os.path.join(BUNDLED_DIR, "t10k-images-idx3-ubyte.gz")) as f:
        return f.read()


def _bad_input(kind, tmp):
    """(extra -o overrides, text the one error line must contain) for a kind of bad input."""
    root = tmp / "data"
    if kind == "missing files":
        root.mkdir()
        return ["data.name=mnist", f"data.root={root}", "data.download=false"], "t10k-images-idx3-ubyte.gz not found in"
    if kind == "wrong IDX magic":
        _idx_folder(root, b"\x08\x03\x00\x00" + _bundled_images()[4:])
        return [f"data.root={root}"], "bad magic number"
    if kind == "truncated IDX":
        _idx_folder(root, _bundled_images()[:50_000])
        return [f"data.root={root}"], "truncated or oversized IDX file"
    if kind == "data.root is a file":
        root.write_text("x")
        return [f"data.root={root}"], f"data.root '{root}' is a file"
    if kind == "no image decodes":
        root.mkdir()
        (root / "a.jpg").write_bytes(b"not a jpeg")
        return ["data.name=image_folder", f"data.root={root}"], "none of the 1 image files decode"
    if kind == "empty folder":
        root.mkdir()
        return ["data.name=image_folder", f"data.root={root}"], "holds no"
    if kind == "greyscale data, RGB model":
        return ["model.channels=3"], "set model.channels=1"
    if kind == "fewer images than a batch":
        return ["data.limit=8", "train.batch_size=16"], "fewer than train.batch_size"
    if kind == "negative batch size":
        return ["train.batch_size=-4"], "train.batch_size"
    if kind == "unknown model name":
        return ["model.name=stylegan9"], "model.name"
    if kind == "non-numeric lr":
        return ["opt_G.lr=fast"], "opt_G.lr"
    raise KeyError(kind)


BAD_INPUTS = ["missing files", "wrong IDX magic", "truncated IDX", "data.root is a file", "no image decodes",
              "empty folder", "greyscale data, RGB model", "fewer images than a batch", "negative batch size",
              "unknown model name", "non-numeric lr"]


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, kind):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no MNIST in a Paddle cache
    extra, expected = _bad_input(kind, tmp_path)
    out = tmp_path / "run"
    code = tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out),
                      "-o", *TINY, "data.split=test", *extra)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(error_lines(err)) == 1 and expected in error_lines(err)[0], err
    assert not out.exists()


@pytest.mark.parametrize("argv, expected", [
    (["-c", "configs/nowhere.yaml"], "configs/nowhere.yaml"),
    (["--resume", "work/no/checkpoints/step_0000001"], "no such checkpoint folder"),
    (["--output", "/dev/null"], "--output /dev/null is a file, not a run folder"),
])
def test_bad_command_line_is_one_line(tmp_path, capsys, argv, expected):
    code = tool("train", *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err)) == 1 and expected in err and "Traceback" not in err


# ---- 8. disk full while saving ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def twelve_step_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("straight") / "run"
    quick(run, "train.steps=12")
    return run


@pytest.mark.parametrize("fault, what", [("enospc_checkpoint:8", "saving the step-8 checkpoint failed"),
                                         ("enospc_metrics:6", "writing the run folder at step 6 failed")])
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, twelve_step_run, fault, what):
    run = tmp_path / "run"
    quick(run, "train.steps=4")
    good = run / "checkpoints" / "step_0000004"
    before = {f: (good / f).read_bytes() for f in CKPT_FILES}
    p = with_fault(fault, *quick_args(run, "train.steps=12"), "--resume")
    assert p.returncode == 1, p.stdout + p.stderr
    errors = error_lines(p.stderr)
    assert len(errors) == 1 and what in errors[0]
    err = errors[0]
    assert "No space left on device" in err and err.endswith(f"last complete checkpoint: {good} (free space, then --resume)")
    assert "Traceback" not in p.stderr
    assert [s for s, _ in list_checkpoints(str(run))] == [4]  # no partial step-8 folder, step 4 untouched
    assert os.listdir(run / "checkpoints") == ["step_0000004"]
    assert {f: (good / f).read_bytes() for f in CKPT_FILES} == before
    run_train(*quick_args(run, "train.steps=12"), "--resume")  # space is back: the run finishes as if never hit
    assert_same_run(twelve_step_run, run, 12)
