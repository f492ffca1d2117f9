"""Trust nothing read from disk: hostile pickles in checkpoints and CIFAR batches run nothing,
state.json is checked not believed, resuming from an older checkpoint branches the run cleanly,
hostile data folders, and bad inputs that used to end in tracebacks."""
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import tarfile
import zlib

import cv2
import numpy as np
import pytest
from conftest import CONFIGS, REPO, TINY, read_jsonl, tool, train, train_cmd

from paddle_gan import safepickle
from paddle_gan.errors import CheckpointError
from paddle_gan.run.checkpoint_history import list_checkpoints


def errors(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    train(run, "train.steps=8", "train.keep_checkpoints=0", check=True)
    return run


@pytest.fixture
def run(base_run, tmp_path):
    shutil.copytree(base_run, tmp_path / "run")
    return tmp_path / "run"


def _restate(ckpt, **changes):
    """Edit a checkpoint's state.json the way an attacker or a careless hand would."""
    path = ckpt / "state.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _rehash(ckpt, name):
    data = (ckpt / name).read_bytes()
    meta = json.loads((ckpt / "state.json").read_text())
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "state.json").write_text(json.dumps(meta))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ---- 1. a checkpoint runs nothing ------------------------------------------------------------------

def test_a_pickle_that_would_run_code_is_refused_everywhere(run, tmp_path, capsys):
    ckpt = run / "checkpoints" / "step_0000008"
    marker = tmp_path / "pwned"
    (ckpt / "G.pdparams").write_bytes(pickle.dumps({"net.0.weight": _Payload(marker)}))
    _rehash(ckpt, "G.pdparams")  # whoever hands over the file hands over the hashes too
    for argv in (("generate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "g")),
                 ("eval", "--checkpoint", str(ckpt), "--num", "10"),
                 ("export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x")),
                 ("train", "--resume", str(ckpt))):
        assert tool(*argv) == 2, argv
        err = errors(capsys)
        assert len(err) == 1 and err[0].startswith(f"error: {ckpt / 'G.pdparams'}: refused to load: it asks for "
                                                   f"posix.system"), err
    assert not marker.exists()
    # and --resume alone skips it like any damaged checkpoint, continuing from step 4
    assert train(run, "train.steps=8", "train.keep_checkpoints=0", "--resume") == 0
    assert "skipping checkpoint" in capsys.readouterr().out and not marker.exists()


