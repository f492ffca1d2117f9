"""Shared helpers: run the real tools/train.py on the bundled Fashion-MNIST split."""
import json
import os
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


def train_cmd(*args):
    return [sys.executable, TRAIN, *args]


def run_train(*args, check=True, env=None, timeout=600):
    """Run tools/train.py; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ, **(env or {}))
    p = subprocess.run(train_cmd(*args), capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)
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
