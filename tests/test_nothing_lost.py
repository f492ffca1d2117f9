"""Nothing a user owns is ever deleted, and every input is bounded: each case an attacker or a careless
hand tried, through the real tools. Each ends in one `error:` line (or works) in seconds, and no file
that existed before the command is changed or removed unless changing it is the command's job."""
import json
import os
import pickle
import resource
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from conftest import BUNDLED_DIR, CONFIGS, REPO, SMALL, TINY, resign, tool, train


def errors(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]


def snapshot(folder):
    """{relative path: bytes} of every file under folder: what must come out of a command unchanged."""
    return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(folder) for n in names}


@pytest.fixture
def ckpt(small_run):
    return str(small_run / "checkpoints" / "step_0000008")


# ---- 1. an output folder is written whole, and only a folder the command wrote is ever replaced ----------

@pytest.mark.parametrize("fmt", ["paddle", "checkpoint"])
def test_export_never_deletes_a_folder_it_did_not_write(ckpt, small_run, tmp_path, capsys, fmt):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("a user's file")
    (mine / "sub" / "data.bin").write_bytes(b"\0\1")
    before, run_before = snapshot(mine), snapshot(small_run)
    for out in (mine, small_run / "checkpoints", small_run, "/"):
        assert tool("export", "--checkpoint", ckpt, "--out", str(out), "--format", fmt) == 2
        err = errors(capsys)
        assert len(err) == 1 and "is not an earlier output of this command" in err[0], err
    assert snapshot(mine) == before and snapshot(small_run) == run_before
    link = tmp_path / "link"
    link.symlink_to(mine)
    assert tool("export", "--checkpoint", ckpt, "--out", str(link), "--format", fmt) == 2
    assert "a symbolic link" in errors(capsys)[0] and snapshot(mine) == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left beside


def test_an_earlier_export_is_replaced_whole_never_merged(ckpt, tmp_path, capsys):
    out = tmp_path / "exp"
    assert tool("export", "--checkpoint", ckpt, "--out", str(out), "--format", "onnx") == 0
    assert (out / "generator.onnx").is_file()
    assert tool("export", "--checkpoint", ckpt, "--out", str(out)) == 0  # paddle only: the ONNX file goes too
    assert sorted(os.listdir(out)) == ["export.json", "generator.json", "generator.pdiparams"]
    info = json.loads((out / "export.json").read_text())
    assert info["load"] == f"paddle.jit.load('{os.path.join(str(out), 'generator')}')"  # the final path, not a temporary
    (out / "notes.txt").write_text("added by the user")  # now it holds something the export did not write
    assert tool("export", "--checkpoint", ckpt, "--out", str(out)) == 2
    assert "holds notes.txt" in errors(capsys)[0] and (out / "notes.txt").read_text() == "added by the user"
    assert tool("export", "--checkpoint", ckpt, "--out", str(out), "--format", "checkpoint") == 2  # another kind


def test_an_export_killed_half_way_leaves_the_earlier_one_whole(ckpt, tmp_path, capsys, monkeypatch):
    import paddle_gan.export as export

    out = tmp_path / "exp"
    assert tool("export", "--checkpoint", ckpt, "--out", str(out)) == 0
    before = snapshot(out)

    def killed(prefix):
        raise KeyboardInterrupt  # the ONNX step of a second export, interrupted after the Paddle model was written

    monkeypatch.setattr(export, "to_onnx", killed)
    assert tool("export", "--checkpoint", ckpt, "--out", str(out), "--format", "onnx") == 130
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["exp"]


