"""Every GAN on the fast path: the oneDNN operator's second derivative (against Paddle's kernels and
finite differences, every convolution shape of the configs), penalised runs on it against the
reference path, lazy R1, and train.amp=bfloat16 on the CPU (and its fallback where the CPU has no
bfloat16 arithmetic)."""
import glob
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle import nn

from conftest import CONFIGS, assert_same_state, read_jsonl, train
from paddle_gan import ops
from paddle_gan.config import load_config
from paddle_gan.gan.models import build_models
from paddle_gan.gan.precision import _bfloat16_fails, cpu_bfloat16


def _conv_shapes():
    """(transposed, Cin, Cout, K, stride, pad, out_pad, bias, input size) of every convolution the
    configs build (at their own widths, batch 2), the ResNet's folded ones included."""
    shapes = set()
    for path in sorted(glob.glob(os.path.join(CONFIGS, "*.yaml"))):
        cfg = load_config(path, ["data.root=x"] if "image_folder" in open(path).read() else [])
        G, D = build_models(cfg.model)
        for net, size in ((G, None), (D, cfg.model.img_size)):
            sizes = {}

            def hook(layer, inputs, output, sizes=sizes):
                sizes[id(layer)] = inputs[0].shape[2]

            handles = [l.register_forward_post_hook(hook) for l in net.sublayers()
                       if isinstance(l, (nn.Conv2D, nn.Conv2DTranspose))]
            with paddle.no_grad():
                z = paddle.randn([2, cfg.model.z_dim])
                y = paddle.to_tensor([0, 1]) if cfg.model.num_classes else None
                x = G(z) if y is None else G(z, y)
                if net is D:
                    D(x) if y is None else D(x, y)
            for h in handles:
                h.remove()
            for l in net.sublayers():
                if id(l) in sizes:
                    tr = isinstance(l, nn.Conv2DTranspose)
                    shapes.add((tr, l._in_channels, l._out_channels, l._kernel_size[0], l._stride[0], l._padding,
                                getattr(l, "output_padding", 0) or 0, l.bias is not None, sizes[id(l)]))
    return sorted(shapes)


SHAPES = _conv_shapes()


def operands(shape, batch: int, seed: int, scale: float):
    """x, the weight (times `scale`) and the bias (or None) of a convolution of SHAPES, standard normal
    and requiring gradients."""
    tr, cin, cout, k, s, p, op, bias, size = shape
    rng = np.random.default_rng(seed)

    def t(a):
        return paddle.to_tensor(a.astype("float32"), stop_gradient=False)

    w = rng.standard_normal((cin, cout, k, k) if tr else (cout, cin, k, k)) * scale
    return t(rng.standard_normal((batch, cin, size, size))), t(w), t(rng.standard_normal(cout)) if bias else None


def _transposed_reference(x, w, b, s, p, op):
    """A transposed convolution written with conv2d: s - 1 zeros between the input pixels (a product
    with a 0/1 matrix, twice differentiable), padded by k - 1 - p (and output_padding at the bottom and
    right), convolved with the kernel flipped and its channels swapped."""
    n, c, h, width = x.shape
    k = w.shape[2]

    def spread(size):
        m = np.zeros(((size - 1) * s + 1, size), "float32")
        m[np.arange(size) * s, np.arange(size)] = 1
        return paddle.to_tensor(m)

    up = paddle.matmul(paddle.matmul(spread(h), x), spread(width), transpose_y=True)
    lo, hi = k - 1 - p, k - 1 - p + op
    up = F.pad(up, [lo, hi, lo, hi])
    return F.conv2d(up, w.transpose([1, 0, 2, 3]).flip([2, 3]), b)


def _penalty(conv, x, w, b):
    """|d sum(conv(x) * r) / dx|^2 summed, with r fixed: the shape of a gradient penalty."""
    y = conv(x, w, b)
    r = paddle.to_tensor(np.random.default_rng(7).standard_normal(y.shape).astype("float32"))
    (gx,) = paddle.grad((y * r).sum() + (y ** 2).mean(), [x], create_graph=True)
    return (gx ** 2).sum()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T" * s[0] + "C" * (not s[0]) + "-".join(map(str, s[1:])))
