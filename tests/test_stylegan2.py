"""StyleGAN2 (model.name: stylegan2), its path length term, adaptive augmentation and the time budget:
shapes, the equalized learning rate, demodulation, truncation and style mixing, the path length
against finite differences, second derivatives on the oneDNN operator against Paddle's kernels, a
killed run resumed bit for bit, export, train.minutes and the errors of bad settings."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import BUNDLED_DIR, CONFIGS, REPO, TINY, assert_same_state, read_jsonl, tool, train_cmd

SG2 = os.path.join(CONFIGS, "stylegan2_fashion_mnist.yaml")
# the config at tiny widths on the bundled split: a step in tens of milliseconds
SMALL_SG2 = ["data.split=test", "model.g_channels=4", "model.d_channels=4", "model.w_dim=16", "model.max_channels=16",
             "model.mapping_layers=2", "model.z_dim=16", "train.eval_every=0"]


def _model(**keys):
    from paddle_gan.config import load_config

    overrides = [f"model.{k}={v}" for k, v in {"g_channels": 4, "d_channels": 4, "w_dim": 16, "max_channels": 16,
                                                "mapping_layers": 2, "z_dim": 16, **keys}.items()]
    return load_config(SG2, overrides)


def _build(**keys):
    from paddle_gan.gan.models import build_models

    paddle.seed(0)
    cfg = _model(**keys)
    return (*build_models(cfg.model), cfg)


@pytest.mark.parametrize("size, channels", [(32, 1), (32, 3), (64, 1), (64, 3)])
def test_shapes_at_32_and_64_grey_and_rgb(size, channels):
    G, D, cfg = _build(img_size=size, channels=channels)
    assert G.num_ws == 2 * {32: 3, 64: 4}[size] + 2  # a w per conv, one more for the last toRGB
    G.train()
    x = G(paddle.randn([4, 16]))
    assert x.shape == [4, channels, size, size] and np.isfinite(x.numpy()).all()
    assert D(x).shape == [4, 1] and D.features(x).shape == [4, D.feature_dim]


def test_equalized_learning_rate_and_the_mappings_multiplier():
    from paddle_gan.gan.models.stylegan2_layers import EqualConv, EqualLinear

    conv = EqualConv(64, 32, 3)
    assert conv.gain == pytest.approx(1 / np.sqrt(64 * 9)) and abs(float(conv.weight.std()) - 1) < 0.05
    mapping = EqualLinear(256, 256, act=True, lr_mul=0.01)  # stored N(0, 1/0.01^2), run at 0.01/sqrt(fan_in)
    assert mapping.gain == pytest.approx(0.01 / 16) and abs(float(mapping.weight.std()) / 100 - 1) < 0.05
    # the multiplier scales a learning step: the same Adam step moves the run-time weight 100x less
    plain = EqualLinear(256, 256, lr_mul=1.0)
    for layer in (mapping, plain):
        opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=layer.parameters())
        before = (layer.weight * layer.gain).numpy()
        layer(paddle.randn([8, 256])).sum().backward()
        opt.step()
        layer.moved = np.abs((layer.weight * layer.gain).numpy() - before).mean()
    assert mapping.moved / plain.moved == pytest.approx(0.01, rel=0.05)


def test_demodulation_keeps_unit_variance():
    from paddle_gan.gan.models.stylegan2_layers import demodulation

    paddle.seed(1)
    x, w = paddle.randn([16, 64, 8, 8]), paddle.randn([32, 64, 3, 3])
    styles = paddle.rand([16, 64]) * 2 + 0.1  # any positive scales
    y = paddle.nn.functional.conv2d(x * styles.reshape([16, 64, 1, 1]), w, padding=1)
    y = y * demodulation(w, styles).reshape([16, 32, 1, 1])
    inner = y[:, :, 1:-1, 1:-1]  # (away from the zero padding)
    assert float(inner.std()) == pytest.approx(1.0, rel=0.05)


def test_truncation_pulls_every_z_to_the_average():
    G, _, _ = _build()
    G.train()
    G(paddle.randn([64, 16]))  # the running mean of w moves in training
    G.eval()
    z = paddle.randn([3, 16])
    plain = G(z).numpy()
    G.truncation_psi = 0.0
    one = G(z).numpy()
    assert np.abs(one - one[:1]).max() < 1e-6 and np.abs(plain - plain[:1]).max() > 1e-3  # one image for every z
    G.truncation_psi = 1.0
    assert np.array_equal(G(z).numpy(), plain)


def test_style_mixing_comes_from_the_seeded_rng():
    G, _, _ = _build()
    G.train()
    G.style_mixing = 1.0
    z = paddle.randn([4, 16])
    runs = []
    for seed in (5, 5, 6):
        paddle.seed(seed)
        runs.append(G.styles(z).numpy())
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
    w0 = runs[0]
    assert not np.allclose(w0[:, 0], w0[:, -1])  # the layers after the crossover have another w


def test_path_length_against_finite_differences():
    """|J^T y| of the term, for one image, against the Jacobian taken by central differences in w."""
    from paddle_gan.gan.path_length import PathLength

    paddle.seed(2)
    G, _, _ = _build(mapping_layers=1)
    G.eval()  # fixed noise: the same function of w at every call
    G.num_ws, z = G.num_ws, paddle.randn([1, 16])
    ws = G.styles(z).detach()
    ws.stop_gradient = False
    img = G.synthesis(ws)
    paddle.seed(3)
    y = paddle.randn(img.shape) / np.sqrt(img.shape[2] * img.shape[3])
    (grad,) = paddle.grad((img * y).sum(), ws)
    want = np.sqrt((grad.numpy() ** 2).sum(axis=2).mean(axis=1))
    eps, base = 1e-2, ws.numpy().astype(np.float64)
    fd = np.zeros_like(base)
    for i in range(base.shape[1]):
        for j in range(base.shape[2]):
            d = np.zeros_like(base)
            d[0, i, j] = eps
            plus = (G.synthesis(paddle.to_tensor((base + d).astype(np.float32))) * y).sum()
            minus = (G.synthesis(paddle.to_tensor((base - d).astype(np.float32))) * y).sum()
            fd[0, i, j] = (float(plus) - float(minus)) / (2 * eps)
    assert np.allclose(np.sqrt((fd ** 2).sum(axis=2).mean(axis=1)), want, rtol=2e-3)
    term = PathLength(2.0, 4, 0.01, 1)
    paddle.seed(3)
    got = term.lengths(G, z)
    assert float(got[0]) == pytest.approx(float(want[0]), rel=1e-4)


def test_second_derivatives_on_the_operator_equal_paddles_kernels():
    """The R1 and path length penalties' gradients through the modulated and resampling convolutions, on
    the oneDNN operator and on Paddle's own kernels, from the same weights."""
    from paddle_gan import ops
    from paddle_gan.gan.path_length import PathLength

    results = []
    for onednn in (False, True):
        G, D, _ = _build()
        G.eval()
        if onednn:
            ops.use_onednn(G)
            ops.use_onednn(D)
        paddle.seed(4)
        z = paddle.randn([4, 16])
        x = G(z).detach()
        x.stop_gradient = False
        (g,) = paddle.grad(D(x).sum(), x, create_graph=True)
        r1 = paddle.grad((g ** 2).sum(), list(D.parameters()), allow_unused=True)  # (D's last bias: unused)
        paddle.seed(5)
        pl = PathLength(2.0, 4, 0.01, 1).lengths(G, z).mean()
        pl_grads = paddle.grad(pl, [p for p in G.parameters() if not p.stop_gradient], allow_unused=True)
        results.append([t.numpy() for t in list(r1) + list(pl_grads) if t is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(a).max()))