def test_generate_and_train_refuse_a_folder_of_the_users(ckpt, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own config\n")
    (mine / ".notes.tmp").write_text("mine too")
    before = snapshot(mine)
    assert tool("generate", "--checkpoint", ckpt, "--num", "3", "--out", str(mine)) == 2
    assert "is not an earlier output of this command" in errors(capsys)[0]
    assert train(mine, "train.steps=2") == 2
    assert "not a paddle_gan run" in errors(capsys)[0]
    assert snapshot(mine) == before
    out = tmp_path / "out"
    assert tool("generate", "--checkpoint", ckpt, "--num", "3", "--out", str(out)) == 0
    assert tool("generate", "--checkpoint", ckpt, "--grid", "--num", "4", "--out", str(out)) == 0
    assert sorted(os.listdir(out)) == ["generated.json", "grid.png"]  # the earlier images replaced, not kept beside


def test_an_unwritable_output_is_one_line_also_for_onnx(ckpt, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for name, extra in (("generate", ["--num", "2"]), ("export", ["--format", "onnx"]), ("export", [])):
        assert tool(name, "--checkpoint", ckpt, "--out", str(blocker / "out"), *extra) == 2
        captured = capsys.readouterr().err
        err = captured.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --out") and "cannot write there" in err[0], (name, err)
    assert blocker.read_text() == "not a folder"


# ---- 2. a pickle of shared references costs a linear walk at most ------------------------------------------

def _shared(kind, depth=60):
    obj = [] if kind == "list" else {}
    for _ in range(depth):
        obj = [obj, obj] if kind == "list" else {"a": obj, "b": obj}
    return pickle.dumps(obj, protocol=2)  # a few hundred bytes; 2^60 paths through it


def _bounded(gb=3):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (gb << 30, gb << 30))
    return limit


class _Hung(Exception):
    pass


def _within(seconds):
    """A guard for a check that would hang (not fail) if what it tests were broken: SIGALRM ends it."""
    import contextlib
    import signal

    @contextlib.contextmanager
    def guard():
        def ring(*_):
            raise _Hung(f"still running after {seconds} s")
        old = signal.signal(signal.SIGALRM, ring)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return guard()


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_pickle_of_shared_references_is_refused_at_once(small_run, tmp_path, capsys, kind):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    newest = run / "checkpoints" / "step_0000008"
    (newest / "G.pdparams").write_bytes(_shared(kind))
    resign(newest, "G.pdparams")
    with _within(60):
        for name, *argv in (("generate", "--checkpoint", str(newest), "--out", str(tmp_path / "g")),
                            ("eval", "--checkpoint", str(newest), "--num", "10"),
                            ("train", "--resume", str(newest))):
            assert tool(name, *argv) == 2, name
            err = errors(capsys)
            assert len(err) == 1 and "refused to load" in err[0], (name, err)
        # the plain --resume skips it and continues from the checkpoint before
        assert tool("train", "--resume", str(run), "-o", "train.steps=9") == 0
    out = capsys.readouterr().out
    assert "skipping checkpoint" in out and "at step 4" in out, out[-800:]


def test_evaluator_weights_and_cifar_batches_of_shared_references_are_refused(tmp_path):
    import tarfile

    from paddle_gan.data import DataError, load_cifar10
    from paddle_gan.metrics.inception import load_inception

    weights = tmp_path / "w.pdparams"
    weights.write_bytes(_shared("dict"))
    with pytest.raises(DataError, match="refused to load: it nests containers deeper than 32"):
        load_inception(str(weights))
    root = tmp_path / "cifar"
    root.mkdir()
    member = tmp_path / "test_batch"
    member.write_bytes(_shared("list"))
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(member, arcname="cifar-10-batches-py/test_batch")
    with pytest.raises(DataError, match="refused to load test_batch"):
        load_cifar10(str(root), "test", 32, 3, download=False)


# ---- 3. every count a command line can ask for, and their products --------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["--grid", "--num", "1000000"], "a sample grid of 1000000 images at 32 px would be 68004 x 68004 pixels"),
    (["--num", "2000000"], "--num must be in 1..1000000"),
    (["--num", "0"], "--num must be in 1..1000000"),
    (["--interpolate", "1000000"], "--interpolate must be in 0..1000"),
    (["--interpolate", "1", "--steps", "100000"], "--steps must be in 2..1000"),
    (["--interpolate", "1", "--steps", "1"], "--steps must be in 2..1000"),
], ids=["grid", "num", "num0", "strips", "steps", "steps1"])
def test_generate_counts_are_bounded(ckpt, tmp_path, capsys, argv, expected):
    t0 = time.perf_counter()
    assert tool("generate", "--checkpoint", ckpt, *argv, "--out", str(tmp_path / "o")) == 2
    err = errors(capsys)
    assert len(err) == 1 and expected in err[0], err
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "o").exists()


