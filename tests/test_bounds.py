"""Bounded and honest under hostile input: configs that expand, are huge or hold absurd numbers;
checkpoints whose tensors do not fit the model; data whose headers lie (IDX sizes, gzip bombs, image
formats whose size cannot be read, labels outside the classes); concurrent evaluation records; a
damaged operator cache; a start that does not replay the history; and a burst of Ctrl-Cs. Each is
one `error:` line and exit 2 (or works, where it is legitimate), in bounded time and memory, with
nothing saved altered."""
import gzip
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import BUNDLED_DIR, CONFIGS, REPO, SMALL, TINY, tool, train, train_cmd
from paddle_gan.config import ConfigError, load_config
from paddle_gan.data import DataError, read_idx


def errors(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]


def _bounded(memory_gb=4):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_gb << 30, memory_gb << 30))
    return limit


# ---- configs -----------------------------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "train: {steps: 2}\n"


@pytest.mark.parametrize("text, expected", [
    (BOMB, "YAML aliases (*name) are not allowed in a config (line 2)"),  # the billion laughs
    ("train: &t {steps: 2}\nopt_G: *t\n", "YAML aliases (*name) are not allowed"),
    ("train:\n  steps: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 16 levels"),
    ("train:\n  steps: [" + ", ".join(["1"] * 200_000) + "]\n", "more than 100000 values"),
], ids=["billion-laughs", "alias", "deep", "wide"])
def test_yaml_that_expands_or_nests_is_refused_at_once(tmp_path, capsys, text, expected):
    """In a process that may not take 4 GB for the bomb (its own process: the limit is the test), in
    this one for the others (a second each instead of a fresh process's imports)."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    t0 = time.perf_counter()
    if text == BOMB:
        p = subprocess.run(train_cmd("-c", str(path), "--output", str(tmp_path / "run")), capture_output=True,
                           text=True, cwd=REPO, preexec_fn=_bounded(4), timeout=120)
        code, stderr = p.returncode, p.stderr
    else:
        code, stderr = tool("train", "-c", str(path), "--output", str(tmp_path / "run")), capsys.readouterr().err
    err = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and expected in err[0], stderr[-500:]
    assert len(err[0]) < 300 and time.perf_counter() - t0 < 60 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("value, expected", [
    ("[&a [1, 1], *a, *a]", "train.steps: YAML aliases"), ("[" * 30 + "]" * 30, "train.steps: nested deeper"),
    ("x" * 100_000, "train.steps: expected an integer, got 'xxxxxxxx"),
], ids=["alias", "deep", "long"])
def test_override_values_are_bounded_and_echoed_short(value, expected):
    with pytest.raises(ConfigError) as e:
        load_config(os.path.join(CONFIGS, "quickstart.yaml"), [f"train.steps={value}"])
    assert str(e.value).startswith(expected) and len(str(e.value)) < 300


def test_a_config_over_1_mib_is_refused_not_cut(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("train:\n  steps: 30\n" + "# padding\n" * 120_000 + "data:\n  split: test\n")
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        load_config(str(path))


@pytest.mark.parametrize("override, expected", [
    ("train.n_critic=100000000000000000000000", "train.n_critic: must be <= 100, got 100000000000000000000000"),
    ("train.num_samples=100000000000000000000000", "train.num_samples: must be <= 4096"),
    ("train.batch_size=1000000000", "train.batch_size: must be <= 65536"),
    ("model.z_dim=1000000000", "model.z_dim: must be <= 4096"),
    ("model.g_channels=1000000000", "model.g_channels: must be <= 8192"),
    ("train.eval_samples=1000000000", "train.eval_samples: must be <= 1000000"),
    ("train.seed=1208925819614629174706176", "train.seed: must be <= 4294967295"),
])
def test_numbers_have_upper_bounds_checked_before_anything_is_allocated(tmp_path, capsys, override, expected):
    t0 = time.perf_counter()
    assert train(tmp_path / "run", override) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith(f"error: {expected}") and time.perf_counter() - t0 < 30
    assert not (tmp_path / "run").exists()


# ---- checkpoints whose tensors do not fit ------------------------------------------------------------

@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bounds") / "run"
    train(run, "train.steps=4", "train.save_every=2", "train.keep_checkpoints=0", check=True)
    return run


@pytest.fixture
def run(base_run, tmp_path):
    shutil.copytree(base_run, tmp_path / "run")
    return tmp_path / "run"


def _forge(ckpt, name, change):
    """Edit a state dict file and re-sign it in state.json, as whoever hands over a checkpoint can."""
    import paddle

    from paddle_gan import safepickle

    state = safepickle.load_state_dict((ckpt / name).read_bytes())
    change(state)
    paddle.save(state, str(ckpt / name))
    data = (ckpt / name).read_bytes()
    meta = json.loads((ckpt / "state.json").read_text())
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "state.json").write_text(json.dumps(meta))


def _first_weight(state):
    return next(k for k, v in state.items() if isinstance(v, np.ndarray) and v.ndim == 4)


FORGERIES = {
    "wrong shape": ("G.pdparams", lambda s: s.update({_first_weight(s): np.zeros((3, 3), np.float32)}),
                    "is float32 [3, 3], the model expects float32"),
    "missing key": ("D.pdparams", lambda s: s.pop(_first_weight(s)), "missing net.0.weight"),
    "empty dict": ("G.pdparams", lambda s: [s.pop(k) for k in list(s)], "missing"),
    "wrong dtype": ("D.pdparams", lambda s: s.update({_first_weight(s): s[_first_weight(s)].astype(np.float64)}),
                    "is float64"),
    "an extra tensor": ("G.pdparams", lambda s: s.update({"evil": np.zeros(3, np.float32)}), "tensor(s) the model does not have"),
    "optimizer shape": ("D.pdopt", lambda s: s.update({next(k for k in s if k.endswith("moment1_0")):
                                                      np.zeros(7, np.float32)}), "D.pdopt: "),
}


@pytest.mark.parametrize("kind", list(FORGERIES))
def test_a_checkpoint_that_does_not_fit_is_refused_and_skipped(run, capsys, kind):
    name, change, expected = FORGERIES[kind]
    ckpt = run / "checkpoints" / "step_0000004"
    _forge(ckpt, name, change)
    before = {f: (ckpt / f).read_bytes() for f in os.listdir(ckpt)}
    assert train(run, "train.steps=6", "--resume", str(ckpt)) == 2  # named: one line, exit 2
    err = errors(capsys)
    assert len(err) == 1 and f"{name}" in err[0] and expected in err[0], err
    if name.startswith("G"):
        assert tool("generate", "--checkpoint", str(ckpt), "--out", str(run / "out"), "--num", "2") == 2
        assert tool("eval", "--checkpoint", str(ckpt), "--num", "10", "--data-root", BUNDLED_DIR) == 2
        capsys.readouterr()
    # --resume alone passes over it, as over a damaged checkpoint, and continues from step 2; the forged
    # checkpoint is moved aside with the later history, never altered
    assert train(run, "train.steps=6", "--resume") == 0
    out = capsys.readouterr().out
    assert f"skipping checkpoint {ckpt}" in out and "step_0000002 at step 2" in out
    (moved,) = (run / "checkpoints").glob("abandoned-*/step_0000004")
    assert {f: (moved / f).read_bytes() for f in os.listdir(moved)} == before


@pytest.mark.parametrize("field, value, expected", [
    ("files.G.pdparams.bytes", 2 ** 63, "files['G.pdparams'] must hold bytes"),
    ("files.G.pdparams.bytes", 10 ** 15, "files['G.pdparams'] must hold bytes"),
    ("seed", 2 ** 80, "seed must be a whole number in 0..2^32-1"),
    ("data.offset", 10 ** 30, "data must be {epoch, offset}, whole numbers in 0..1000000000000"),
])
def test_absurd_numbers_in_state_json_are_a_damaged_checkpoint(run, capsys, field, value, expected):
    ckpt = run / "checkpoints" / "step_0000004"
    meta = json.loads((ckpt / "state.json").read_text())
    *path, last = field.replace("G.pdparams", "G@pdparams").split(".")
    node = meta
    for part in path:
        node = node[part.replace("@", ".")]
    node[last] = value
    (ckpt / "state.json").write_text(json.dumps(meta))
    assert train(run, "train.steps=6", "--resume", str(ckpt)) == 2
    err = errors(capsys)
    assert len(err) == 1 and expected in err[0], err


# ---- data whose headers lie --------------------------------------------------------------------------

def _idx(dims, payload=b""):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def test_idx_sizes_are_python_integers_and_gzip_is_inflated_within_the_header(tmp_path):
    overflow = tmp_path / "overflow-idx3-ubyte"
    overflow.write_bytes(_idx([2 ** 32 - 1, 2 ** 32 - 1, 2 ** 31]))  # the product wraps int64 to 0 in NumPy
    with pytest.raises(DataError, match="the IDX header claims shape"):
        read_idx(str(overflow))
    bomb = tmp_path / "bomb-idx3-ubyte.gz"  # a small header, then 1 GiB of zeros: never inflated whole
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(_idx([10, 28, 28]))
        chunk = bytes(1 << 24)
        for _ in range(64):
            f.write(chunk)
    code = ("import sys; sys.path.insert(0, %r); from paddle_gan.data import read_idx, DataError\n"
            "try: read_idx(%r)\nexcept DataError as e: print(e)" % (REPO, str(bomb)))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_bounded(3), timeout=120)
    assert "truncated or oversized IDX file" in p.stdout and "and more" in p.stdout, p.stderr[-300:]


def test_a_label_outside_the_classes_is_one_line(tmp_path, capsys):
    root = tmp_path / "fm"
    root.mkdir()
    shutil.copy(os.path.join(BUNDLED_DIR, "t10k-images-idx3-ubyte.gz"), root)
    labels = np.full(10000, 3, np.uint8)
    labels[17] = 200
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx([10000], labels.tobytes()))
    assert train(tmp_path / "run", f"data.root={root}", "model.num_classes=10", "data.limit=0") == 2
    err = errors(capsys)
    assert len(err) == 1 and "a label is 200, outside 0..9" in err[0]


def _radiance(width, height):
    return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode() + bytes(64)


def test_the_pixel_limit_holds_for_formats_whose_header_pil_cannot_read(tmp_path, capfd):
    from paddle_gan.data import load_image_folder

    root = tmp_path / "imgs"
    root.mkdir()
    import cv2

    for i in range(4):
        cv2.imwrite(str(root / f"ok{i}.png"), np.full((12, 12), 60 * i, np.uint8))
    (root / "huge.png").write_bytes(_radiance(12000, 12000))  # 144 Mpx that OpenCV would decode
    (root / "pfm.jpg").write_bytes(b"Pf\n12000 12000\n-1.0\n" + bytes(64))
    (root / "text.bmp").write_bytes(b"not an image at all")
    ds = load_image_folder(str(root), 8, 1, cache=False, max_pixels=1000)
    assert len(ds.images) == 4
    log = capfd.readouterr().err
    assert "3 are not PNG, JPEG, BMP or WebP by their content" in log


def test_an_unreadable_sub_folder_is_counted(tmp_path, capfd, monkeypatch):
    from paddle_gan.data import load_image_folder

    root = tmp_path / "imgs"
    for sub in ("a", "secret", "other"):
        (root / sub).mkdir(parents=True)
    import cv2

    for i in range(3):
        cv2.imwrite(str(root / "a" / f"ok{i}.png"), np.full((12, 12), 60 * i, np.uint8))
    real = os.scandir

    def scandir(path="."):  # as a folder without read permission answers (root would read it anyway)
        if os.path.basename(str(path)) in ("secret", "other"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ds = load_image_folder(str(root), 8, 1, cache=False)
    assert len(ds.images) == 3
    log = capfd.readouterr().err
    assert "2 are folders that cannot be read (permissions)" in log, log


# ---- records, the operator cache, the start, signals --------------------------------------------------

def test_concurrent_appends_keep_every_record(tmp_path):
    from paddle_gan.files import append_line

    path = str(tmp_path / "metric-x.jsonl")

    def writer(k):
        for i in range(200):
            append_line(path, json.dumps({"writer": k, "i": i, "pad": "x" * 500}))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [json.loads(line) for line in open(path)]
    assert len(rows) == 1200 and {(r["writer"], r["i"]) for r in rows} == {(k, i) for k in range(6) for i in range(200)}


def test_eval_of_a_read_only_run_prints_its_scores_first(base_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "ro"
    shutil.copytree(base_run, run)
    ckpt = run / "checkpoints" / "step_0000004"
    real_open = os.open

    def read_only(path, flags, *a, **k):  # as a read-only mount refuses (root ignores file modes)
        if str(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    assert tool("eval", "--checkpoint", str(ckpt), "--num", "20", "--data-root", BUNDLED_DIR) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["step"] == 4
    assert "warning: not recorded in the run folder (Read-only file system)" in err
    assert not (run / "metric-lenet_fashion.jsonl").exists()


def test_a_damaged_operator_cache_is_detected_and_a_killed_build_leaves_nothing(tmp_path, monkeypatch):
    from paddle_gan import ops

    broken = tmp_path / "cache" / "build"
    (broken / ops.NAME).mkdir(parents=True)
    (broken / "built.ok").write_text("complete, it says\n")
    (broken / ops.NAME / f"{ops.NAME}.so").write_bytes(b"")  # what a kill during linking left
    with pytest.raises(ops.OpsError):
        ops.build._import_built(str(broken))

    def killed(**kw):  # the compiler dies half-way: whatever it wrote stays in the temporary folder
        open(os.path.join(kw["build_directory"], "half.o"), "w").close()
        raise RuntimeError("killed")

    import paddle.utils.cpp_extension as ext

    monkeypatch.setattr(ext, "load", killed)
    target = tmp_path / "cache" / "fresh"
    assert ops.build._build(str(target), None) is None
    assert not target.exists() and not list((tmp_path / "cache").glob("fresh.tmp-*"))


def test_a_start_continues_the_visualdl_file_instead_of_replaying_it(tmp_path):
    run = tmp_path / "run"
    assert train(run, "train.steps=4", "train.save_every=2") == 0
    records = run / "vdl" / "vdlrecords.paddle_gan.log"
    first = records.read_bytes()
    assert train(run, "train.steps=8", "train.save_every=2", "--resume") == 0
    assert records.read_bytes()[:len(first)] == first and records.stat().st_size > len(first)  # appended
    from visualdl import LogReader

    steps = [r.id for r in LogReader(file_path=str(records)).get_data("scalar", "GAN/loss_D")]
    assert steps == [2, 4, 6, 8]  # every step once


def test_a_start_after_a_long_history_reads_only_its_tail(tmp_path):
    """200k metric rows and 4,000 sample grids before the checkpoint a run resumes from: the start
    reads the log's tail and continues VisualDL's file, replaying nothing (the note gives the time)."""
    run = tmp_path / "run"
    assert train(run, "train.steps=2", "train.save_every=2") == 0
    last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
    far = 200_002
    with open(run / "metrics.jsonl", "a") as f:  # the rows a long run logged (steps 3 .. 200002)
        f.write("".join(json.dumps(dict(last, step=s)) + "\n" for s in range(3, far + 1)))
    grid = (run / "samples" / "step_0000002.png").read_bytes()
    for s in range(3, 4003):
        (run / "samples" / f"step_{s:07d}.png").write_bytes(grid)
    ckpt = run / "checkpoints" / f"step_{far:07d}"
    (run / "checkpoints" / "step_0000002").rename(ckpt)
    meta = json.loads((ckpt / "state.json").read_text())
    meta["step"] = far
    (ckpt / "state.json").write_text(json.dumps(meta))
    records = run / "vdl" / "vdlrecords.paddle_gan.log"  # as the long run's last flush left it
    (run / "vdl" / "position.json").write_text(json.dumps({"bytes": records.stat().st_size, "step": far}))
    t0 = time.perf_counter()
    assert train(run, f"train.steps={far + 1}", "train.save_every=1", "--resume") == 0
    seconds = time.perf_counter() - t0
    from visualdl import LogReader

    steps = [r.id for r in LogReader(file_path=str(records)).get_data("scalar", "GAN/loss_D")]
    assert steps == [2, far + 1]  # appended, not replayed (a replay would add the 200k rows)
    assert seconds < 30


def test_a_burst_of_ctrl_c_ends_with_the_promised_line(tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen(train_cmd("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY,
                                   *SMALL, "train.steps=100000"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=REPO)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    for _ in range(12):
        p.send_signal(signal.SIGINT)
        time.sleep(0.002)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == ["error: interrupted; nothing saved since the "
                                                                          "last checkpoint"] or "stopped at step" in out
