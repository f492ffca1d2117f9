"""The real tools/train.py on the bundled Fashion-MNIST split: run folder, exact resume, VisualDL."""
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import (
    CONFIGS,
    REPO,
    TINY,
    assert_same_state,
    quick,
    read_jsonl,
    run_train,
    train_cmd,
)

CKPT_FILES = {"G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt", "fixed_noise.npy", "state.json"}


def vdl_scalars(run_dir, tag):
    from visualdl import LogReader

    path = os.path.join(run_dir, "vdl", "vdlrecords.paddle_gan.log")
    return [(r.id, r.value) for r in LogReader(file_path=path).get_data("scalar", tag)]


def test_run_folder_contents(tmp_path):
    run = tmp_path / "run"
    p = quick(run, "train.steps=8", "train.keep_checkpoints=1")
    assert "step 8/8" in p.stdout and "img/s" in p.stdout and "ETA" in p.stdout
    assert sorted(os.listdir(run)) == ["checkpoints", "config.yaml", "curves.png", "metrics.jsonl", "samples", "train.lock",
                                   "vdl"]
    # rotation keeps only the newest checkpoint; each is complete
    assert os.listdir(run / "checkpoints") == ["step_0000008"]
    assert set(os.listdir(run / "checkpoints" / "step_0000008")) == CKPT_FILES
    assert sorted(os.listdir(run / "samples")) == ["step_0000000.png", "step_0000004.png", "step_0000008.png"]
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    for r in rows:
        assert {"step", "loss_D", "loss_G", "D_real", "D_fake", "img_per_s", "lr_G", "lr_D"} <= r.keys()
        assert 0 < r["D_real"] < 1 and 0 < r["D_fake"] < 1 and r["img_per_s"] > 0 and r["lr_G"] == 2e-4
    for tag, key in (("GAN/loss_D", "loss_D"), ("GAN/D(G(z))", "D_fake"), ("lr/D", "lr_D")):
        assert vdl_scalars(run, tag) == [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in rows], tag
    from paddle_gan.config import load_config

    saved = load_config(str(run / "config.yaml"))  # the resolved config is itself a valid config
    assert saved.train.steps == 8 and saved.train.batch_size == 16 and saved.data.limit == 512


def test_sample_grid_once_per_epoch(tmp_path):
    run = tmp_path / "run"
    quick(run, "train.steps=9", "train.sample_every=0", "data.limit=70")  # 70 // 16 = 4 steps per epoch
    assert sorted(os.listdir(run / "samples")) == [f"step_{s:07d}.png" for s in (0, 4, 8, 9)]


def test_generator_rebuilt_from_checkpoint_folder_alone(tmp_path):
    import paddle

    from paddle_gan.run.generator import open_generator

    run = tmp_path / "run"
    quick(run, "train.steps=4")
    alone = tmp_path / "elsewhere" / "ckpt"
    shutil.copytree(run / "checkpoints" / "step_0000004", alone)
    shutil.rmtree(run)  # no config.yaml, no run folder: only the checkpoint
    gen = open_generator(str(alone))
    G, cfg = gen.G, gen.cfg
    assert cfg.model.name == "dcgan" and cfg.model.img_size == 32
    z = paddle.to_tensor(np.load(alone / "fixed_noise.npy")[:5])
    with paddle.no_grad():
        out = G(z).numpy()
    assert out.shape == (5, 1, 32, 32) and np.abs(out).max() <= 1.0
    # the weights are the checkpoint's, not a fresh init
    sd = paddle.load(str(alone / "G.pdparams"))
    np.testing.assert_array_equal(G.state_dict()["net.0.weight"].numpy(), sd["net.0.weight"].numpy())