def test_many_images_are_written_a_batch_at_a_time(ckpt, tmp_path, capsys):
    assert tool("generate", "--checkpoint", ckpt, "--num", "600", "--out", str(tmp_path / "o")) == 0
    names = sorted(os.listdir(tmp_path / "o"))
    assert len(names) == 601 and names[0] == "000000.png" and names[599] == "000599.png"
    assert json.loads((tmp_path / "o" / "generated.json").read_text())["files"] == 600


@pytest.mark.parametrize("override, expected", [
    ("train.diffaug=" + ",".join(["color"] * 20000), "train.diffaug: color is given twice"),
    ("train.diffaug=color,translation,color", "train.diffaug: color is given twice"),
    ("train.diffaug=color,zoom", "train.diffaug: unknown augmentation 'zoom'"),
], ids=["20000-colors", "twice", "unknown"])
def test_augmentation_policies_are_each_known_and_given_once(tmp_path, capsys, override, expected):
    assert train(tmp_path / "run", override) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith(f"error: {expected}") and len(err[0]) < 300
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides, expected", [
    (["train.num_samples=4096", "model.img_size=1024"],
     "train.num_samples, model.img_size: a sample grid of 4096 images at 1024 px would be 65666 x 65666 pixels"),
    (["train.batch_size=65536", "train.n_critic=100", "model.img_size=1024"],
     "train.batch_size, train.n_critic, model.img_size: the images of one step would need about"),
    (["model.g_channels=8192", "model.d_channels=8192"],
     "model.g_channels, model.d_channels, model.img_size: dcgan with 21,528,477,698 parameters would need about"),
    (["train.eval_every=1", "train.eval_samples=1000000", "model.img_size=1024"],
     "train.eval_samples, model.img_size: an evaluation would need about"),
], ids=["grid", "batch", "model", "eval"])
def test_products_of_keys_are_estimated_before_anything_is_allocated(tmp_path, capsys, overrides, expected):
    """Each key within its own bound, their product beyond any machine: refused in seconds with no run
    folder; the model's case in a process that may not take 3 GB (its own: the limit is the test)."""
    out = tmp_path / "run"
    t0 = time.perf_counter()
    argv = ["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out), "-o", *TINY, *overrides]
    if "model.g_channels=8192" in overrides:
        p = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train.py"), *argv], capture_output=True,
                           text=True, cwd=REPO, timeout=120, preexec_fn=_bounded())
        code, stderr = p.returncode, p.stderr
    else:
        code, stderr = tool("train", *argv), capsys.readouterr().err
    err = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {expected}"), stderr[-600:]
    assert "more than this machine can hold" in err[0] or "a picture here may have" in err[0]
    assert time.perf_counter() - t0 < 60 and not out.exists()


def test_a_hostile_checkpoint_config_is_counted_before_a_weight_is_made(small_run, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(small_run / "checkpoints" / "step_0000008", ckpt)
    meta = json.loads((ckpt / "state.json").read_text())
    meta["config"]["model"]["g_channels"] = 8192
    (ckpt / "state.json").write_text(json.dumps(meta))
    t0 = time.perf_counter()
    assert tool("generate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")) == 2
    assert "parameters would need about" in errors(capsys)[0] and time.perf_counter() - t0 < 10


# ---- 4. every image read back passes the header check and the pixel limit --------------------------------

