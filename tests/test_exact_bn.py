"""ops.ExactBatchNorm2D (bn_exact.cc): Paddle's float32 training BatchNorm on all cores, bit for bit equal to
Paddle's own kernel (output, running statistics, gradients), the layers it leaves to Paddle's kernel, and a
training run that gives the same weights with it as without it."""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from conftest import CONFIGS, TINY, assert_same_state, read_jsonl, run_train

from paddle_gan import ops
from paddle_gan.ops import exact_bn


def _bits(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t).view(np.uint32)


def _pair(c, momentum=0.9, epsilon=1e-5, seed=0):
    rng = np.random.default_rng(seed)
    ref = nn.BatchNorm2D(c, momentum=momentum, epsilon=epsilon)
    for p in (ref.weight, ref.bias, ref._mean):
        p.set_value(rng.standard_normal(c).astype(np.float32))
    ref._variance.set_value((rng.random(c) + 0.5).astype(np.float32))
    fast = nn.BatchNorm2D(c, momentum=momentum, epsilon=epsilon)
    fast.set_state_dict(ref.state_dict())
    fast.__class__ = ops.ExactBatchNorm2D
    return ref, fast


@pytest.fixture
def calls(monkeypatch):
    """How many times ExactBatchNorm2D took bn_exact.cc (so no test passes on BatchNorm2D's own forward)."""
    n = [0]
    real = exact_bn.exact_batch_norm

    def counted(*args):
        n[0] += 1
        return real(*args)

    monkeypatch.setattr(exact_bn, "exact_batch_norm", counted)
    return n


@pytest.mark.parametrize("shape", [(64, 64, 16, 16), (64, 128, 8, 8), (64, 256, 4, 4),  # DCGAN-32's
                                   (7, 20, 4, 4), (3, 13, 7, 7), (5, 9, 3, 1), (6, 11, 1, 1), (2, 8, 5, 5),
                                   (4, 8, 3, 4), (3, 17, 6, 2)])
@pytest.mark.parametrize("momentum, epsilon", [(0.9, 1e-5), (0.8, 1e-3)])
def test_three_training_steps_equal_paddles_kernel_bit_for_bit(shape, momentum, epsilon, calls):
    """Output, running mean and variance (three updates in a row) and the gradients of x, weight and bias."""
    ref, fast = _pair(shape[1], momentum, epsilon)
    rng = np.random.default_rng(1)
    for step in range(3):
        x_np = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        dy = paddle.to_tensor(rng.standard_normal(shape).astype(np.float32))
        outs = []
        for layer in (ref, fast):
            x = paddle.to_tensor(x_np, stop_gradient=False)
            y = layer(x)
            outs.append([y, *paddle.grad([y], [x, layer.weight, layer.bias], [dy]), layer._mean, layer._variance])
        for name, a, b in zip(("y", "dx", "dweight", "dbias", "running mean", "running variance"), *outs):
            assert np.array_equal(_bits(a), _bits(b)), f"{shape} step {step}: {name} differs"
    assert calls[0] == 3


def test_the_layers_it_leaves_to_paddles_kernel(monkeypatch):
    """Eval mode, channels-last, no affine parameters, one value per channel and global statistics run
    BatchNorm2D's own forward (the operator is never called), with BatchNorm2D's numbers."""
    def refuse(*a, **k):
        raise AssertionError("bn_exact called")

    monkeypatch.setattr(exact_bn, "exact_batch_norm", refuse)
    rng = np.random.default_rng(2)
    cases = [(dict(), (4, 8, 3, 3), "eval"), (dict(data_format="NHWC"), (4, 3, 3, 8), "train"),
             (dict(weight_attr=False, bias_attr=False), (4, 8, 3, 3), "train"), (dict(), (1, 8, 1, 1), "train"),
             (dict(use_global_stats=True), (4, 8, 3, 3), "train")]
    for kwargs, shape, mode in cases:
        ref = nn.BatchNorm2D(8, **kwargs)
        fast = nn.BatchNorm2D(8, **kwargs)
        fast.__class__ = ops.ExactBatchNorm2D
        for layer in (ref, fast):
            layer.train() if mode == "train" else layer.eval()
        x = paddle.to_tensor(rng.standard_normal(shape).astype(np.float32))
        assert np.array_equal(_bits(ref(x)), _bits(fast(x))), kwargs


def test_no_second_derivative_says_what_to_use():
    _, fast = _pair(8)
    x = paddle.randn([4, 8, 4, 4])
    x.stop_gradient = False
    (g,) = paddle.grad([fast(x).square().sum()], [x], create_graph=True)
    with pytest.raises(Exception, match="PenaltyBatchNorm"):
        paddle.grad([g.square().sum()], [x])