def test_second_derivatives_equal_paddles_for_every_config_convolution(shape):
    tr, cin, cout, k, s, p, op, bias, size = shape
    cin, cout = min(cin, 24), min(cout, 24)  # the arithmetic is the same at any width; this keeps it fast
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, cin, size, size)).astype("float32")
    w0 = (rng.standard_normal((cin, cout, k, k) if tr else (cout, cin, k, k)) * 0.2).astype("float32")
    b0 = rng.standard_normal(cout).astype("float32") if bias else None
    grads = []
    for fast in (False, True):
        x, w = (paddle.to_tensor(v, stop_gradient=False) for v in (x0, w0))
        b = paddle.to_tensor(b0, stop_gradient=False) if bias else None

        def conv(x, w, b):
            if fast:
                return ops.conv(x, w, b, s, p, op, transposed=tr)
            if tr:  # Paddle's own conv2d_transpose double grad fails ("empty GradSlotMeta"): the same map as
                return _transposed_reference(x, w, b, s, p, op)  # zeros inserted, then a flipped convolution
            return F.conv2d(x, w, b, stride=s, padding=p)

        _penalty(conv, x, w, b).backward()
        grads.append([t.grad.numpy() if t.grad is not None else np.zeros(t.shape, "float32")
                      for t in ([x, w] + ([b] if bias else []))])
    for ref, got in zip(*grads):
        scale = np.abs(ref).max()
        np.testing.assert_allclose(got, ref, atol=1e-4 * scale + 1e-6, rtol=1e-3)


def test_second_derivative_against_finite_differences():
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((2, 3, 6, 6)).astype("float64")
    w0 = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype("float64")

    def value(w):
        x = paddle.to_tensor(x0.astype("float32"), stop_gradient=False)
        wt = paddle.to_tensor(w.astype("float32"), stop_gradient=False)
        return _penalty(lambda a, b_, c: ops.conv(a, b_, None, 2, 1), x, wt, None), wt

    pen, w = value(w0)
    pen.backward()
    analytic = w.grad.numpy()
    for idx in [(0, 0, 0, 0), (3, 2, 1, 2), (1, 1, 2, 0)]:
        e = np.zeros_like(w0)
        e[idx] = 1e-2
        fd = (float(value(w0 + e)[0]) - float(value(w0 - e)[0])) / 2e-2
        assert analytic[idx] == pytest.approx(fd, rel=2e-2, abs=1e-3), idx


@pytest.mark.parametrize("config, extra", [("wgan_gp_fashion_mnist.yaml", ["train.n_critic=2"]),
                                           ("quickstart.yaml", ["train.r1_gamma=10"])])
def test_penalised_runs_on_the_fast_path_follow_the_reference_path(tmp_path, config, extra):
    """24 steps on the oneDNN operator and on Paddle's kernels: the same losses to float rounding."""
    rows = {}
    for conv in ("paddle", "onednn"):
        assert train(tmp_path / conv, "train.steps=24", "train.log_every=4", f"train.conv={conv}", "data.split=test", *extra,
                     config=config) == 0
        rows[conv] = [r for r in read_jsonl(tmp_path / conv / "metrics.jsonl") if "loss_D" in r]
    assert len(rows["paddle"]) == len(rows["onednn"]) == 6
    penalty = "gp" if "wgan" in config else "r1"
    for a, b in zip(rows["paddle"], rows["onednn"]):
        for k in ("loss_D", "loss_G", penalty):
            assert b[k] == pytest.approx(a[k], rel=0.05, abs=2e-3), (a["step"], k)
        assert b[penalty] > 0


