"""Config loading: defaults, strict keys and types in YAML and -o overrides, and the CLI's refusal."""
import os
import subprocess
import sys

import pytest
from conftest import CONFIGS, REPO, run_train

from paddle_gan.config import Config, ConfigError, diff, load_config


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_and_overrides():
    cfg = load_config(os.path.join(CONFIGS, "dcgan_mnist.yaml"),
                      ["train.steps=7", "opt_G.lr=1e-4", "model.g_channels=8", "data.root=/x y", "data.download=false"])
    assert cfg.train.steps == 7 and cfg.opt_G.lr == 1e-4 and cfg.opt_D.lr == 2e-4
    assert cfg.model.arch.g_channels == 8 and cfg.data.root == "/x y" and cfg.data.download is False
    assert cfg.model.name == "dcgan" and cfg.train.batch_size == 64


def test_yaml_number_without_dot_is_a_float(tmp_path):
    assert load_config(write(tmp_path, "opt_D:\n  lr: 2e-4\n")).opt_D.lr == 2e-4  # PyYAML reads it as a str


@pytest.mark.parametrize("text, key", [
    ("train:\n  stepz: 3\n", "train.stepz"),
    ("trian:\n  steps: 3\n", "trian"),
    ("train:\n  steps: ten\n", "train.steps"),
    ("train:\n  steps: 3.5\n", "train.steps"),
    ("train:\n  batch_size: -4\n", "train.batch_size"),
    ("opt_G:\n  lr: fast\n", "opt_G.lr"),
    ("model:\n  name: stylegan\n", "model.name"),
    ("model:\n  name: mlp\n  g_hidden: 128\n", "model.g_hidden"),
    ("model:\n  g_hidden: [128]\n", "model.g_hidden: a key of mlp, not of dcgan (dcgan's own keys: g_channels"),
    ("model:\n  g_channels: 8\n  name: mlp\n", "model.g_channels: a key of dcgan, dcgan_dense, resnet, stylegan2, not of mlp"),
    ("model:\n  arch: 3\n", "model.arch: unknown key"),
    ("data:\n  download: maybe\n", "data.download"),
    ("data:\n  name: image_folder\n", "data.root"),
    ("model:\n  img_size: 48\n", "model.img_size"),
    ("train: 5\n", "train"),
])
def test_bad_yaml_names_the_key(tmp_path, text, key):
    """A key or a value the file got wrong: the error names the file and the key (a value that is only
    wrong with the others, the key)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).removeprefix(f"{path}: ").startswith(key) and "\n" not in str(e.value)


@pytest.mark.parametrize("override, key", [
    ("train.nope=1", "train.nope"), ("train.batch_size=abc", "train.batch_size"), ("opt_G.lr=abc", "opt_G.lr"),
    ("opt_G.lr=-1", "opt_G.lr"), ("model.name=foo", "model.name"), ("steps", "override 'steps'"),
    ("train.steps=[1", "train.steps"), ("train.amp=int8", "train.amp"), ("train.to_static=maybe", "train.to_static"),
])
def test_bad_override_names_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(os.path.join(CONFIGS, "quickstart.yaml"), [override])
    assert str(e.value).startswith(key), str(e.value)


def test_each_model_has_its_own_keys_in_one_flat_section(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  g_hidden: [32]\n  name: mlp\n"), ["model.d_hidden=[16, 8]"])
    assert (cfg.model.name, cfg.model.arch.g_hidden, cfg.model.arch.d_hidden) == ("mlp", [32], [16, 8])
    flat = cfg.to_dict()["model"]
    assert "g_hidden" in flat and "g_channels" not in flat and "arch" not in flat
    # a model switched by an override starts from its own defaults; a key the file gave the other one is an error
    with pytest.raises(ConfigError, match="model.g_channels: a key of dcgan"):
        load_config(os.path.join(CONFIGS, "quickstart.yaml"), ["model.name=mlp"])
    assert load_config(write(tmp_path, "model:\n  name: mlp\n"), ["model.name=dcgan"]).model.arch.g_channels == 64


def test_a_checkpoint_config_from_before_model_keys_still_reads():
    """Checkpoints written when every model shared one flat section list every model's keys."""
    from paddle_gan.config import from_dict

    old = {"model": {"name": "mlp", "z_dim": 100, "img_size": 28, "channels": 1, "g_channels": 64, "d_channels": 64,
                     "g_hidden": [32], "d_hidden": [16], "dropout": 0.0, "init": "paddle", "d_norm": "auto",
                     "spectral_norm": False, "num_classes": 0, "d_cond": "projection"}}
    cfg = from_dict(old, lenient_model_keys=True)
    assert cfg.model.arch.g_hidden == [32] and not hasattr(cfg.model.arch, "g_channels")
    with pytest.raises(ConfigError, match="model.g_channels: a key of dcgan"):
        from_dict(old)  # a config file is strict


def test_a_typo_is_suggested_and_the_file_named(tmp_path):
    path = write(tmp_path, "train:\n  batchsize: 8\n")
    with pytest.raises(ConfigError, match=r"c.yaml: train.batchsize: unknown key \(did you mean batch_size\?\)$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^model.g_chanels: unknown key \(did you mean g_channels\?\)$"):
        load_config(os.path.join(CONFIGS, "quickstart.yaml"), ["model.g_chanels=8"])
    with pytest.raises(ConfigError, match=r"unknown key \(known in train: steps, minutes, batch_size"):
        load_config(os.path.join(CONFIGS, "quickstart.yaml"), ["train.zzz=8"])  # nothing close: the list


def test_resume_diff_separates_identity_from_hyperparameters():
    a, b = Config(), Config()
    b.model.z_dim, b.data.split, b.train.steps, b.opt_G.lr = 64, "test", 5, 1e-3
    identity, other = diff(a, b)
    assert identity == ["data.split: 'train' -> 'test'", "model.z_dim: 100 -> 64"]
    assert other == ["train.steps: 10000 -> 5", "opt_G.lr: 0.0002 -> 0.001"]


@pytest.mark.parametrize("args, key", [
    (["-o", "train.stepz=3"], "train.stepz"),
    (["-o", "train.steps=many"], "train.steps"),
    (["-o", "data.name=image_folder", "data.root="], "data.root"),
])
def test_cli_refuses_bad_config_before_starting(tmp_path, args, key):
    out = tmp_path / "run"
    p = run_train("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out), *args, check=False)
    assert p.returncode == 2
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {key}") and "Traceback" not in p.stderr
    assert not out.exists()  # the run never started


def test_import_without_paddle_gives_install_hint():
    code = "import sys; sys.modules['paddle'] = None; import paddle_gan"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: paddle_gan needs PaddlePaddle: pip install")
