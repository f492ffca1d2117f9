"""bfloat16 activations between the layers of a channels-last chain (train.amp=bfloat16 on a CPU):
act.cc's ReLU / LeakyReLU and to_float32 on bfloat16 against float32 arithmetic rounded to nearest
even, bn_low.cc's BatchNorm against a float64 reference (values, gradients, running statistics, eval
mode), and, where the CPU has bfloat16 arithmetic, DCGAN's G and D with such chains against the same
models in float32, the refusal of a second derivative through them, and penalised runs keeping D's
activations float32."""
import copy

import numpy as np
import paddle
import pytest
from conftest import train
from test_fast_path import needs_bf16

from paddle_gan import ops
from paddle_gan.gan.kernels import apply_speed_switches
from paddle_gan.gan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from paddle_gan.gan.models.resnet import ResNetDiscriminator, ResNetGenerator


def bf16_round(a):
    """float32 -> bfloat16 (round to nearest even) -> float32, in numpy."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    return u.view(np.float32)


def low(a, grad=False):
    t = paddle.to_tensor(np.asarray(a, dtype=np.float32)).astype("bfloat16")
    t.stop_gradient = not grad
    return t


def f32(t):
    return t.astype("float32").numpy()


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_activations_on_bfloat16_are_float32_arithmetic_rounded(slope):
    rng = np.random.default_rng(0)
    x = bf16_round(rng.standard_normal((3, 5, 7, 33)).astype("float32"))
    x[0, 0, 0, :3] = [0.0, -0.0, 1e-30]
    dy = bf16_round(rng.standard_normal(x.shape).astype("float32"))
    xt = low(x, grad=True)
    y = ops.activation(xt, slope)
    assert y.dtype == paddle.bfloat16
    np.testing.assert_array_equal(f32(y), bf16_round(np.maximum(x, np.float32(slope) * x)))
    (g,) = paddle.grad([y], [xt], [low(dy)])
    mask = (x > 0) if slope == 0.0 else (x >= 0)
    np.testing.assert_array_equal(f32(g), bf16_round(np.where(mask, dy, dy * np.float32(slope))))


def test_to_float32_widens_exactly_and_rounds_its_gradient():
    rng = np.random.default_rng(1)
    x = bf16_round(rng.standard_normal((2, 3, 4, 5)).astype("float32"))
    xt = low(x, grad=True)
    y = ops.load().to_float32(xt)
    assert y.dtype == paddle.float32
    np.testing.assert_array_equal(y.numpy(), x)
    dy = rng.standard_normal(x.shape).astype("float32")
    (g,) = paddle.grad([y], [xt], [paddle.to_tensor(dy)])
    np.testing.assert_array_equal(f32(g), bf16_round(dy))


@pytest.mark.parametrize("shape", [(6, 4, 4, 32), (5, 3, 7, 19), (64, 8, 8, 128)], ids=str)
def test_bn_low_against_float64(shape):
    """Values within bfloat16's rounding of the float64 function of the same bfloat16 inputs; batch
    statistics and the scale and shift gradients to float32 accuracy."""
    rng = np.random.default_rng(2)
    c = shape[-1]
    x = bf16_round((rng.standard_normal(shape) * 3 + 1).astype("float32"))
    dy = bf16_round(rng.standard_normal(shape).astype("float32"))
    gamma = (rng.standard_normal(c) * 0.5 + 1).astype("float32")
    beta = rng.standard_normal(c).astype("float32")
    eps = 1e-5
    xt = low(x, grad=True)
    gt, bt = paddle.to_tensor(gamma, stop_gradient=False), paddle.to_tensor(beta, stop_gradient=False)
    y, mean, var = ops.load().bn_low(xt, gt, bt, eps)
    gx, gg, gb = paddle.grad([y], [xt, gt, bt], [low(dy)])

    X, G = x.reshape(-1, c).astype(np.float64), dy.reshape(-1, c).astype(np.float64)
    mu, v = X.mean(0), X.var(0)
    r = 1 / np.sqrt(v + eps)
    xh = (X - mu) * r
    ref_y = gamma * xh + beta
    a, b = G.mean(0), (G * xh).mean(0)
    ref_dx = gamma * r * (G - a - xh * b)
    np.testing.assert_allclose(mean.numpy(), mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.numpy(), v, rtol=1e-5)
    assert np.abs(f32(y).reshape(-1, c) - ref_y).max() <= 2 ** -7 * np.abs(ref_y).max()
    assert np.abs(f32(gx).reshape(-1, c) - ref_dx).max() <= 2 ** -7 * np.abs(ref_dx).max()
    np.testing.assert_allclose(gg.numpy(), (G * xh).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb.numpy(), G.sum(0), rtol=1e-5, atol=1e-4)


def test_low_batchnorm_running_statistics_and_eval_mode_follow_paddles():
    """LowBatchNorm2D on bfloat16 input updates the running statistics as Paddle's kernel does on the
    same values in float32; in eval mode it normalises with them; float32 input is Paddle's kernel."""
    rng = np.random.default_rng(3)
    x = bf16_round(rng.standard_normal((8, 4, 4, 16)).astype("float32") * 2 + 0.5)
    ref = paddle.nn.BatchNorm2D(16, data_format="NHWC")
    bn = copy.deepcopy(ref)
    bn.__class__ = ops.LowBatchNorm2D
    for _ in range(3):
        want = ref(paddle.to_tensor(x))
        got = bn(low(x))
        assert got.dtype == paddle.bfloat16
        assert np.abs(f32(got) - want.numpy()).max() <= 2 ** -7 * np.abs(want.numpy()).max()
    np.testing.assert_allclose(bn._mean.numpy(), ref._mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn._variance.numpy(), ref._variance.numpy(), rtol=1e-5)
    bn.eval(), ref.eval()
    want = ref(paddle.to_tensor(x)).numpy()
    assert np.abs(f32(bn(low(x))) - want).max() <= 2 ** -7 * np.abs(want).max()
    plain = copy.deepcopy(bn)
    plain.__class__ = paddle.nn.BatchNorm2D
    np.testing.assert_array_equal(bn(paddle.to_tensor(x)).numpy(), plain(paddle.to_tensor(x)).numpy())  # float32