def test_lazy_r1_applies_every_k_updates_weighted_and_resumes_bit_for_bit(tmp_path):
    extra = ["train.r1_gamma=10", "train.r1_every=3", "train.log_every=1"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(straight, "train.steps=7", *extra) == 0
    assert train(resumed, "train.steps=4", *extra) == 0
    assert train(resumed, "train.steps=7", *extra, "--resume") == 0
    for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(straight / "checkpoints" / "step_0000007" / f, resumed / "checkpoints" / "step_0000007" / f)
    rows = [r for r in read_jsonl(straight / "metrics.jsonl") if "loss_D" in r]
    assert [r["step"] for r in rows if "r1" in r] == [1, 4, 7]  # D updates 0, 3, 6: steps 1, 4, 7
    assert [r["loss_D"] for r in rows] == [r["loss_D"] for r in read_jsonl(resumed / "metrics.jsonl") if "loss_D" in r]


def test_bfloat16_on_a_cpu_without_it_is_one_line_and_float32(tmp_path, monkeypatch, capsys):
    """What runs in which precision is said in the run's first line, beside the device; a CPU without
    bfloat16 arithmetic trains the very same run as float32."""
    assert train(tmp_path / "f32", "train.steps=3", "train.conv=onednn") == 0
    for claim, why in (("none", "float32 (train.amp=bfloat16: this CPU"), ("AMX", None)):
        monkeypatch.setenv("PADDLE_GAN_CPU_BF16", claim)
        capsys.readouterr()
        assert train(tmp_path / claim, "train.steps=3", "train.conv=onednn", "train.amp=bfloat16") == 0
        out, err = capsys.readouterr()
        first = out.splitlines()[0]
        assert first.startswith(f"run folder: {tmp_path / claim} | device cpu") and "Warning" not in err \
            and "auto_cast" not in err, (out, err)
        said = first.split(" | ")[2]
        assert not [ln for ln in out.splitlines()[1:] if "bfloat16 convolutions" in ln or "float32 (train.amp" in ln
                    or ln.startswith("note: train.amp")]  # said once, in the first line
        if claim == "none" or _bfloat16_fails():  # no bfloat16 here: the very same run as float32
            assert said.startswith("float32 (train.amp=bfloat16: ") and (why is None or said.startswith(why))
            assert "has no bfloat16 arithmetic (AMX or AVX512-BF16)" in said or claim != "none"
            for f in ("G.pdparams", "D.pdparams"):
                assert_same_state(tmp_path / "f32" / "checkpoints" / "step_0000003" / f,
                                  tmp_path / claim / "checkpoints" / "step_0000003" / f)
        else:
            assert said.startswith("bfloat16 convolutions on AMX (oneDNN")
    monkeypatch.setenv("PADDLE_GAN_CPU_BF16", "none")
    capsys.readouterr()
    assert train(tmp_path / "fp16", "train.steps=1", "train.amp=float16") == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("| float32 (train.amp=float16 is for GPUs)")


needs_bf16 = pytest.mark.skipif(cpu_bfloat16() is None or bool(_bfloat16_fails()),
                                reason="this CPU has no bfloat16 arithmetic oneDNN runs (AMX or AVX512-BF16)")


@needs_bf16
@pytest.mark.parametrize("shape", SHAPES[:6] + SHAPES[-6:], ids=str)
def test_bfloat16_convolutions_agree_with_float32(shape):
    """bfloat16 against float32: value, gradients of x, w and the bias, and the second derivative a
    penalty takes (in w, through the input gradient)."""
    tr, cin, cout, k, s, p, op, bias, size = shape
    x, w, b = operands(shape, batch=3, seed=0, scale=0.05)
    outs = []
    for low in (False, True):
        with ops.bfloat16(low):
            y = ops.conv(x, w, b, s, p, op, transposed=tr)
            first = paddle.grad(y.square().sum(), [x, w] + ([b] if bias else []), create_graph=True)
            (second,) = paddle.grad(first[0].square().sum(), [w])
        outs.append([y.numpy()] + [g.numpy() for g in first] + [second.numpy()])
    for ref, got in zip(*outs):
        assert np.abs(got - ref).max() <= 0.03 * np.abs(ref).max()


@needs_bf16
def test_bfloat16_runs_resume_bit_for_bit(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(straight, "train.steps=6", "train.amp=bfloat16") == 0
    assert train(resumed, "train.steps=3", "train.amp=bfloat16") == 0
    assert train(resumed, "train.steps=6", "train.amp=bfloat16", "--resume") == 0
    for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
        assert_same_state(straight / "checkpoints" / "step_0000006" / f, resumed / "checkpoints" / "step_0000006" / f)


def _bf16_grads(shape, how, monkeypatch, batch=2, nhwc=False):
    """Value, first gradients (x, w, bias) and the second derivative in w through the input gradient of
    one bfloat16 convolution whose weight gradients come from `how` (PADDLE_GAN_BWDW)."""
    monkeypatch.setenv("PADDLE_GAN_BWDW", how)
    tr, cin, cout, k, s, p, op, bias, size = shape
    x, w, b = operands(shape, batch=batch, seed=0, scale=0.05)
    if nhwc:
        x = paddle.to_tensor(x.numpy().transpose(0, 2, 3, 1), stop_gradient=False)
    with ops.bfloat16():
        y = ops.conv(x, w, b, s, p, op, transposed=tr, nhwc=nhwc)
        r = paddle.to_tensor(np.random.default_rng(1).standard_normal(y.shape).astype("float32"))
        first = paddle.grad((y * r).sum(), [x, w] + ([b] if bias else []), create_graph=True)
        (second,) = paddle.grad(first[0].square().sum(), [w])
    return [y.numpy()] + [g.numpy() for g in first] + [second.numpy()], r.numpy()


@needs_bf16
@pytest.mark.parametrize("shape,batch,nhwc", [(s, 2, True) for s in SHAPES] + [(s, 2, False) for s in SHAPES[::4]]
                         + [((False, 64, 128, 4, 2, 1, 0, False, 16), 40, True),  # im2col in 3 chunks
                            ((False, 48, 48, 3, 1, 1, 0, True, 8), 48, False)],  # chunks split a sample's rows
                         ids=str)
def test_bfloat16_weight_gradients_as_one_product_match_onednns(shape, batch, nhwc, monkeypatch):
    """gemm_bwdw.cc (im2col + matmul) against oneDNN's own bfloat16 backward-weights kernel: the same
    bfloat16 operands summed in float32 in another order, in the first and the second derivative, the
    bias gradient included (both sum the bfloat16 output gradient)."""
    got, _ = _bf16_grads(shape, "gemm", monkeypatch, batch, nhwc)
    ref, _ = _bf16_grads(shape, "onednn", monkeypatch, batch, nhwc)
    for a, b in zip(got, ref):  # y, dx, dw, (db,) second: the same kernels but for dw's and db's
        assert np.abs(a - b).max() <= 2e-5 * np.abs(b).max() + 1e-7
