"""paddle_gan.ops: the oneDNN convolution operator against Paddle's own layers, forward and backward,
for every layer shape the configs use; the switch in the trainer; the fallback when it cannot be built."""
import copy
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from conftest import CONFIGS, quick, read_jsonl, run_train

from paddle_gan import ops
from paddle_gan.config import ConfigError, load_config
from paddle_gan.gan.kernels import use_onednn_convs
from paddle_gan.gan.models import build_models

# (layer, input shape): each kind of convolution in configs/*.yaml, with and without bias
LAYERS = [
    (lambda: nn.Conv2DTranspose(100, 64, 4, 1, 0, bias_attr=False), [4, 100, 1, 1]),  # dcgan G: z -> 4x4
    (lambda: nn.Conv2DTranspose(64, 32, 4, 2, 1, bias_attr=False), [4, 64, 4, 4]),  # dcgan G: upsample x2
    (lambda: nn.Conv2DTranspose(32, 16, 4, 2, 1), [4, 32, 8, 8]),  # with bias
    (lambda: nn.Conv2D(16, 32, 4, 2, 1, bias_attr=False), [4, 16, 16, 16]),  # dcgan D: downsample /2
    (lambda: nn.Conv2D(32, 16, 4, 1, 0), [4, 32, 4, 4]),  # dcgan D: 4x4 -> 1x1 logit, with bias
    (lambda: nn.Conv2DTranspose(64, 32, 5, 2, 2, output_padding=1, bias_attr=False), [4, 64, 4, 4]),  # dense G
    (lambda: nn.Conv2D(16, 32, 5, 2, 2), [4, 16, 16, 16]),  # dense D
    (lambda: nn.Conv2D(1, 16, 4, 2, 1, bias_attr=False), [4, 1, 32, 32]),  # D: image -> features
    (lambda: nn.Conv2DTranspose(16, 1, 4, 2, 1), [4, 16, 16, 16]),  # G: features -> image
    (lambda: nn.Conv2DTranspose(32, 3, 5, 2, 2, output_padding=1), [4, 32, 32, 32]),  # dense G -> RGB
]


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


@pytest.mark.parametrize("make, shape", LAYERS)
def test_forward_and_gradients_equal_paddles_layers(make, shape):
    paddle.seed(0)
    ref = make()
    fast = copy.deepcopy(ref)
    assert ops.use_onednn(fast) == 1 and type(fast) in (ops.OneDNNConv2D, ops.OneDNNConv2DTranspose)
    x = paddle.randn(shape)
    x.stop_gradient = False
    y_ref, y_fast = ref(x), fast(x)
    assert y_fast.shape == y_ref.shape
    assert _rel(y_fast, y_ref) < 1e-5
    g = paddle.randn(y_ref.shape)
    grads_ref = paddle.grad(y_ref, [x] + ref.parameters(), g)
    grads_fast = paddle.grad(y_fast, [x] + fast.parameters(), g)
    for a, b in zip(grads_fast, grads_ref):  # input, weight (and bias)
        assert _rel(a, b) < 1e-5


def test_gradients_nobody_needs_are_skipped_and_the_rest_stay_exact():
    """Real images (no input gradient) and D's frozen weights in the G step (no weight gradient)."""
    paddle.seed(0)
    ref = nn.Conv2D(16, 32, 4, 2, 1)
    fast = copy.deepcopy(ref)
    ops.use_onednn(fast)
    x = paddle.randn([4, 16, 8, 8])  # stop_gradient: only the weight gradient is wanted
    for m in (ref, fast):
        m(x).sum().backward()
    assert _rel(fast.weight.grad, ref.weight.grad) < 1e-5 and x.grad is None
    x.stop_gradient = False
    for m in (ref, fast):  # frozen weights: only the input gradient is wanted
        for p in m.parameters():
            p.stop_gradient = True
    (gx_ref,) = paddle.grad(ref(x).sum(), [x])
    (gx_fast,) = paddle.grad(fast(x).sum(), [x])
    assert _rel(gx_fast, gx_ref) < 1e-5


@pytest.mark.parametrize("config", ["quickstart.yaml", "dcgan_fashion_mnist.yaml", "dcgan_anime64.yaml",
                                    "gan_mlp_mnist.yaml"])