def _switched(model, low_chain):
    model = copy.deepcopy(model)
    ops.use_onednn(model)
    ops.channels_last(model.channels_last_layers(), low=low_chain)
    return model


def _model(which):
    paddle.seed(4)
    return {"G": lambda: (DCGANGenerator(g_channels=16), paddle.randn([16, 100])),
            "D": lambda: (DCGANDiscriminator(d_channels=16), paddle.randn([16, 1, 32, 32])),
            "ResNet_G": lambda: (ResNetGenerator(z_dim=16, channels=1, g_channels=32), paddle.randn([16, 16])),
            "ResNet_D": lambda: (ResNetDiscriminator(channels=1, d_channels=32),
                                 paddle.randn([16, 1, 32, 32]))}[which]()


@needs_bf16
@pytest.mark.parametrize("which", ["G", "D", "ResNet_G", "ResNet_D"])
def test_models_with_bfloat16_activations_follow_float32_activations(which):
    """Inside bfloat16(): the chain's convolutions write bfloat16 (biases inside the primitive too), its
    BatchNorm runs on bn_low, residual sums on add_low, its output is float32 again. Against float32
    throughout, its output, every parameter
    gradient and the running statistics err no more than the same chain with float32 activations
    (bfloat16 convolutions alone) does, in norm (x 1.5 + 1 %); outside bfloat16() it computes in
    float32 as before."""
    import contextlib

    model, inp = _model(which)
    runs = {}
    for name, low_chain, in_bf16 in (("float32", False, False), ("bf16 convs", False, True), ("bf16 acts", True, True)):
        m = _switched(model, low_chain)
        if low_chain:
            assert any(getattr(l, "low_out", False) for l in m.sublayers())
            assert any(type(l) is ops.LowBatchNorm2D for l in m.sublayers()) or which == "ResNet_D"
        with ops.bfloat16() if in_bf16 else contextlib.nullcontext():
            y = m(inp)
        assert y.dtype == paddle.float32
        trained = [p for p in m.parameters() if not p.stop_gradient]
        grads = paddle.grad((y * y).mean(), trained)
        running = [v.numpy() for k, v in m.state_dict().items() if k.endswith(("_mean", "_variance"))]
        assert len(grads) > 4 and (running or which == "ResNet_D")  # (no BatchNorm in that D)
        runs[name] = ([y.numpy()] + [g.numpy() for g in grads] + running, m)

    tensors = runs["float32"][0]
    floor = 1e-2 * max(np.linalg.norm(t) for t in tensors[1:len(tensors) - len(running)])  # of the gradients

    def err(a, b):  # (a gradient that is rounding noise in float32, e.g. a bias before a BatchNorm, against the floor)
        return np.linalg.norm(a - b) / max(np.linalg.norm(b), floor)

    for i, (ref, convs, acts) in enumerate(zip(*(runs[k][0] for k in ("float32", "bf16 convs", "bf16 acts")))):
        assert err(acts, ref) <= 1.5 * err(convs, ref) + 0.01, i
    with paddle.no_grad():
        m, plain = runs["bf16 acts"][1], runs["float32"][1]
        m.set_state_dict(plain.state_dict())
        m.eval(), plain.eval()
        np.testing.assert_array_equal(m(inp).numpy(), plain(inp).numpy())  # float32 outside bfloat16()