def test_real_checkpoints_and_a_real_format_cifar_batch_load(run, tmp_path):
    from paddle_gan.data import load_cifar10

    sd = safepickle.load_state_dict((run / "checkpoints" / "step_0000008" / "G.pdopt").read_bytes())
    assert sum(isinstance(v, np.ndarray) for v in sd.values()) > 10  # Adam moments, beta powers, and a name map
    assert all(isinstance(v, (np.ndarray, dict)) for v in sd.values())
    # CIFAR-10's python batches are protocol-2 pickles naming numpy.core.multiarray (NumPy 1)
    rng = np.random.default_rng(0)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [int(i) for i in rng.integers(0, 10, 4)],
             b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"filenames": [b"a.png"] * 4}
    real_format = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    hostile = pickle.dumps({b"data": _Payload(tmp_path / "pwned"), b"labels": [0]}, protocol=2)
    for name, payload in (("good", real_format), ("bad", hostile)):
        (tmp_path / name).mkdir()
        with tarfile.open(tmp_path / name / "cifar-10-python.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    ds = load_cifar10(str(tmp_path / "good"), "test", 32, 3, download=False)
    assert ds.images.shape == (4, 3, 32, 32) and list(ds.labels) == batch[b"labels"]
    with pytest.raises(Exception, match="refused to load test_batch: it asks for posix.system"):
        load_cifar10(str(tmp_path / "bad"), "test", 32, 3, download=False)
    assert not (tmp_path / "pwned").exists()


def test_restricted_unpickler_refuses_object_arrays_and_non_dicts():
    with pytest.raises(safepickle.RefusedPickle, match="array of Python objects"):
        safepickle.load_state_dict(pickle.dumps({"w": np.array([1, "x"], dtype=object)}))
    with pytest.raises(safepickle.RefusedPickle, match="not a state dict"):
        safepickle.load_state_dict(pickle.dumps([1, 2]))


# ---- 2. state.json is checked, not believed ----------------------------------------------------------

def _files_of(ckpt):
    return json.loads((ckpt / "state.json").read_text())["files"]


STATES = {
    "a step not the folder's": (lambda c: _restate(c, step=15), "says step 15, but the folder is step_0000008"),
    "step 999": (lambda c: _restate(c, step=999), "says step 999, but the folder is step_0000008"),
    "no files listed": (lambda c: _restate(c, files={}), "does not list G.pdparams"),
    "a path outside": (lambda c: _restate(c, files={**_files_of(c), "../../x": _files_of(c)["G.pdparams"]}),
                       "lists '../../x', which is not a file of a checkpoint"),
    "an absolute path": (lambda c: _restate(c, files={**_files_of(c), "/etc/passwd": _files_of(c)["G.pdparams"]}),
                         "lists '/etc/passwd'"),
    "files as a list": (lambda c: _restate(c, files=["G.pdparams"]), "files must be a mapping"),
    "no config": (lambda c: _restate(c, config=None), "config missing or not a mapping"),
    "step as a string": (lambda c: _restate(c, step="8"), "step must be a whole number >= 0, got '8'"),
    "a bad hash field": (lambda c: _restate(c, files={**_files_of(c), "G.pdparams": {"bytes": "1", "sha256": "x"}}),
                         "files['G.pdparams'] must hold bytes"),
}


@pytest.mark.parametrize("kind", list(STATES))
def test_a_lying_state_json_is_a_damaged_checkpoint(run, capsys, kind):
    damage, message = STATES[kind]
    ckpt = run / "checkpoints" / "step_0000008"
    damage(ckpt)
    assert tool("train", "--resume", str(ckpt)) == 2
    err = errors(capsys)
    assert len(err) == 1 and message in err[0] and str(ckpt / "state.json") in err[0], err
    with pytest.raises(CheckpointError):
        from paddle_gan.run.state_json import read_state

        read_state(str(ckpt), verify=False)
    assert train(run, "train.steps=10", "train.keep_checkpoints=0", "--resume") == 0
    out = capsys.readouterr().out
    assert f"skipping checkpoint {ckpt}" in out and "step_0000004 at step 4" in out


# ---- 3. resuming from an older checkpoint branches the run -----------------------------------------

def test_resuming_an_older_checkpoint_moves_the_later_history_aside(run, capsys):
    train(run, "train.steps=12", "train.keep_checkpoints=2", "--resume", check=True)
    steps_before = [s for s, _ in list_checkpoints(str(run))]
    assert steps_before == [8, 12]  # rotation kept the newest two
    start = 8
    branch = run / "checkpoints" / "step_0000008"
    rows_before = read_jsonl(run / "metrics.jsonl")
    capsys.readouterr()
    assert train(run, f"train.steps={start + 2}", "train.keep_checkpoints=2", "--resume", str(branch)) == 0
    out = capsys.readouterr().out
    assert f"branching at step {start}" in out and "kept, never deleted" in out
    abandoned = [d for d in os.listdir(run / "checkpoints") if d.startswith("abandoned-")]
    assert len(abandoned) == 1
    aside = run / "checkpoints" / abandoned[0]
    assert sorted(d for d in os.listdir(aside) if d.startswith("step_")) == [
        f"step_{s:07d}" for s in steps_before if s > start]
    assert [r["step"] for r in read_jsonl(aside / "metrics.jsonl")] == [r["step"] for r in rows_before if r["step"] > start]
    assert sorted(os.listdir(aside / "samples")) == [f"step_{s:07d}.png" for s in range(start + 4, 13, 4)]
    # the run folder holds one history: the branch point and what was trained after it
    assert [s for s, _ in list_checkpoints(str(run))] == [start, start + 2]
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")] == list(range(2, start + 3, 2))
    # a plain --resume continues the branch that was trained last
    assert train(run, f"train.steps={start + 4}", "train.keep_checkpoints=2", "--resume") == 0
    assert f"step_{start + 2:07d} at step {start + 2}" in capsys.readouterr().out
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")][-1] == start + 4


def test_resuming_from_best_branches_at_best(tmp_path, capsys):
    run = tmp_path / "run"
    train(run, "train.steps=12", "train.keep_checkpoints=0", "train.eval_every=4", "train.eval_samples=50", check=True)
    from paddle_gan.run.state_json import read_state

    best = read_state(str(run / "checkpoints" / "best"))["step"]
    capsys.readouterr()
    assert train(run, "train.steps=14", "train.keep_checkpoints=0", "--resume", str(run / "checkpoints" / "best")) == 0
    later = [s for s in (4, 8, 12) if s > best]
    assert ("branching at step" in capsys.readouterr().out) == bool(later)
    # the later history moved aside whole; the branch trained those steps again (save_every 4) and on to 14
    assert [s for s, _ in list_checkpoints(str(run))] == [4, 8, 12, 14]
    moved = sorted(p.name for p in (run / "checkpoints").glob("abandoned-*/step_*"))
    assert moved == [f"step_{s:07d}" for s in later]


# ---- 4. data folders ----------------------------------------------------------------------------------

def _png_header(width, height):
    """A PNG whose header claims width x height pixels (the pixel data is not there)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_a_hostile_image_folder_is_walked_safely(tmp_path, capfd):
    from paddle_gan.data import load_image_folder

    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(16):
        cv2.imwrite(str(root / ("sub" if i % 2 else ".") / f"{i}.png"), rng.integers(0, 255, (20, 20), dtype=np.uint8))
    os.symlink(".", root / "self")  # a directory loop: each real folder is read once
    os.symlink(root / "sub", root / "again")  # a second way into a folder already read
    os.mkfifo(root / "pipe.png")  # reading it would block forever
    os.symlink(root / "nowhere.png", root / "gone.png")  # dangling
    os.symlink(root / "b.png", root / "a.png")  # a loop of file links
    os.symlink(root / "a.png", root / "b.png")
    (root / "huge.png").write_bytes(_png_header(30000, 30000))  # 900 megapixels: never decoded
    ds = load_image_folder(str(root), 16, 1, cache=False)
    assert len(ds.images) == 16
    log = capfd.readouterr().err
    assert "skipped 5 of 21 entries: 4 are not regular files (FIFOs, devices, broken links); " \
           "1 have more than data.max_pixels=64000000 pixels" in log
    from paddle_gan.errors import DataError

    with pytest.raises(DataError, match=r"none of the 17 image files decode within the limits \(4 not a regular file, 17 too big\)"):
        load_image_folder(str(root), 16, 1, cache=False, max_pixels=300)  # 20 x 20 = 400: too many now


# ---- 5. bad inputs: one line, exit 2, nothing left behind -------------------------------------------

@pytest.mark.parametrize("kind", ["binary config", "config is a folder", "empty config", "output is a file",
                                  "negative seed"])
def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path, capsys, kind):
    out, cfg = tmp_path / "run", os.path.join(CONFIGS, "quickstart.yaml")
    expected = {"binary config": "not a text file", "config is a folder": "is a folder; give a config file",
                "empty config": "empty; a config holds at least one of the sections",
                "output is a file": "is a file, not a run folder", "negative seed": "train.seed: must be >= 0"}[kind]
    extra = []
    if kind == "binary config":
        cfg = tmp_path / "c.yaml"
        cfg.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    elif kind == "config is a folder":
        cfg = tmp_path
    elif kind == "empty config":
        cfg = tmp_path / "empty.yaml"
        cfg.write_text("# nothing here\n")
    elif kind == "output is a file":
        out.write_text("I am a file")
    else:
        extra = ["train.seed=-1"]
    assert tool("train", "-c", str(cfg), "--output", str(out), "-o", *TINY, *extra) == 2
    err = errors(capsys)
    assert len(err) == 1 and expected in err[0], err
    assert not out.exists() or out.is_file()


def test_a_model_too_big_for_memory_is_one_line_and_leaves_no_run_folder(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    out = tmp_path / "run"
    p = subprocess.run(train_cmd("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out), "-o", *TINY,
                                 "model.g_channels=8192", "train.conv=paddle"),  # the bound; still 34 GB of weights
                       capture_output=True, text=True, cwd=REPO, preexec_fn=limit, timeout=300)
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2 and len(err) == 1 and "more than this machine can hold" in err[0] and "Traceback" not in p.stderr
    assert not out.exists()


def test_unreadable_metrics_lines_are_moved_aside_not_deleted(run, capsys):
    path = run / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    bad = [b'["a list, not a row"]\n', b'{"step": "two"}\n', b"\xff\xfe not utf-8\n", b'{"step": 3, garbled\n']
    # the tail a killed process leaves (a start reads the log's tail only); a damaged line in the middle
    # stays where it is and every reader passes over it
    middle = b'{"step": "damaged by hand"}\n'
    path.write_bytes(lines[0] + middle + b"".join(lines[1:]) + b"".join(bad))
    assert train(run, "train.steps=10", "train.keep_checkpoints=0", "--resume") == 0
    assert "4 line(s) of" in capsys.readouterr().out
    assert (run / "metrics.jsonl.rejected").read_bytes() == b"".join(bad)
    from paddle_gan.run.run_log import read_metrics

    assert [r["step"] for r in read_metrics(str(path))] == [2, 4, 6, 8, 10] and middle in path.read_bytes()
