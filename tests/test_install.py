"""GPU users: an install that resolves from the default index, a device they choose, portable
checkpoints. (No GPU here: the GPU branches are the same calls, checked on the CPU build.)"""
import json
import os
import re
import runpy
import shutil
import subprocess
import sys

import pytest
import setuptools
from conftest import REPO, tool, train


def setup_kwargs():
    """What setup.py hands to setuptools.setup, read by running it with setup() replaced."""
    seen = {}
    real = setuptools.setup
    setuptools.setup = lambda **kw: seen.update(kw)
    try:
        runpy.run_path(os.path.join(REPO, "setup.py"))
    finally:
        setuptools.setup = real
    return seen


def pip_dry_run(*args):
    return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def index():
    if pip_dry_run("--no-deps", "pytest").returncode != 0:
        pytest.skip("the package index is not reachable from here")


def test_every_extra_resolves_from_the_default_index(index):
    kw = setup_kwargs()
    readme = open(os.path.join(REPO, "README.md")).read()
    documented = set(re.findall(r'pip install -e "\.\[([a-z,]+)\]"', readme))
    extras = kw["extras_require"]
    assert documented and all(e in extras for d in documented for e in d.split(","))  # the README names real extras
    reqs = sorted({r for rs in extras.values() for r in rs})
    p = pip_dry_run("--no-deps", *reqs)
    assert p.returncode == 0, p.stderr
    assert not any("paddlepaddle-gpu" in r for r in reqs)  # 3.x is only on Paddle's own index


def test_a_plain_install_never_pulls_paddle(index, tmp_path):
    """`pip install -e .` must not bring the CPU wheel onto a machine with paddlepaddle-gpu."""
    kw = setup_kwargs()
    assert not any(r.lower().startswith("paddlepaddle") for r in kw["install_requires"])
    p = pip_dry_run("--ignore-installed", "--quiet", "--report", str(tmp_path / "r.json"), *kw["install_requires"])
    assert p.returncode == 0, p.stderr
    names = {i["metadata"]["name"].lower() for i in json.load(open(tmp_path / "r.json"))["install"]}
    assert not {n for n in names if n.startswith("paddlepaddle")}, names


@pytest.mark.parametrize("choice, expected", [
    ("gpu", "train.device: gpu asked for, but this is a Paddle"),
    ("gpu:1", "train.device: gpu:1 asked for, but this is a Paddle"),
    ("tpu", "train.device: must be one of auto, cpu, gpu, gpu:N, got 'tpu'"),
])
def test_asking_for_a_gpu_that_is_not_there_is_one_line_before_anything_is_written(tmp_path, capsys, choice,
                                                                                   expected):
    import paddle

    if paddle.is_compiled_with_cuda():
        pytest.skip("a CUDA build of Paddle")
    assert train(tmp_path / "run", "train.steps=2", f"train.device={choice}") == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(f"error: {expected}"), err
    assert not (tmp_path / "run").exists()


def test_the_device_is_said_and_saved_and_checkpoints_move_between_devices(tmp_path, capsys):
    from paddle_gan.device import build

    run = tmp_path / "run"
    assert train(run, "train.steps=4", "train.device=cpu") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"run folder: {run} | device cpu ({build()}) | float32"  # the precision beside the device
    ckpt = run / "checkpoints" / "step_0000004"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["device"] == "cpu" and state["paddle_build"] == build()
    # a checkpoint written on a GPU machine (as its state.json would say) resumes here
    state.update(device="gpu:0", paddle_build="Paddle 3.2.0, CUDA 12.6 build")
    (ckpt / "state.json").write_text(json.dumps(state))
    assert train(run, "train.steps=6", "--resume") == 0
    assert "resumed from" in capsys.readouterr().out
    # the tools take the same choice
    out = tmp_path / "g"
    assert tool("generate", "--checkpoint", str(ckpt), "--num", "2", "--out", str(out), "--device", "cpu") == 0
    assert tool("export", "--checkpoint", str(ckpt), "--out", str(out), "--device", "gpu:3") == 2
    assert capsys.readouterr().err.strip().startswith("error: --device: gpu:3 asked for")
    shutil.rmtree(run)