def test_residual_sums():
    """ops.add: bfloat16 + bfloat16 rounded from float32, its gradient to both unchanged; mixed types in
    float32; float32 is Paddle's add."""
    rng = np.random.default_rng(5)
    a, b = (bf16_round(rng.standard_normal((2, 3, 4, 5)).astype("float32")) for _ in range(2))
    at, bt = low(a, grad=True), low(b, grad=True)
    y = ops.add(at, bt)
    assert y.dtype == paddle.bfloat16
    np.testing.assert_array_equal(f32(y), bf16_round(a + b))
    dy = bf16_round(rng.standard_normal(a.shape).astype("float32"))
    for g in paddle.grad([y], [at, bt], [low(dy)]):
        np.testing.assert_array_equal(f32(g), dy)
    mixed = ops.add(at, paddle.to_tensor(b))
    assert mixed.dtype == paddle.float32
    np.testing.assert_array_equal(mixed.numpy(), a + b)
    np.testing.assert_array_equal(ops.add(paddle.to_tensor(a), paddle.to_tensor(b)).numpy(), a + b)


@needs_bf16
def test_no_second_derivative_through_bfloat16_activations():
    x = paddle.randn([2, 4, 4, 8])
    x.stop_gradient = False
    w = paddle.randn([8, 8, 3, 3]) * 0.1
    w.stop_gradient = False
    with ops.bfloat16():
        y = ops.conv(x, w, None, 1, 1, nhwc=True, low_out=True)
    assert y.dtype == paddle.bfloat16
    (gx,) = paddle.grad(ops.load().to_float32(y).sum(), [x], create_graph=True)
    with pytest.raises(Exception, match="no second derivative through bfloat16 activations"):
        paddle.grad(gx.square().sum(), [w])


def test_a_penalised_d_keeps_float32_activations():
    """apply_speed_switches: G's chain gets bfloat16 activations, a D whose input gradient is penalised
    runs channels-last in float32 (its convolutions are not marked; its BatchNorm is PenaltyBatchNorm
    on the operator, NHWC, not LowBatchNorm2D)."""
    from types import SimpleNamespace

    from paddle_gan.gan.kernels import PenaltyBatchNorm

    t = SimpleNamespace(to_static=False)
    for penalised in (False, True):
        for norm in ("none", "batch"):
            G, D = DCGANGenerator(g_channels=8), DCGANDiscriminator(d_channels=8, norm=norm)
            apply_speed_switches(G, D, t, onednn=True, penalised=penalised, channels_last=(True, True))
            assert any(getattr(l, "low_out", False) for l in G.sublayers())
            assert any(getattr(l, "low_out", False) for l in D.sublayers()) is not penalised
            assert getattr(D.net[0], "channels_last", False)
            bns = {type(l) for l in D.sublayers() if isinstance(l, paddle.nn.BatchNorm2D)}
            assert bns == (set() if norm == "none" else {PenaltyBatchNorm} if penalised else {ops.LowBatchNorm2D})


