"""Evaluation in training (metrics rows, checkpoints/best, curves.png, progress.gif) and the tools
eval.py, generate.py and export.py on a real tiny run."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from conftest import assert_same_state, quick, read_jsonl, tool, train

from paddle_gan.data import BUNDLED_DIR

EVAL = ["train.eval_every=4", "train.eval_samples=100", "train.eval_metrics=fid,kid,is,prdc"]
FID = "fid_lenet_fashion"


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("eval") / "run"
    quick(run, "train.steps=8", "train.progress_gif=true", *EVAL)
    return run


def test_training_evaluates_keeps_best_and_draws_curves(eval_run, tmp_path):
    from visualdl import LogReader

    from paddle_gan.run.state_json import read_state

    run = eval_run
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if FID in r]
    assert [r["step"] for r in rows] == [4, 8]
    assert {"kid_lenet_fashion", "is_lenet_fashion", "precision_lenet_fashion", "recall_lenet_fashion",
            "density_lenet_fashion", "coverage_lenet_fashion"} <= rows[0].keys()
    reader = LogReader(file_path=str(run / "vdl" / "vdlrecords.paddle_gan.log"))
    assert [(r.id, pytest.approx(r.value, rel=1e-6)) for r in reader.get_data("scalar", f"score/{FID}")] == \
        [(r["step"], r[FID]) for r in rows]
    best = read_state(str(run / "checkpoints" / "best"))  # a complete, verified checkpoint
    winner = min(rows, key=lambda r: r[FID])
    assert best["step"] == winner["step"] and best["eval"]["metric"] == FID and best["eval"]["value"] == winner[FID]
    # the end-of-run pictures
    curves = cv2.imread(str(run / "curves.png"))
    assert curves is not None and curves.shape[0] > 600  # three panels: losses, D outputs, scores
    from PIL import Image

    gif = Image.open(run / "progress.gif")
    assert gif.n_frames == len(os.listdir(run / "samples")) == 3
    # evaluating does not change training: same weights as a run without it
    plain = tmp_path / "plain"
    quick(plain, "train.steps=8")
    for name in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(plain / "checkpoints" / "step_0000008" / name, run / "checkpoints" / "step_0000008" / name)


def test_best_survives_resume_and_only_improves(eval_run, tmp_path):
    from paddle_gan.run.state_json import read_state

    run = tmp_path / "run"
    shutil.copytree(eval_run, run)
    before = read_state(str(run / "checkpoints" / "best"))["eval"]["value"]
    quick(run, "train.steps=16", *EVAL, "--resume")
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if FID in r]
    assert [r["step"] for r in rows] == [4, 8, 12, 16]
    best = read_state(str(run / "checkpoints" / "best"))
    assert best["eval"]["value"] == min(r[FID] for r in rows) <= before
    assert best["step"] == min(rows, key=lambda r: r[FID])["step"]


def test_eval_tool_is_deterministic_and_appends_records(eval_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(eval_run, run)
    ckpt = str(run / "checkpoints" / "step_0000008")
    outs = []
    for seed in (0, 0, 1):
        assert tool("eval", "--checkpoint", ckpt, "--num", "200", "--seed", str(seed)) == 0
        outs.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    a, b, c = outs
    assert a[FID] == b[FID] and a["kid_lenet_fashion"] == b["kid_lenet_fashion"]  # same checkpoint + seed
    assert a[FID] != c[FID]
    assert a["step"] == 8 and a["reference"] == "fashion_mnist:test" and a["extractor"] == "lenet_fashion"
    assert len(read_jsonl(run / "metric-lenet_fashion.jsonl")) == 3
    # real images against real images: far below the tiny generator's score
    assert tool("eval", "--real", "fashion_mnist:test", "--num", "200", "--data-root", BUNDLED_DIR) == 0
    floor = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert floor[FID] < a[FID] / 10 and floor["real"] == "fashion_mnist:test"
    assert tool("eval", "--checkpoint", str(tmp_path / "nothing")) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert tool("eval", "--checkpoint", ckpt, "--data", "svhn") == 2
    assert "unknown dataset 'svhn'" in capsys.readouterr().err


def test_generate_from_a_lone_checkpoint(eval_run, tmp_path, capsys):
    alone = tmp_path / "somewhere" / "ckpt"
    shutil.copytree(eval_run / "checkpoints" / "best", alone)
    out = tmp_path / "out"
    assert tool("generate", "--checkpoint", str(alone), "--num", "5", "--out", str(out)) == 0
    files = sorted(os.listdir(out))
    assert files == [f"{i:06d}.png" for i in range(5)] + ["generated.json"]
    img = cv2.imread(str(out / files[0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 32) and img.dtype == np.uint8
    first = (out / files[0]).read_bytes()
    assert tool("generate", "--checkpoint", str(alone), "--num", "5", "--out", str(out)) == 0
    assert (out / files[0]).read_bytes() == first  # same seed, same images
    assert tool("generate", "--checkpoint", str(alone), "--num", "16", "--grid", "--out", str(tmp_path / "grid")) == 0
    assert cv2.imread(str(tmp_path / "grid" / "grid.png")).shape[:2] == (2 * (4 * 34 + 2), 2 * (4 * 34 + 2))  # shown x2
    assert tool("generate", "--checkpoint", str(alone), "--interpolate", "3", "--steps", "6",
                "--out", str(tmp_path / "interp")) == 0
    strips = sorted(os.listdir(tmp_path / "interp"))
    assert strips == ["generated.json", "interp_000.png", "interp_001.png", "interp_002.png"]
    assert cv2.imread(str(tmp_path / "interp" / strips[1])).shape[:2] == (2 * (34 + 2), 2 * (6 * 34 + 2))  # x2 too
    # --gif needs the run's samples: there are none next to a lone checkpoint
    assert tool("generate", "--checkpoint", str(alone), "--gif", "--out", str(out)) == 2
    assert "no sample grids" in capsys.readouterr().err
    assert tool("generate", "--checkpoint", str(eval_run / "checkpoints" / "best"), "--gif",
                "--out", str(tmp_path / "gif")) == 0
    from PIL import Image

    assert Image.open(tmp_path / "gif" / "progress.gif").n_frames == 3


def test_slerp_endpoints_and_norms():
    from paddle_gan.gan.sample import interpolation_z, slerp

    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    # orthogonal unit-ish vectors: the midpoint is (a + b) / (2 cos 45deg) = (a + b) / sqrt(2)
    np.testing.assert_allclose(path[2], (a + b) / np.sqrt(2), atol=1e-6)
    z = interpolation_z(0, 2, 7, 100)
    assert z.shape == (2, 7, 100)
    norms = np.linalg.norm(z, axis=2)
    assert norms.min() > 0.8 * min(norms[:, 0].min(), norms[:, -1].min())  # no dip through the origin


def test_export_matches_the_dygraph_generator(eval_run, tmp_path, capsys):
    import paddle

    from paddle_gan.run.generator import open_generator

    ckpt = str(eval_run / "checkpoints" / "best")
    gen = open_generator(ckpt)
    G, cfg = gen.G, gen.cfg
    z = np.random.default_rng(5).standard_normal((6, cfg.model.z_dim)).astype(np.float32)
    with paddle.no_grad():
        want = G(paddle.to_tensor(z)).numpy()
    assert tool("export", "--checkpoint", ckpt, "--out", str(tmp_path / "f")) == 0
    exported = paddle.jit.load(str(tmp_path / "f" / "generator"))
    got = exported(paddle.to_tensor(z)).numpy()
    assert got.shape == (6, 1, 32, 32)
    np.testing.assert_allclose(got, want, atol=1e-5)
    info = json.load(open(tmp_path / "f" / "export.json"))
    assert "[-1, 1]" in info["output"] and info["model"]["z_dim"] == 100
    assert tool("export", "--checkpoint", ckpt, "--out", str(tmp_path / "u"), "--uint8") == 0
    u = paddle.jit.load(str(tmp_path / "u" / "generator"))(paddle.to_tensor(z)).numpy()
    assert u.dtype == np.uint8 and u.shape == (6, 32, 32, 1)
    ref = np.clip(np.round((want + 1) * 127.5), 0, 255).transpose(0, 2, 3, 1)
    assert np.abs(u.astype(int) - ref).max() <= 1  # rounding at .5 may differ by one level


@pytest.mark.parametrize("conditional", [False, True])
def test_onnx_export_runs_in_onnxruntime_as_the_dygraph_generator(tmp_path, conditional):
    """tools/export.py --format onnx: the file runs in onnxruntime and gives the dygraph generator's
    images to within 1e-5 (measured: ~1e-9)."""
    import onnxruntime
    import paddle

    from paddle_gan.run.generator import open_generator

    run = tmp_path / "run"
    extra = ["model.num_classes=10", "model.g_cond=cbn"] if conditional else []
    assert train(run, "train.steps=2", *extra) == 0
    ckpt = str(run / "checkpoints" / "step_0000002")
    assert tool("export", "--checkpoint", ckpt, "--out", str(tmp_path / "x"), "--format", "onnx") == 0
    gen = open_generator(ckpt)
    z = np.random.default_rng(3).standard_normal((5, 100)).astype(np.float32)
    labels = np.array([0, 3, 7, 9, 1], np.int64)
    with paddle.no_grad():
        want = (gen.G(paddle.to_tensor(z), paddle.to_tensor(labels)) if conditional else gen.G(paddle.to_tensor(z))).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "x" / "generator.onnx"))
    assert [i.name for i in session.get_inputs()] == (["z", "label"] if conditional else ["z"])
    got = session.run(None, {"z": z, **({"label": labels} if conditional else {})})[0]
    assert got.shape == (5, 1, 32, 32) and np.abs(got - want).max() < 1e-5
    assert "onnxruntime.InferenceSession" in json.load(open(tmp_path / "x" / "export.json"))["onnx"]


def test_missing_evaluator_weights_stop_the_run_before_it_writes(tmp_path, monkeypatch, capsys):
    from conftest import CONFIGS, TINY

    from paddle_gan.metrics import lenet

    monkeypatch.setattr(lenet, "WEIGHTS_DIR", str(tmp_path / "no-weights"))
    out = tmp_path / "run"
    code = tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out), "-o", *TINY,
                "train.eval_every=4")
    err = capsys.readouterr().err
    assert code == 2 and "no evaluator weights; train them with python tools/train_evaluator.py --data fashion_mnist" in err
    assert not out.exists()


def test_tools_report_an_unwritable_output_in_one_line(eval_run, tmp_path, capsys):
    ckpt = str(eval_run / "checkpoints" / "best")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for name, extra in (("generate", ["--num", "2"]), ("export", [])):
        assert tool(name, "--checkpoint", ckpt, "--out", str(blocker / "out"), *extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], (name, err)


@pytest.mark.parametrize("name", ["fashion_mnist", "fashion_mnist_cond", "fashion_mnist_resnet", "fashion_mnist_stylegan2"])
def test_the_pretrained_generators_score_what_the_readme_says(name, tmp_path, capsys):
    """The zoo's generators (generator-only checkpoints in paddle_gan/zoo) load offline, generate, and
    score their recorded 2000-sample FID (and class accuracy) on the bundled test split."""
    from paddle_gan import zoo
    from paddle_gan.data import BUNDLED_DIR

    path = zoo.path(name)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size <= 5e6
    recorded = json.load(open(os.path.join(path, "zoo.json")))
    for k in ("eval_10000_train", "eval_2000_test"):  # the entry itself scored, no machine's paths shipped
        assert recorded[k]["checkpoint"] == f"paddle_gan/zoo/{name}", k
        assert not [v for v in recorded[k].values() if isinstance(v, str) and os.path.isabs(v)], k
    assert tool("eval", "--pretrained", name, "--num", "2000", "--data", "fashion_mnist:test",
                "--data-root", BUNDLED_DIR) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["fid_lenet_fashion"] == pytest.approx(recorded["fid_lenet_fashion_2000_test"], rel=0.02)
    if "class_acc_lenet_fashion_2000_test" in recorded:
        assert record["class_acc_lenet_fashion"] == pytest.approx(recorded["class_acc_lenet_fashion_2000_test"], abs=0.01)
    assert tool("generate", "--pretrained", name, "--num", "4", "--out", str(tmp_path / "g")) == 0
    assert len(os.listdir(tmp_path / "g")) == 5  # and generated.json
    assert tool("generate", "--pretrained", "nope", "--out", str(tmp_path / "n")) == 2
    assert f"choose from {', '.join(zoo.names())}" in capsys.readouterr().err