ARGS = ["-c", SG2, "-o", *TINY, *SMALL_SG2, "train.r1_every=2", "train.pl_every=2", "train.ada_target=0.3",
        "train.ada_kimg=1", "train.ada_interval=2", "train.ema=0.9", "train.keep_checkpoints=0"]


def test_a_killed_run_with_lazy_r1_path_length_ada_and_ema_resumes_bit_for_bit(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert tool("train", "--output", str(straight), *ARGS, "train.steps=10") == 0
    proc = subprocess.Popen(train_cmd("--output", str(killed), *ARGS, "train.steps=10"), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:  # killed once step 6 is logged: checkpoint 4 is the newest whole one
        if line.startswith("step 6/10"):
            proc.kill()
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert tool("train", "--output", str(killed), "--resume", *ARGS, "train.steps=10") == 0
    last = "step_0000010"
    for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt", "G_ema.pdparams"):
        assert_same_state(straight / "checkpoints" / last / f, killed / "checkpoints" / last / f)
    state = json.loads((straight / "checkpoints" / last / "state.json").read_text())
    assert set(state["terms"]) == {"PathLength", "AdaptiveAugment"} and state["terms"]["PathLength"]["mean"] > 0
    assert state["terms"] == json.loads((killed / "checkpoints" / last / "state.json").read_text())["terms"]
    rows = [r for r in read_jsonl(straight / "metrics.jsonl") if "loss_D" in r]
    assert all("ada_p" in r for r in rows) and max(r["ada_p"] for r in rows) > 0  # logged, and it moved


def test_export_with_truncation_gives_the_generators_images(tmp_path, capsys):
    run = tmp_path / "run"
    assert tool("train", "-c", SG2, "--output", str(run), "-o", *TINY, *SMALL_SG2, "train.steps=2") == 0
    from paddle_gan.run.generator import open_generator

    gen = open_generator(str(run / "checkpoints" / "step_0000002"))
    gen.G.truncation_psi = 0.7
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    want = gen.G(paddle.to_tensor(z)).numpy()
    assert tool("export", "--checkpoint", str(run), "--out", str(tmp_path / "x"), "--format", "onnx",
                "--truncation", "0.7") == 0
    got = paddle.jit.load(str(tmp_path / "x" / "generator"))(paddle.to_tensor(z)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    import onnxruntime

    onnx_out = onnxruntime.InferenceSession(str(tmp_path / "x" / "generator.onnx")).run(None, {"z": z})[0]
    np.testing.assert_allclose(onnx_out, want, atol=1e-4)
    assert json.loads((tmp_path / "x" / "export.json").read_text())["truncation"] == 0.7
    assert tool("generate", "--checkpoint", str(run), "--num", "2", "--truncation", "0", "--out",
                str(tmp_path / "g")) == 0
    for bad in ("1.5", "-0.1"):
        assert tool("generate", "--checkpoint", str(run), "--truncation", bad, "--out", str(tmp_path / "b")) == 2
        assert "--truncation must be in [0, 1]" in capsys.readouterr().err


def test_the_time_budget_stops_saves_and_continues(tmp_path, capsys):
    run = tmp_path / "run"
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY,
                "model.g_channels=8", "model.d_channels=8", "train.steps=1000", "train.minutes=0.0001") == 0
    out = capsys.readouterr().out
    assert "train.minutes=0.0001 reached at step 1;" in out and "continue with: " in out
    assert os.listdir(run / "checkpoints") == ["step_0000001"]
    assert tool("train", "--resume", str(run), "-o", "train.steps=3", "train.minutes=0") == 0
    assert "done: step 3" in capsys.readouterr().out


@pytest.mark.parametrize("override, expected", [
    ("model.img_size=48", "model.img_size: stylegan2 builds 32 or 64 pixels, got 48"),
    ("model.mapping_layers=0", "model.mapping_layers: must be >= 1, got 0"),
    ("model.num_classes=10", "model.num_classes: stylegan2 here is unconditional (0)"),
    ("train.style_mixing=1.5", "train.style_mixing: must be <= 1, got 1.5"),
])
def test_bad_settings_are_one_line_and_no_run_folder(tmp_path, capsys, override, expected):
    assert tool("train", "-c", SG2, "--output", str(tmp_path / "run"), "-o", *TINY, *SMALL_SG2, override) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {expected}"] and not (tmp_path / "run").exists()


def test_path_length_needs_a_mapping_network(tmp_path, capsys):
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(tmp_path / "r"), "-o",
                *TINY, "train.pl_weight=2") == 2
    assert "train.pl_weight: path length regularisation needs a G with a mapping network (model.name stylegan2)" \
        in capsys.readouterr().err


@pytest.mark.parametrize("config, extra", [("stylegan2_fashion_mnist.yaml", []),
                                           ("stylegan2_anime64.yaml", ["data.name=fashion_mnist", "model.channels=1",
                                                                       f"data.root={BUNDLED_DIR}"])])
def test_the_stylegan2_configs_train(tmp_path, config, extra):
    run = tmp_path / "run"
    assert tool("train", "-c", os.path.join(CONFIGS, config), "--output", str(run), "-o", *TINY, *SMALL_SG2, *extra,
                "train.steps=2") == 0
    assert (run / "checkpoints" / "step_0000002" / "G_ema.pdparams").exists()


def test_adaptive_augmentation_follows_d_and_keeps_its_state():
    """p rises while D is sure of the reals (mean sign above the target), falls otherwise, by
    images / (kimg x 1000) per adjustment; an image is augmented by each policy with probability p."""
    from paddle_gan.gan.ada import AdaptiveAugment

    ada = AdaptiveAugment(["translation", "cutout"], target=0.6, kimg=1, interval=2)
    x = paddle.randn([8, 1, 16, 16])
    assert ada(x) is x  # p = 0: nothing drawn, nothing changed
    for _ in range(4):
        ada.observe(paddle.ones([8, 1]))  # every real judged real: overfitting
    assert ada.p == pytest.approx(2 * 16 / 1000)
    saved = ada.state_dict()
    ada.observe(-paddle.ones([8, 1]))  # half an interval: kept in the state, not yet applied
    half = ada.state_dict()
    assert half["p"] == saved["p"] and half["signs"] == -8 and half["seen"] == 8
    again = AdaptiveAugment(["translation", "cutout"], target=0.6, kimg=1, interval=2)
    again.set_state_dict(half)
    for a in (ada, again):
        a.observe(-paddle.ones([8, 1]))
    assert ada.p == again.p == pytest.approx(saved["p"] - 16 / 1000)
    ada.p = 1.0
    paddle.seed(0)
    out = ada(x)
    assert out.shape == x.shape and not np.allclose(out.numpy(), x.numpy())


def test_stylegan2_trains_in_bfloat16_where_the_cpu_has_it(tmp_path, capsys):
    from paddle_gan.gan.precision import _bfloat16_fails, cpu_bfloat16

    if cpu_bfloat16() is None or _bfloat16_fails():
        pytest.skip("this CPU has no bfloat16 arithmetic oneDNN runs (AMX or AVX512-BF16)")
    run = tmp_path / "run"
    assert tool("train", "-c", SG2, "--output", str(run), "-o", *TINY, *SMALL_SG2, "train.steps=4", "train.r1_every=2",
                "train.pl_every=2", "train.amp=bfloat16") == 0
    assert "| bfloat16 convolutions on" in capsys.readouterr().out.splitlines()[0]
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "loss_D" in r]
    assert all(np.isfinite(r["loss_D"]) and np.isfinite(r["loss_G"]) for r in rows)
