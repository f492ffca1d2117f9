"""The proof that a component is one file plus its registration line: a model, an objective term on G's
side, a metric and a precision mode, each written here into a temporary module of its own (nothing
in the package is edited), registered with its one line, then trained through tools/train.py's code
path, scored through tools/eval.py's, listed by --help, and named by the errors of bad settings."""
import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import BUNDLED_DIR, CONFIGS, TINY, tool

MODEL = '''
from paddle import nn
from paddle_gan.gan.models.layers import MODELS, Flatten, Generator, Model, SequentialDiscriminator, width


class TinyG(Generator):
    def __init__(self, m):
        super().__init__()
        self.shape = [m.channels, m.img_size, m.img_size]
        self.net = nn.Sequential(nn.Linear(m.z_dim, m.arch.hidden), nn.ReLU(),
                                 nn.Linear(m.arch.hidden, m.channels * m.img_size ** 2), nn.Tanh())

    def forward(self, z):
        return self.net(z).reshape([z.shape[0]] + self.shape)


class TinyD(SequentialDiscriminator):
    def __init__(self, m):
        super().__init__()
        self.net = nn.Sequential(Flatten(), nn.Linear(m.channels * m.img_size ** 2, m.arch.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(m.arch.hidden, 1))
        self.feature_dim = m.arch.hidden


@MODELS.register("tiny_ext")
class TinyExt(Model):
    """tiny_ext: one hidden layer in G and in D (a model from outside the package)"""
    keys = {"hidden": width(16, "G and D: the width of their one hidden layer")}

    @staticmethod
    def check(cfg, need):
        need(cfg.model.num_classes == 0, "model.num_classes", "tiny_ext draws no classes")

    @staticmethod
    def generator(m):
        return TinyG(m)

    @staticmethod
    def discriminator(m):
        return TinyD(m)
'''

TERM = '''
import paddle
from paddle_gan.gan.objective import Term, term
from paddle_gan.registry import Key


@term
class ModeSeeking(Term):
    """Mode seeking (Mao et al. 2019), on G's side: G is rewarded for drawing different images from
    different z, so it reads G and z; it keeps a running mean of its ratio (saved in the checkpoint)."""
    name, updates = "ms", "G"
    keys = {"ms_weight": Key(0.0, "weight of the mode seeking term (0 = off)", low=0, high=100)}

    def __init__(self, weight):
        self.weight, self.mean = weight, 0.0

    @classmethod
    def build(cls, cfg):
        return [cls(cfg.train.ms_weight)] if cfg.train.ms_weight else []

    def __call__(self, b):
        half = b.z.shape[0] // 2
        other = b.G(b.z[half:2 * half])  # G run again on the second half of z
        images = (b.fake[:half] - other).abs().mean(axis=[1, 2, 3])
        codes = (b.z[:half] - b.z[half:2 * half]).abs().mean(axis=1)
        ratio = (images / codes).mean()
        self.mean = 0.9 * self.mean + 0.1 * float(ratio)
        return -self.weight * ratio

    def state_dict(self):
        return {"mean": self.mean}

    def set_state_dict(self, state):
        self.mean = state["mean"]
'''

METRIC = '''
import numpy as np
from paddle_gan.metrics.catalog import metric


@metric("feature_mean", ("mean_gap",), lower_is_better=True, panels=[("feature mean gap", ("mean_gap",))])
def feature_mean(real, fake):
    return {"mean_gap": float(np.square(real.features.mean(0) - fake.features.mean(0)).sum())}
'''

PRECISION = '''
from paddle_gan.gan.precision import PRECISIONS, Precision


@PRECISIONS.register("counted")
class Counted(Precision):
    """Plain float32 that counts the optimizer updates it makes (saved in state.json's amp field)."""

    def __init__(self):
        self.updates = 0

    @classmethod
    def make(cls, where):
        where.say("train.amp=counted: float32, every update counted")
        return cls()

    def step(self, opt, which):
        opt.step()
        self.updates += 1

    def state_dict(self):
        return {"updates": self.updates}

    def set_state_dict(self, state):
        self.updates = state.get("updates", 0)
'''