def test_the_check_leaves_paddles_random_state_alone_and_a_failed_one_switches_nothing(monkeypatch):
    exact_bn.matches_paddle.cache_clear()
    paddle.seed(5)
    expected = paddle.randn([3]).numpy()
    paddle.seed(5)
    assert ops.matches_paddle()
    assert np.array_equal(paddle.randn([3]).numpy(), expected)
    model = nn.Sequential(nn.Conv2D(1, 4, 3), nn.BatchNorm2D(4), nn.BatchNorm2D(4, data_format="NHWC"))
    monkeypatch.setattr(exact_bn, "matches_paddle", lambda: False)
    assert ops.use_exact_batchnorm(model) == 0 and type(model[1]) is nn.BatchNorm2D
    monkeypatch.undo()
    assert ops.use_exact_batchnorm(model) == 1 and type(model[1]) is ops.ExactBatchNorm2D
    assert type(model[2]) is nn.BatchNorm2D  # channels-last: Paddle's NHWC kernel sums in another order


def test_a_training_run_gives_the_weights_it_gave_on_paddles_kernel(tmp_path, monkeypatch):
    """tools/train.py, the DCGAN config (BatchNorm in G and D) at small widths on the bundled images: the same
    weights, Adam states and metrics with the switch as without it."""
    switched = []
    calls = [0]
    real, real_bn = ops.use_exact_batchnorm, exact_bn.exact_batch_norm
    monkeypatch.setattr(exact_bn, "exact_batch_norm", lambda *a: calls.__setitem__(0, calls[0] + 1) or real_bn(*a))
    monkeypatch.setattr(ops, "use_exact_batchnorm", lambda model: switched.append(real(model)) or switched[-1])
    args = ["-c", f"{CONFIGS}/dcgan_fashion_mnist.yaml", "-o", *TINY, "data.split=test", "model.g_channels=16",
            "model.d_channels=16", "train.steps=3", "train.save_every=3", "train.conv=onednn"]
    run_train(*args[:2], "--output", str(tmp_path / "exact"), *args[2:])
    assert switched and all(n > 0 for n in switched), switched  # G's and D's BatchNorm layers
    assert calls[0] >= 3 * (3 * 2 + 3)  # per step: D's 2 layers on real, fake and in the G step; G's 3
    monkeypatch.setattr(ops, "use_exact_batchnorm", lambda model: 0)
    run_train(*args[:2], "--output", str(tmp_path / "paddle"), *args[2:])
    for name in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(tmp_path / "exact" / "checkpoints" / "step_0000003" / name,
                          tmp_path / "paddle" / "checkpoints" / "step_0000003" / name)
    drop = ("per_s", "time", "sec")
    rows = [[{k: v for k, v in r.items() if not any(d in k for d in drop)} for r in read_jsonl(p / "metrics.jsonl")]
            for p in (tmp_path / "exact", tmp_path / "paddle")]
    assert rows[0] == rows[1]


def test_the_trainer_switches_g_and_d_but_not_a_penalised_d():
    """apply_speed_switches: every BatchNorm2D of DCGAN's G and D on bn_exact.cc; a D whose input gradient is
    penalised has PenaltyBatchNorm (bn_exact.cc has no second derivative)."""
    from paddle_gan.config import load_config
    from paddle_gan.gan.kernels import apply_speed_switches
    from paddle_gan.gan.models import build_models

    cfg = load_config(f"{CONFIGS}/dcgan_fashion_mnist.yaml", ["model.g_channels=8", "model.d_channels=8"])
    for penalised in (False, True):
        G, D = build_models(cfg.model)
        apply_speed_switches(G, D, cfg.train, onednn=True, penalised=penalised)
        kinds = [{type(m).__name__ for m in net.sublayers() if isinstance(m, nn.BatchNorm2D)} for net in (G, D)]
        assert kinds == [{"ExactBatchNorm2D"}, {"PenaltyBatchNorm" if penalised else "ExactBatchNorm2D"}]


def test_a_static_graph_and_a_check_under_no_grad_keep_working():
    """paddle.jit.to_static of a model in training mode uses Paddle's kernel (the operator's gradient has no
    static shape inference), and a check first called under no_grad still compares gradients."""
    _, fast = _pair(8)
    static = paddle.jit.to_static(nn.Sequential(fast), full_graph=True)
    x = paddle.to_tensor(np.random.default_rng(3).standard_normal((4, 8, 3, 3)).astype(np.float32))
    assert static(x).shape == [4, 8, 3, 3]
    exact_bn.matches_paddle.cache_clear()
    with paddle.no_grad():
        assert ops.matches_paddle() and exact_bn.why_not is None
