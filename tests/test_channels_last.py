"""train.channels_last: the operator's convolutions on [N, H, W, C] tensors against [N, C, H, W]
(every convolution shape of the configs, to the second derivative), DCGAN's G and D switched in
place against the same models in NCHW (outputs, gradients, a penalty, BatchNorm's running
statistics), which chains refuse, and the switch through the real trainer."""
import copy

import numpy as np
import paddle
import pytest
from conftest import load_state, train
from test_fast_path import SHAPES, operands

from paddle_gan import ops
from paddle_gan.gan.kernels import PenaltyBatchNorm, use_channels_last
from paddle_gan.gan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from paddle_gan.gan.models.resnet import ResNetDiscriminator, ResNetGenerator

NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _close(a, b, what, tol=1e-5, scale=1e-6):
    """a and b agree to `tol` relative to a's largest value, or to `scale` if larger (the gradient of a
    bias right before a BatchNorm is rounding noise, ~1e-6 of the model's largest gradient)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    assert np.abs(a - b).max() <= tol * max(np.abs(a).max(), scale), what


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T" * s[0] + "C" * (not s[0]) + "-".join(map(str, s[1:])))
def test_channels_last_convolutions_equal_nchw_to_the_second_derivative(shape):
    tr, cin, cout, k, s, p, op, bias, size = shape
    x, w, b = operands(shape, batch=2, seed=1, scale=0.1)
    params = [w] + ([b] if bias else [])
    outs = []
    for nhwc in (False, True):
        xi = x.transpose(NHWC) if nhwc else x
        y = ops.conv(xi, w, b, s, p, op, transposed=tr, nhwc=nhwc)
        y = y.transpose(NCHW) if nhwc else y
        r = paddle.to_tensor(np.random.default_rng(2).standard_normal(y.shape).astype("float32"))
        first = paddle.grad((y * r).sum() + y.square().mean(), [x] + params, create_graph=True)
        second = paddle.grad(first[0].square().sum(), params)  # a penalty on the input gradient
        outs.append([y] + list(first) + list(second))
    for i, (a, c) in enumerate(zip(*outs)):
        _close(a.numpy(), c.numpy(), f"output {i}")


def _models():
    paddle.seed(3)
    return [(DCGANGenerator(g_channels=8), paddle.randn([4, 100])),
            (DCGANDiscriminator(d_channels=8), paddle.randn([4, 1, 32, 32])),
            (DCGANDiscriminator(d_channels=8, norm="none", dropout=0.0), paddle.randn([4, 1, 32, 32])),
            (ResNetGenerator(z_dim=16, channels=1, g_channels=16), paddle.randn([4, 16])),
            (ResNetDiscriminator(channels=1, d_channels=16), paddle.randn([4, 1, 32, 32]))]


@pytest.mark.parametrize("which", range(5), ids=["G", "D", "D_without_BN", "ResNet_G", "ResNet_D"])
def test_models_switched_in_place_follow_nchw(which):
    """Same keys and parameters; outputs, every gradient, a gradient penalty's gradient and the running
    statistics agree with the NCHW model to float rounding, in training and in eval mode."""
    model, inp = _models()[which]
    ops.use_onednn(model)
    cl = copy.deepcopy(model)
    assert use_channels_last(cl) == 1 and use_channels_last(cl) == 1  # a second call changes nothing
    assert list(cl.state_dict()) == list(model.state_dict())
    inp.stop_gradient = False
    for net in (model, cl):
        net.train()
    got = []
    for net in (model, cl):
        y = net(inp)
        params = [q for q in net.parameters() if not q.stop_gradient]
        first = paddle.grad(y.square().sum(), [inp] + params, create_graph=True)
        penalty = paddle.grad(first[0].square().sum(), params[:1]) if which % 3 else []  # D: R1's shape
        net.eval()
        got.append([y] + list(first) + list(penalty) + [net(inp)] +
                   [v for k, v in net.state_dict().items() if k.endswith(("_mean", "_variance"))])
    assert len(got[0]) == len(got[1])
    scale = max(float(t.abs().max()) for t in got[0])
    for i, (a, c) in enumerate(zip(*got)):
        _close(a.numpy(), c.numpy(), f"tensor {i}", tol=2e-5, scale=0.1 * scale)


def test_only_chains_the_operator_and_elementwise_layers_make_are_switched():
    G, x = _models()[0]
    assert not ops.channels_last(G.channels_last_layers())  # Paddle's own convolutions: left as they are
    ops.use_onednn(G)
    D = DCGANDiscriminator(d_channels=8)
    ops.use_onednn(D)
    for layer in D.sublayers():
        if type(layer) is paddle.nn.BatchNorm2D:
            layer.__class__ = PenaltyBatchNorm  # composed of Paddle's ops (not fused): computes in NCHW only
    assert use_channels_last(D) == 0 and all(getattr(l, "_data_format", "NCHW") == "NCHW" for l in D.sublayers())
    for layer in D.sublayers():
        layer.fused = True  # on ops/batchnorm.cc: NHWC too
    assert use_channels_last(D) == 1
    assert {l._data_format for l in D.sublayers() if isinstance(l, PenaltyBatchNorm)} == {"NHWC"}
    cbn = ResNetGenerator(z_dim=16, channels=1, g_channels=16, cbn_classes=3)  # conditional BatchNorm: NCHW only
    ops.use_onednn(cbn)
    assert use_channels_last(cbn) == 0


def test_the_switch_through_the_trainer(tmp_path):
    """on: a run in float32 that follows the NCHW run to float rounding, and whose checkpoint is an
    ordinary one (same keys, loads where NCHW does); on with Paddle's convolutions: one error line."""
    for name, cl in (("nchw", "off"), ("nhwc", "on")):
        assert train(tmp_path / name, "train.steps=4", "train.conv=onednn", f"train.channels_last={cl}") == 0
    for f in ("G.pdparams", "D.pdparams"):
        a, b = (load_state(tmp_path / n / "checkpoints" / "step_0000004" / f) for n in ("nchw", "nhwc"))
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=1e-4, err_msg=f"{f} {k}")
    assert train(tmp_path / "nhwc", "train.steps=6", "train.channels_last=off", "--resume") == 0
    assert train(tmp_path / "bad", "train.steps=1", "train.conv=paddle", "train.channels_last=on") != 0
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_the_in_process_ab_benchmark_times_both_variants(capsys):
    """benchmarks/bench_ab.py (how the switch was measured): both variants built and stepped, one JSON line;
    an environment variable of one variant's, set around it and undone after."""
    import json
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import bench_ab

    assert bench_ab.main(["quickstart.yaml", "-o", "model.g_channels=8", "model.d_channels=8", "--a",
                          "train.channels_last=off", "--b", "train.channels_last=on", "--blocks", "2", "--steps", "1",
                          "--warmup", "1", "--swap", "--a-env", "PADDLE_GAN_BWDW=onednn"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["built_first"] == "b" and row["a_img_s"] > 0 and row["b_img_s"] > 0 and row["b_over_a"] > 0
    assert row["a"] == ["train.channels_last=off", "PADDLE_GAN_BWDW=onednn"]
    assert "PADDLE_GAN_BWDW" not in os.environ  # the variants' environment is undone


def test_on_without_the_operator_says_it_does_nothing(monkeypatch, capsys):
    from types import SimpleNamespace

    from paddle_gan.gan.kernels import channels_last_wanted

    t = SimpleNamespace(channels_last="on", conv="auto", to_static=False)
    assert channels_last_wanted(t, onednn=False, cpu_bfloat16=False) == (False, False)  # e.g. a GPU run
    assert "train.channels_last=on does nothing here" in capsys.readouterr().out
    assert channels_last_wanted(t, onednn=True, cpu_bfloat16=False) == (True, True)
    auto = SimpleNamespace(channels_last="auto", conv="auto", to_static=False)
    assert channels_last_wanted(auto, True, True) == (True, True)
    assert channels_last_wanted(auto, True, False) == (False, False)  # float32 keeps its numbers
    assert channels_last_wanted(auto, True, False, penalised=True) == (False, True)  # but for a penalised D
    assert channels_last_wanted(auto, False, False, penalised=True) == (False, False)
    off = SimpleNamespace(channels_last="off", conv="auto", to_static=False)
    assert channels_last_wanted(off, True, True, penalised=True) == (False, False)
    assert channels_last_wanted(SimpleNamespace(channels_last="auto", conv="auto", to_static=True), True, True,
                                penalised=True) == (False, False)
    assert not capsys.readouterr().out  # said for on only
