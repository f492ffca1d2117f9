"""Shared helpers: run the real tools/train.py on the bundled Fashion-MNIST split."""
import json
import os

if os.environ.get("PYTEST_XDIST_WORKER"):  # tests run in parallel workers (pytest -n): one math thread each
    os.environ.setdefault("MKL_NUM_THREADS", "1")
import runpy
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from paddle_gan.data import BUNDLED_DIR  # noqa: E402

TRAIN = os.path.join(REPO, "tools", "train.py")
CONFIGS = os.path.join(REPO, "configs")

# Small and fast, but the real network of the quickstart on the real bundled images.
TINY = ["data.root=" + BUNDLED_DIR, "data.limit=512", "train.batch_size=16", "train.log_every=2",
        "train.sample_every=4", "train.save_every=4", "train.eval_every=0"]


SMALL = ["model.g_channels=8", "model.d_channels=8"]  # an eighth of the quickstart's widths
SMALL_MLP = ["model.g_hidden=[32, 64]", "model.d_hidden=[64, 32]"]  # the same for an MLP config


def tool(name, *argv):
    """tools/<name>.py's main() in this process (a fresh subprocess costs seconds of imports): its exit code."""
    return runpy.run_path(os.path.join(REPO, "tools", f"{name}.py"))["main"](list(argv))


def train(run, *extra, config="quickstart.yaml", check=False, small=SMALL):
    """tools/train.py in this process on TINY and `small` settings into `run`; its exit code (check:
    assert it is 0)."""
    code = tool("train", "-c", os.path.join(CONFIGS, config), "--output", str(run), "-o", *TINY, *small, *extra)
    assert code == 0 or not check, code
    return code


def train_cmd(*args):
    return [sys.executable, TRAIN, *args]


def _in_process(argv):
    """tools/train.py's main(argv) in this process, from the clone (as the subprocess would run it), its
    stdout and stderr captured: a CompletedProcess. A fresh process costs ~2 s of imports per call."""
    import contextlib
    import io

    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = runpy.run_path(TRAIN)["main"](list(argv))
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def run_train(*args, check=True, env=None, timeout=600, fresh=False):
    """tools/train.py with `args`: a CompletedProcess with text stdout/stderr. In this process, unless it
    needs its own (env: variables of its own; fresh: a process boundary is what is tested)."""
    if env or fresh:
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.run(train_cmd(*args), capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)
    else:
        p = _in_process(args)
    if check and p.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def quick(out_dir, *extra, config="quickstart.yaml", check=True):
    """tools/train.py on the quickstart config with TINY settings into out_dir."""
    return run_train("-c", os.path.join(CONFIGS, config), "--output", str(out_dir), "-o", *TINY, *extra, check=check)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def load_state(path):
    import paddle

    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in paddle.load(str(path)).items()}


def assert_same_state(a, b):
    """Two paddle.save'd state dicts are equal bit for bit (tensors) and value for value (others)."""
    sa, sb = load_state(a), load_state(b)
    assert sa.keys() == sb.keys(), (a, b)
    for k in sa:
        if isinstance(sa[k], np.ndarray):
            assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), f"{a}: {k} differs"
        else:
            assert sa[k] == sb[k], f"{a}: {k} differs"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_GAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One quickstart run at SMALL widths, 8 steps, every 4th saved and kept (steps 4 and 8), trained
    once for the whole session; tests that change it take a copy (the `run` fixtures)."""
    run = tmp_path_factory.mktemp("small") / "run"
    train(run, "train.steps=8", "train.keep_checkpoints=0", check=True)
    return run


def resign(ckpt, name):
    """Re-sign file `name` of a checkpoint in its state.json, as whoever hands over a forged file would."""
    import hashlib

    data = (ckpt / name).read_bytes()
    meta = json.loads((ckpt / "state.json").read_text())
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "state.json").write_text(json.dumps(meta))