@pytest.fixture
def extended(tmp_path):
    """The four modules imported from tmp_path (so registered); afterwards every registry and key table
    as it was, so no other test sees them."""
    from paddle_gan import config, registry  # noqa: F401  (the package's own keys are declared before the snapshot)
    from paddle_gan.gan.models import MODELS
    from paddle_gan.gan.objective import TERMS
    from paddle_gan.gan.precision import PRECISIONS
    from paddle_gan.metrics import METRICS

    before = {r: list(r) for r in (MODELS, TERMS, PRECISIONS, METRICS, registry.CHECKS)}
    keys_before = {s: dict(t) for s, t in registry.KEYS.items()}
    for name, text in (("ext_model", MODEL), ("ext_term", TERM), ("ext_metric", METRIC), ("ext_precision", PRECISION)):
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    yield
    for r, names in before.items():
        for name in [n for n in r if n not in names]:
            r.unregister(name)
    for section, table in registry.KEYS.items():
        for name in [n for n in table if n not in keys_before.get(section, {})]:
            del table[name]


def _ckpt(run, step):
    return run / "checkpoints" / f"step_{step:07d}"


def test_four_components_from_outside_train_resume_and_score(extended, tmp_path, capsys):
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text("data: {name: fashion_mnist, split: test}\nmodel: {name: tiny_ext}\n")
    argv = ["-c", str(config), "--output", str(run), "-o", *TINY, "model.name=tiny_ext",
            "model.hidden=12", "train.ms_weight=0.5", "train.amp=counted", "train.eval_every=4", "train.eval_samples=50",
            "train.eval_metrics=fid,feature_mean", "train.eval_metric=mean_gap"]
    assert tool("train", *argv, "train.steps=4") == 0
    out = capsys.readouterr().out
    assert "train.amp=counted: float32, every update counted" in out and "mean_gap_lenet_fashion" in out
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert all(np.isfinite(r["ms"]) for r in rows if "ms" in r) and any("ms" in r for r in rows)
    state = json.loads((_ckpt(run, 4) / "state.json").read_text())
    assert state["amp"] == {"updates": 8}  # one D and one G update a step
    assert state["terms"]["ModeSeeking"]["mean"] != 0.0
    best = json.loads((run / "checkpoints" / "best" / "state.json").read_text())
    assert best["eval"]["metric"] == "mean_gap_lenet_fashion"  # best/ by the new metric, lower is better
    assert list(state["config"]["model"]).count("hidden") == 1 and state["config"]["train"]["ms_weight"] == 0.5
    # a resume continues the precision's count and the term's running mean from the checkpoint
    assert tool("train", *argv, "train.steps=6", "--resume") == 0
    resumed = json.loads((_ckpt(run, 6) / "state.json").read_text())
    assert resumed["amp"] == {"updates": 12}
    # scored with the new metric through tools/eval.py, on the new model's checkpoint
    capsys.readouterr()
    assert tool("eval", "--checkpoint", str(run), "--num", "50", "--metrics", "feature_mean", "--data-root",
                BUNDLED_DIR) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["mean_gap_lenet_fashion"] >= 0 and "fid_lenet_fashion" not in record
    assert tool("generate", "--checkpoint", str(run), "--num", "2", "--out", str(tmp_path / "g")) == 0


def test_their_keys_are_in_the_help_and_their_errors_name_them(extended, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tool("train", "--help")
    shown = capsys.readouterr().out
    assert "train.ms_weight = 0.0  # weight of the mode seeking term (0 = off)" in shown
    assert "model.name=tiny_ext: tiny_ext: one hidden layer in G and in D" in shown
    assert "model.hidden = 16  # G and D: the width of their one hidden layer" in shown
    quick = ["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(tmp_path / "run"), "-o", *TINY]
    for override, expected in (("train.ms_weight=-1", "train.ms_weight: must be >= 0, got -1.0"),
                               ("train.amp=int4", "train.amp: must be one of '', float16, bfloat16, counted"),
                               ("model.hidden=8", "model.hidden: a key of tiny_ext, not of dcgan"),
                               ("train.eval_metrics=fid,nope", "train.eval_metrics: unknown metric 'nope' (choose "
                                                               "from fid, kid, is, prdc, class_acc, feature_mean)")):
        assert tool("train", *quick, override) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {expected}"), (override, err)
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {name: tiny_ext, num_classes: 10}\n")
    assert tool("train", "-c", str(config), "--output", str(tmp_path / "run"), "-o", *TINY) == 2
    assert "model.num_classes: tiny_ext draws no classes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_nothing_of_them_is_left_once_unregistered():
    from paddle_gan.config import Config, keys
    from paddle_gan.gan.models import MODELS

    assert "tiny_ext" not in MODELS and "ms_weight" not in keys("train") and not hasattr(Config().train, "ms_weight")