@needs_bf16
def test_bfloat16_penalised_run_trains(tmp_path):
    """R1 with BatchNorm in D in bfloat16: G's chain in bfloat16 activations, D's float32."""
    assert train(tmp_path / "r1", "train.steps=2", "train.amp=bfloat16", "train.r1_gamma=10") == 0


def test_every_bfloat16_operator_refuses_a_second_derivative():
    """bn_low, add_low and to_float32 stop a second derivative with one line (none loses its terms)."""
    rng = np.random.default_rng(6)
    x = low(rng.standard_normal((4, 2, 2, 8)), grad=True)
    gamma = paddle.to_tensor(np.ones(8, "float32"), stop_gradient=False)
    beta = paddle.to_tensor(np.zeros(8, "float32"), stop_gradient=False)
    other = low(rng.standard_normal((4, 2, 2, 8)), grad=True)
    for f in (lambda t: ops.load().bn_low(t, gamma, beta, 1e-5)[0], lambda t: ops.add(t, other), lambda t: t):
        y = ops.load().to_float32(f(x))
        (gx,) = paddle.grad((y * y).sum(), [x], create_graph=True)
        with pytest.raises(Exception, match="no second derivative through bfloat16 activations"):
            paddle.grad(ops.load().to_float32(gx).sum(), [x])


def test_residual_sum_gradients_are_their_own_tensors():
    """add_low's two gradients are fresh tensors: another use of an operand adds to its own, not to the
    sum's gradient (a shared buffer was added to in place)."""
    a = low([1.0, 2.0], grad=True)
    b = low([3.0, 4.0], grad=True)
    out = ops.add(a, b)
    out.retain_grads()
    z = ops.activation(a, 0.5)
    loss = ops.load().to_float32(out).sum() + 3 * ops.load().to_float32(z).sum()
    ga, gout = paddle.grad(loss, [a, out])
    np.testing.assert_array_equal(f32(gout), [1.0, 1.0])
    np.testing.assert_array_equal(f32(ga), [4.0, 4.0])


def test_chains_that_cannot_hold_bfloat16_stay_float32():
    """A chain with a tanh or sigmoid (Paddle has no bfloat16 kernels for them on the CPU) keeps float32
    activations; LowBatchNorm2D on a bfloat16 NCHW input normalises over the channels in float32."""
    conv = paddle.nn.Conv2D(3, 4, 3, padding=1, bias_attr=False)
    ops.use_onednn(conv)
    assert ops.channels_last([conv, paddle.nn.Tanh()], low=True)
    assert not getattr(conv, "low_out", False)
    bn = paddle.nn.BatchNorm2D(4)  # NCHW
    plain = copy.deepcopy(bn)
    bn.__class__ = ops.LowBatchNorm2D
    x = bf16_round(np.random.default_rng(7).standard_normal((2, 4, 3, 4)).astype("float32"))
    got = bn(low(x))
    want = plain(paddle.to_tensor(x)).numpy()
    assert got.dtype == paddle.bfloat16
    assert np.abs(f32(got) - want).max() <= 2 ** -7 * np.abs(want).max()


@needs_bf16
def test_the_weight_gradient_benchmark_runs(capsys):
    """benchmarks/bench_bwd_weights.py (how gemm_weights' rule was measured) at a tiny batch: one row per
    layer, a JSON line with both kernels and auto; PADDLE_GAN_BWDW as it was before."""
    import json
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import bench_bwd_weights

    assert bench_bwd_weights.main(["--batch", "2", "--rounds", "1", "--calls", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 + len(bench_bwd_weights.LAYERS)
    assert set(json.loads(out[-1])["total_ms"]) == {"onednn", "gemm", "auto"}
    assert "PADDLE_GAN_BWDW" not in os.environ