def _huge_png(path, side=30000):
    """A PNG whose header says side x side grey pixels (its data a few bytes): what a decoder would
    allocate from the header, 900 MB for 30000 x 30000."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_huge_sample_grid_is_left_out_of_the_gif(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    _huge_png(run / "samples" / "step_0000006.png")
    (run / "samples" / "step_0000007.png").write_bytes(b"not an image at all")
    assert tool("generate", "--checkpoint", str(run), "--gif", "--out", str(tmp_path / "g")) == 0
    out = capsys.readouterr().out
    assert "progress.gif leaves out" in out and "900000000 pixels" in out and "not a PNG" in out, out
    from PIL import Image

    with Image.open(tmp_path / "g" / "progress.gif") as gif:
        assert gif.n_frames == 3  # steps 0, 4 and 8


def test_the_gif_at_a_runs_end_and_the_visualdl_replay_skip_a_huge_grid(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    _huge_png(run / "samples" / "step_0000007.png")
    shutil.rmtree(run / "vdl")  # the next start replays every grid into a fresh VisualDL file
    code = tool("train", "--resume", str(run), "-o", "train.steps=10", "train.progress_gif=true")
    out = capsys.readouterr().out
    assert code == 0 and "VisualDL leaves out" in out and "progress.gif leaves out" in out
    assert (run / "progress.gif").is_file()


# ---- 5. names from files are printed escaped: one error line stays one line -------------------------------

def test_class_names_from_a_checkpoint_cannot_forge_lines_or_drive_the_terminal(tmp_path, capsys):
    from paddle_gan import zoo

    ckpt = tmp_path / "ckpt"
    shutil.copytree(zoo.path("fashion_mnist_cond"), ckpt)
    meta = json.loads((ckpt / "state.json").read_text())
    meta["classes"][0] = "Tee\nerror: forged second line\x1b[2J\x1b[31m\u202e"
    (ckpt / "state.json").write_text(json.dumps(meta))
    assert tool("generate", "--checkpoint", str(ckpt), "--class", "nothing", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err and "\u202e" not in err
    assert "Tee\\nerror: forged second line\\x1b[2J" in err
    for spec in ("²", "-1", "10", "1e1"):
        assert tool("generate", "--checkpoint", str(ckpt), "--class", spec, "--out", str(tmp_path / "o")) == 2
        assert len(errors(capsys)) == 1
    assert tool("generate", "--checkpoint", str(ckpt), "--class", "SNEAKER", "--num", "2", "--out",
                str(tmp_path / "o")) == 0


# ---- 6. the image cache, evaluator weights and reference caches are checked before they are read ----------

def test_an_image_cache_of_another_dtype_is_decoded_again(tmp_path, capfd):
    from paddle_gan.data import cache_dir, load_image_folder

    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 40, 3), 60 * i, np.uint8))
    first = load_image_folder(str(folder), 16, 3)
    cached = [os.path.join(d, n) for d, _, ns in os.walk(cache_dir()) for n in ns if not n.endswith("labels.npy")]
    np.save(cached[0], first.images.astype(np.int64))  # same shape, another dtype
    again = load_image_folder(str(folder), 16, 3)
    assert "unreadable; decoding again" in capfd.readouterr().err
    assert again.images.dtype == np.uint8 and np.array_equal(again.images, first.images)


def test_a_sparse_10_gb_weights_file_is_refused_unread(tmp_path, capsys):
    from paddle_gan.data import DataError
    from paddle_gan.metrics.inception import load_inception

    big = tmp_path / "InceptionV3.pdparams"
    with open(big, "wb") as f:
        f.truncate(10 << 30)  # sparse: no disk used, 10 GB to whoever reads it
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="10737418240 bytes, more than the 268435456"):
        load_inception(str(big))
    assert time.perf_counter() - t0 < 2


def test_safetensors_generators_are_read_without_a_pickle(small_run, tmp_path, capsys, monkeypatch):
    """A generator-only checkpoint holds its generator in safetensors too, and the tools read that one:
    with the checkpoints' unpickling made to fail, generate, eval and export still work from it."""
    from paddle_gan.run import checkpoint

    out = tmp_path / "gen"
    assert tool("export", "--checkpoint", str(small_run), "--out", str(out), "--format", "safetensors") == 0
    assert sorted(os.listdir(out)) == ["G.safetensors", "fixed_noise.npy", "state.json"]

    def no_pickles(*args):
        raise AssertionError("a pickle was read")

    monkeypatch.setattr(checkpoint, "read_state_dict", no_pickles)
    assert tool("generate", "--checkpoint", str(out), "--num", "2", "--out", str(tmp_path / "o")) == 0
    assert tool("eval", "--checkpoint", str(out), "--num", "20", "--data", "fashion_mnist:test",
                "--data-root", BUNDLED_DIR) == 0
    assert tool("export", "--checkpoint", str(out), "--out", str(tmp_path / "exp")) == 0
    both = tmp_path / "both"
    monkeypatch.undo()
    assert tool("export", "--checkpoint", str(small_run), "--out", str(both), "--format", "checkpoint") == 0
    assert sorted(os.listdir(both)) == ["G.pdparams", "G.safetensors", "fixed_noise.npy", "state.json"]
    assert tool("export", "--checkpoint", str(small_run), "--out", str(both), "--format", "safetensors") == 0
    assert "G.pdparams" not in os.listdir(both)  # replaced whole