def test_the_configs_models_switch_every_convolution_and_keep_their_keys(config):
    cfg = load_config(os.path.join(CONFIGS, config), ["data.root=unused"] if "anime" in config else [])
    G, D = build_models(cfg.model)
    keys = (list(G.state_dict()), list(D.state_dict()))
    convs = [m for net in (G, D) for m in net.sublayers() if isinstance(m, (nn.Conv2D, nn.Conv2DTranspose))]
    assert bool(convs) == ops.has_eligible(G, D) == (cfg.model.name != "mlp")  # the trainer skips the operator without any
    switched = ops.use_onednn(G) + ops.use_onednn(D)
    assert (list(G.state_dict()), list(D.state_dict())) == keys
    assert switched == len(convs) == len([m for net in (G, D) for m in net.sublayers()
                                          if type(m) in (ops.OneDNNConv2D, ops.OneDNNConv2DTranspose)])


@pytest.mark.parametrize("slope", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (64, 64, 16, 16)])  # the last one runs on several threads
def test_activations_equal_paddles_bit_for_bit_to_the_second_derivative(slope, shape):
    """ops.activation (act.cc) against F.relu / F.leaky_relu: values, gradients and the gradient a
    penalty on the input gradient sends back (Paddle's double-grad kernels), bit for bit, at zeros too."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(shape).astype("float32")
    x0.flat[::5] = 0.0  # Paddle's kernels take x >= 0 (LeakyReLU's backward) or x > 0 (the rest) there
    g0 = rng.standard_normal(shape).astype("float32")
    paddles = (lambda x: F.relu(x)) if slope == 0.0 else (lambda x: F.leaky_relu(x, slope))
    got = {}
    for name, act in (("paddle", paddles), ("ops", lambda x: ops.activation(x, slope))):
        x = paddle.to_tensor(x0, stop_gradient=False)
        g = paddle.to_tensor(g0, stop_gradient=False)
        y = act(x)
        (dx,) = paddle.grad((y * g).sum(), [x], create_graph=True)
        (dg,) = paddle.grad((dx * dx).sum(), [g])
        got[name] = [t.numpy() for t in (y, dx, dg)]
    for what, a, b in zip(("values", "gradients", "second derivative"), got["paddle"], got["ops"]):
        assert a.tobytes() == b.tobytes(), what
    x64 = paddle.to_tensor(x0.astype("float64"))
    assert ops.activation(x64, slope).dtype == paddle.float64  # other dtypes: Paddle's kernels


def test_a_penalty_through_the_activations_reaches_every_weight_bit_for_bit():
    """R1's gradient through a D of convolutions and both activations: every weight gets the gradient it
    gets with Paddle's activation kernels, bit for bit (a second derivative that left out x's zero
    gradient once cut every layer below an activation off the penalty)."""
    paddle.seed(3)
    D = nn.Sequential(nn.Conv2D(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2D(4, 8, 4, 2, 1), nn.ReLU(),
                      nn.Conv2D(8, 1, 4, 1, 0))
    ops.use_onednn(D)
    x0 = np.random.default_rng(0).standard_normal((4, 1, 16, 16)).astype("float32")
    got = {}
    for fast in (False, True):
        D[1].__class__, D[3].__class__ = (ops.FastLeakyReLU, ops.FastReLU) if fast else (nn.LeakyReLU, nn.ReLU)
        x = paddle.to_tensor(x0, stop_gradient=False)
        out = D(x)
        (g,) = paddle.grad(out.sum(), [x], create_graph=True)
        grads = paddle.grad(g.square().sum() + out.mean(), D.parameters())
        got[fast] = [t.numpy().tobytes() for t in grads]
    assert got[True] == got[False]


def test_the_activation_layers_switch_with_the_convolutions():
    cfg = load_config(os.path.join(CONFIGS, "sngan_resnet_fashion_mnist.yaml"), ["model.g_channels=8", "model.d_channels=8"])
    G, D = build_models(cfg.model)
    relus = len([m for m in G.sublayers() + D.sublayers() if type(m) is nn.ReLU])
    assert relus > 0
    ops.use_onednn(G), ops.use_onednn(D)
    assert len([m for m in G.sublayers() + D.sublayers() if type(m) is ops.FastReLU]) == relus
    leaky = nn.Sequential(nn.Conv2D(1, 2, 3), nn.LeakyReLU(0.2))
    ops.use_onednn(leaky)
    assert type(leaky[1]) is ops.FastLeakyReLU and leaky[1]._negative_slope == 0.2


def test_ineligible_layers_are_left_alone():
    for layer in (nn.Conv2D(32, 32, 3, 1, 1, groups=2), nn.Conv2D(32, 32, 3, 1, 2, dilation=2),
                  nn.Conv2D(32, 32, 3, 1, 1, data_format="NHWC"), nn.Conv2D(32, 32, (3, 5)), nn.Linear(32, 32)):
        assert not ops.eligible(layer)
        assert ops.use_onednn(layer) == 0 and type(layer).__name__ in ("Conv2D", "Linear")


def test_training_with_onednn_follows_the_paddle_path(tmp_path):
    """Equal steps and seed: the loss curves and the evaluation score of the two paths agree."""
    args = ["train.steps=24", "train.log_every=4", "train.eval_every=24", "train.eval_samples=500"]
    quick(tmp_path / "paddle", *args, "train.conv=paddle")
    quick(tmp_path / "onednn", *args, "train.conv=onednn")
    rows = {c: read_jsonl(tmp_path / c / "metrics.jsonl") for c in ("paddle", "onednn")}
    losses = {c: [r for r in rows[c] if "loss_D" in r] for c in rows}
    assert [r["step"] for r in losses["paddle"]] == [r["step"] for r in losses["onednn"]] == [4, 8, 12, 16, 20, 24]
    for a, b in zip(losses["paddle"], losses["onednn"]):
        for k in ("loss_D", "loss_G", "D_real", "D_fake"):
            assert a[k] == pytest.approx(b[k], rel=0.02, abs=1e-3), (a["step"], k)
    fid = {c: [r for r in rows[c] if "fid_lenet_fashion" in r][-1]["fid_lenet_fashion"] for c in rows}
    assert fid["onednn"] == pytest.approx(fid["paddle"], rel=0.05)


def test_auto_falls_back_and_onednn_refuses_when_the_operator_cannot_be_built(monkeypatch, capsys):
    monkeypatch.setattr(ops.build, "_op", None)
    monkeypatch.setattr(ops.build, "_why_not", "no C++ compiler (install g++)")
    assert use_onednn_convs("auto") is False
    assert "no C++ compiler" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="train.conv: onednn is not available here: no C\\+\\+ compiler"):
        use_onednn_convs("onednn")
    assert use_onednn_convs("paddle") is False
    with pytest.raises(ops.OpsError):
        ops.use_onednn(nn.Conv2D(32, 32, 3))


def test_train_conv_onednn_without_a_compiler_is_one_error_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    p = run_train("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(tmp_path / "run"), "-o",
                  "train.conv=onednn", check=False,
                  env={"PATH": str(empty), "CXX": ""})
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1] == ("error: train.conv: onednn is not available here: no C++ compiler "
                                                 "(install g++) (train.conv=paddle uses Paddle's own)")
    assert not (tmp_path / "run").exists()


def test_a_wheel_with_another_onednn_minor_version_falls_back_or_refuses(monkeypatch, capsys):
    """The vendored headers must match the major.minor of the oneDNN inside the installed Paddle wheel."""
    assert ops.runtime_version()[:2] == ops.header_version()[:2]  # the wheel of this machine matches
    monkeypatch.setattr(ops.build, "_op", None)
    monkeypatch.setattr(ops.build, "_why_not", None)
    have = ops.header_version()
    monkeypatch.setattr(ops.build, "runtime_version", lambda: (have[0], have[1] + 1, 0))
    assert use_onednn_convs("auto") is False
    note = capsys.readouterr().out.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: Paddle's own convolutions") and \
        f"ships oneDNN {have[0]}.{have[1] + 1}.0, but paddle_gan's operator is written against oneDNN " \
        f"{have[0]}.{have[1]}" in note[0]
    with pytest.raises(ConfigError, match="train.conv: onednn is not available here: Paddle .* ships oneDNN"):
        use_onednn_convs("onednn")