def test_exact_resume_matches_straight_run(tmp_path):
    """2N steps straight == N steps, stop, --resume, N more: weights, Adam moments, metrics."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    quick(straight, "train.steps=12")
    quick(resumed, "train.steps=6")
    p = run_train("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(resumed), "--resume",
                  "-o", *TINY, "train.steps=12")
    assert "resumed from" in p.stdout and "step_0000006" in p.stdout
    a, b = straight / "checkpoints" / "step_0000012", resumed / "checkpoints" / "step_0000012"
    for name in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(a / name, b / name)
    rows_a, rows_b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [r["step"] for r in rows_b] == [2, 4, 6, 8, 10, 12]
    for ra, rb in zip(rows_a, rows_b):
        for k in ("step", "loss_D", "loss_G", "D_real", "D_fake", "epoch"):
            assert ra[k] == rb[k], (k, ra, rb)
    # the same fixed-noise grid at the same step from both runs
    assert (straight / "samples" / "step_0000012.png").read_bytes() == (resumed / "samples" / "step_0000012.png").read_bytes()
    # VisualDL after the resume: one logdir, each step once, matching metrics.jsonl
    for tag, key in (("GAN/loss_D", "loss_D"), ("GAN/loss_G", "loss_G"), ("GAN/D(x)", "D_real"), ("GAN/D(G(z))", "D_fake"),
                     ("lr/G", "lr_G"), ("perf/img_per_s", "img_per_s")):
        pts = vdl_scalars(resumed, tag)
        assert [s for s, _ in pts] == [r["step"] for r in rows_b], tag
        np.testing.assert_allclose([v for _, v in pts], [r[key] for r in rows_b], rtol=1e-6)
    assert sorted(os.listdir(resumed / "vdl")) == ["position.json", "vdlrecords.paddle_gan.log"]


def test_resume_after_kill_drops_rows_past_the_checkpoint(tmp_path):
    """A run killed after logging step 6 but before saving it resumes from step 4; step 6 appears once."""
    run = tmp_path / "run"
    quick(run, "train.steps=6")
    shutil.rmtree(run / "checkpoints" / "step_0000006")  # as if killed before the step-6 save completed
    (run / "checkpoints" / ".step_0000006.tmp-999").mkdir()  # and a half-written checkpoint left behind
    p = run_train("--output", str(run), "--resume")  # config comes from the checkpoint
    assert "resumed from" in p.stdout and "step_0000004" in p.stdout
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl")]
    assert steps == [2, 4, 6]
    assert [s for s, _ in vdl_scalars(run, "GAN/loss_D")] == [2, 4, 6]
    assert sorted(os.listdir(run / "checkpoints")) == ["step_0000004", "step_0000006"]


def test_vdl_images_survive_resume(tmp_path):
    from visualdl import LogReader

    run = tmp_path / "run"
    quick(run, "train.steps=4")
    quick(run, "train.steps=8", "--resume")
    reader = LogReader(file_path=str(run / "vdl" / "vdlrecords.paddle_gan.log"))
    assert [r.id for r in reader.get_data("image", "samples")] == [4, 8]  # the step-0 grid stays in samples/ only
    assert (run / "samples" / "step_0000000.png").exists()


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path):
    run = tmp_path / "run"
    quick(run, "train.steps=4")
    before = (run / "checkpoints" / "step_0000004" / "G.pdparams").read_bytes()
    p = quick(run, "train.steps=4", check=False)
    assert p.returncode == 2 and "already holds checkpoints" in p.stderr and "--resume" in p.stderr
    assert (run / "checkpoints" / "step_0000004" / "G.pdparams").read_bytes() == before


def test_resume_with_a_different_architecture_is_refused(tmp_path):
    run = tmp_path / "run"
    quick(run, "train.steps=4")
    p = quick(run, "train.steps=8", "model.g_channels=16", "--resume", check=False)
    assert p.returncode == 2
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "model.g_channels: 32 -> 16" in line[0]
    # the same without -c: the checkpoint's config plus -o
    p = run_train("--output", str(run), "--resume", "-o", "model.z_dim=64", "data.split=train", check=False)
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2 and len(line) == 1
    assert "data.split: 'test' -> 'train'" in line[0] and "model.z_dim: 100 -> 64" in line[0]
    # hyper-parameters may change, and the change is printed
    p = run_train("--output", str(run), "--resume", "-o", "train.steps=6", "opt_G.lr=1e-4")
    assert "resume with changed settings: train.steps: 4 -> 6; opt_G.lr: 0.0002 -> 0.0001" in p.stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_finishes(tmp_path, sig, code):
    run = tmp_path / "run"
    args = ["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY,
            "train.steps=100000", "train.save_every=100000"]
    proc = subprocess.Popen(train_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics, deadline = run / "metrics.jsonl", time.time() + 120
    while not (metrics.exists() and metrics.read_text().strip()):  # wait until training really runs
        assert proc.poll() is None and time.time() < deadline, "training did not start"
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    assert (run / "checkpoints").is_dir(), out
    ckpts = os.listdir(run / "checkpoints")
    assert len(ckpts) == 1, ckpts
    stopped = int(ckpts[0].split("_")[1])
    assert f"stopped at step {stopped}" in out
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl")]
    assert steps[-1] == stopped  # the partial interval was logged before exiting
    run_train(*args[:-2], f"train.steps={stopped + 2}", "--resume")
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == stopped + 2


@pytest.mark.parametrize("config, extra", [
    ("gan_mlp_mnist.yaml", ["data.name=fashion_mnist", "data.split=test"]),
    ("gan_mlp_mnist.yaml", ["data.name=fashion_mnist", "data.split=test", "model.g_hidden=[128,256]",
                            "model.d_hidden=[256,128]"]),
    ("dcgan_mnist.yaml", ["data.name=fashion_mnist", "data.split=test"]),
    ("dcgan_fashion_mnist.yaml", ["data.split=test"]),
])
def test_every_mnist_setup_trains(tmp_path, config, extra):
    run = tmp_path / "run"
    quick(run, "train.steps=2", "train.save_every=2", *extra, config=config)
    rows = read_jsonl(run / "metrics.jsonl")
    assert rows[-1]["step"] == 2 and np.isfinite(rows[-1]["loss_D"])
    assert os.path.isdir(run / "checkpoints" / "step_0000002")


def test_anime64_setup_trains_on_an_image_folder(tmp_path):
    import cv2

    folder = tmp_path / "faces" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (80, 72, 3), dtype=np.uint8))
    run = tmp_path / "run"
    run_train("-c", os.path.join(CONFIGS, "dcgan_anime64.yaml"), "--output", str(run), "-o",
              f"data.root={tmp_path / 'faces'}", "train.steps=1", "train.batch_size=4")
    import paddle

    sd = paddle.load(str(run / "checkpoints" / "step_0000001" / "G.pdparams"))
    assert list(sd["fc.0.weight"].shape) == [100, 4 * 4 * 1024]
    grid = cv2.imread(str(run / "samples" / "step_0000001.png"))
    assert grid.shape == (4 * 66 + 2, 4 * 66 + 2, 3)  # the fixed 16-sample grid, 64 px + 2 px padding


@pytest.mark.parametrize("root_kind", ["file", "empty"])
def test_cli_bad_data_is_one_line_and_writes_nothing(tmp_path, root_kind):
    root = tmp_path / "data"
    if root_kind == "file":
        root.write_text("not a folder")
    else:
        root.mkdir()
    out = tmp_path / "run"
    p = run_train("-c", os.path.join(CONFIGS, "dcgan_anime64.yaml"), "--output", str(out), "-o", f"data.root={root}",
                  check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(root) in errors[0]
    assert not out.exists()
