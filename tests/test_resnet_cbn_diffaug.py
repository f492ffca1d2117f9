"""Images worth generating: the SNGAN ResNet (shapes, widths, init, its folded up/down-sampling
convolutions against the reference operations), conditional BatchNorm, DiffAugment (differentiable,
seeded, resumed bit for bit), ACGAN's class-loss keys, and their bad settings."""
import json
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle import nn

from conftest import CONFIGS, SMALL, assert_same_state, read_jsonl, train
from paddle_gan import ops
from paddle_gan.config import load_config
from paddle_gan.gan import augment
from paddle_gan.gan.models import build_models
from paddle_gan.gan.models.layers import ConditionalBatchNorm2D
from paddle_gan.gan.models.resnet import SampledConv

RESNET = os.path.join(CONFIGS, "sngan_resnet_fashion_mnist.yaml")


@pytest.mark.parametrize("size, channels", [(32, 1), (32, 3), (64, 3)])
def test_resnet_shapes_and_widths(size, channels):
    cfg = load_config(RESNET, [f"model.img_size={size}", f"model.channels={channels}", "model.g_channels=24",
                               "model.d_channels=16"] + (["data.name=image_folder", "data.root=x"] if channels == 3 else []))
    assert cfg.model.spectral_norm and cfg.model.init == "ortho"  # the model's own defaults
    paddle.seed(0)
    G, D = build_models(cfg.model)
    x = G(paddle.randn([2, 100]))
    assert x.shape == [2, channels, size, size] and float(x.abs().max()) <= 1
    assert D(x).shape == [2, 1] and D.feature_dim == 16
    ups = [m for m in G.sublayers() if type(m).__name__ == "UpBlock"]
    assert len(ups) == {32: 3, 64: 4}[size]  # 4x4 -> size
    downs = [m for m in D.blocks if getattr(m, "conv2", None) is not None and isinstance(m.conv2, SampledConv)]
    assert len(downs) == {32: 2, 64: 3}[size] and len(D.blocks) == len(downs) + 2  # down to 8x8, then two more
    assert {l.weight.shape[0] for l in G.sublayers() if isinstance(l, nn.Conv2D)} == {24, channels}
    assert all(hasattr(l, "weight_orig") for l in D.sublayers() if isinstance(l, (nn.Conv2D, nn.Linear)))


def test_resnet_init_is_orthogonal():
    cfg = load_config(RESNET, ["model.g_channels=16", "model.d_channels=16", "model.spectral_norm=false"])
    paddle.seed(0)
    G, _ = build_models(cfg.model)
    for layer in G.sublayers():
        if isinstance(layer, nn.Conv2D) and layer.weight.shape[0] > 1:
            w = layer.weight.numpy().reshape(layer.weight.shape[0], -1)
            rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            np.testing.assert_allclose(rows, np.eye(len(rows)), atol=1e-4)
            assert np.all(layer.bias.numpy() == 0)


@pytest.mark.parametrize("k", [3, 1])
@pytest.mark.parametrize("up", [True, False])
def test_sampled_convolutions_equal_the_reference_operations(k, up):
    """nearest x2 then conv (up) and conv then 2x2 average pooling (down), forward and backward, on
    Paddle's kernels and on the oneDNN operator."""
    paddle.seed(0)
    layer = SampledConv(5, 7, k, up)
    x = paddle.randn([3, 5, 8, 8])
    x.stop_gradient = False

    def reference(x):
        h = F.interpolate(x, scale_factor=2, mode="nearest") if up else x
        h = F.conv2d(h, layer.weight, layer.bias, padding=k // 2)
        return h if up else F.avg_pool2d(h, 2)

    want = reference(x)
    (gx_want, gw_want) = paddle.grad(want.square().sum(), [x, layer.weight])
    for dnnl in (False, True):
        layer.dnnl = dnnl
        got = layer(x)
        (gx, gw) = paddle.grad(got.square().sum(), [x, layer.weight])
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
        np.testing.assert_allclose(gx.numpy(), gx_want.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gw.numpy(), gw_want.numpy(), rtol=1e-4, atol=1e-3)


def test_conditional_batchnorm_differs_only_through_the_per_class_parameters():
    cfg = load_config(RESNET, ["model.num_classes=10", "model.g_cond=cbn", "model.g_channels=16",
                               "model.d_channels=16"])
    paddle.seed(0)
    G, _ = build_models(cfg.model)
    G.eval()
    cbns = [m for m in G.sublayers() if isinstance(m, ConditionalBatchNorm2D)]
    assert len(cbns) == 6  # two per up-block
    z = paddle.randn([2, 100])
    a, b = paddle.to_tensor([3, 3]), paddle.to_tensor([7, 7])
    with paddle.no_grad():
        assert np.array_equal(G(z, a).numpy(), G(z, b).numpy())  # gains 1, biases 0 for every class at first
        rng = np.random.default_rng(0)
        for m in cbns:
            for table in (m.gain, m.bias):
                table.weight.set_value(table.weight.numpy() + rng.normal(0, 0.3, table.weight.shape).astype("float32"))
        assert np.abs(G(z, a).numpy() - G(z, b).numpy()).max() > 1e-3  # the label now matters
        for m in cbns:  # give class 7 the parameters of class 3: the same images again
            for table in (m.gain, m.bias):
                w = table.weight.numpy()
                w[7] = w[3]
                table.weight.set_value(w)
        assert np.array_equal(G(z, a).numpy(), G(z, b).numpy())
    assert not any(isinstance(m, nn.Embedding) and m.weight.shape == [10, 10] for m in G.sublayers())  # no z concat


@pytest.mark.parametrize("name", list(augment.AUGMENTS))
def test_each_augmentation_is_differentiable_and_seeded(name):
    fn = augment.AUGMENTS[name]
    x0 = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype("float64")
    weights = np.random.default_rng(1).normal(size=x0.shape)

    def f(xs):  # the same random draws on every call: reseeded
        paddle.seed(5)
        return fn(paddle.to_tensor(xs, "float64", stop_gradient=False))

    x = paddle.to_tensor(x0, "float64", stop_gradient=False)
    paddle.seed(5)
    out = fn(x)
    assert np.array_equal(out.numpy(), f(x0).numpy())  # deterministic under a seed
    paddle.seed(6)
    assert not np.array_equal(out.numpy(), fn(paddle.to_tensor(x0, "float64")).numpy())  # and random across seeds
    (g,) = paddle.grad((out * paddle.to_tensor(weights)).sum(), [x])
    for idx in [(0, 0, 3, 4), (1, 2, 0, 7), (0, 1, 5, 5)]:
        e = np.zeros_like(x0)
        e[idx] = 1e-6
        fd = ((f(x0 + e).numpy() - f(x0 - e).numpy()) * weights).sum() / 2e-6
        assert g.numpy()[idx] == pytest.approx(fd, rel=1e-5, abs=1e-8), idx


def _ckpt(run, step):
    return run / "checkpoints" / f"step_{step:07d}"


RESUMED = {
    "resnet_cbn_projection_r1": (RESNET, ["data.split=test", "model.num_classes=10", "model.g_cond=cbn", "model.d_cond=projection",
                                          "train.r1_gamma=1", "train.ema=0.9"]),
    "dcgan_diffaug_acgan_weights": ("quickstart.yaml", ["train.diffaug=color,translation,cutout", "model.num_classes=10",
                                                        "model.d_cond=acgan", "train.class_fakes=false",
                                                        "train.class_weight_G=0.5"]),
}


@pytest.mark.parametrize("scenario", list(RESUMED))
def test_new_runs_resume_bit_for_bit(tmp_path, scenario):
    config, extra = RESUMED[scenario]
    extra = SMALL + extra
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(straight, "train.steps=8", *extra, config=config) == 0
    assert train(resumed, "train.steps=4", *extra, config=config) == 0
    assert train(resumed, "train.steps=8", *extra, "--resume", config=config) == 0
    a, b = _ckpt(straight, 8), _ckpt(resumed, 8)
    for name in sorted(f for f in os.listdir(a) if f.endswith((".pdparams", ".pdopt"))):
        assert_same_state(a / name, b / name)
    assert [r["loss_D"] for r in read_jsonl(straight / "metrics.jsonl")] == \
        [r["loss_D"] for r in read_jsonl(resumed / "metrics.jsonl")]
    rows = read_jsonl(straight / "metrics.jsonl")
    assert ("r1" in rows[-1]) == ("train.r1_gamma=1" in extra) and ("class_G" in rows[-1]) == ("model.d_cond=acgan" in extra)


def test_class_fakes_and_weights_change_the_class_losses():
    from paddle_gan.gan.objective import Judged
    from paddle_gan.gan.terms import ClassLossD, ClassLossG

    out_real = paddle.to_tensor([[0.0, 2.0, -1.0], [0.0, 0.5, 0.3]])
    out_fake = paddle.to_tensor([[0.0, -1.0, 1.0], [0.0, 0.2, 0.1]])
    y, y_fake = paddle.to_tensor([0, 1]), paddle.to_tensor([1, 0])
    b = Judged(None, None, None, y, y_fake, out_real, out_fake)
    ce_real = float(F.cross_entropy(out_real[:, 1:], y))
    ce_fake = float(F.cross_entropy(out_fake[:, 1:], y_fake))
    assert float(ClassLossD()(b)) == pytest.approx(ce_real + ce_fake)
    assert float(ClassLossD(fakes=False)(b)) == pytest.approx(ce_real)
    assert float(ClassLossD(2.0, fakes=False)(b)) == pytest.approx(2 * ce_real)
    assert float(ClassLossG(0.5)(b)) == pytest.approx(0.5 * ce_fake)


@pytest.mark.parametrize("extra, expected", [
    (["model.g_cond=cbn"], "error: model.g_cond: cbn (conditional BatchNorm) needs classes"),
    (["train.diffaug=color,blur"], "error: train.diffaug: unknown augmentation 'blur' (choose from color, translation"),
    (["model.name=resnet", "model.img_size=48"], "error: model.img_size: resnet builds 32 or 64 pixels, got 48"),
    (["train.class_weight_G=2"], "error: train.class_weight_G: only a classifying D has class losses"),
    (["model.g_cond=cbn", "gan_mlp_mnist.yaml"], "error: model.g_cond: a key of dcgan, resnet, not of mlp"),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, capsys, extra, expected):
    out = tmp_path / "run"
    config = next((e for e in extra if e.endswith(".yaml")), "quickstart.yaml")
    extra = [e for e in extra if not e.endswith(".yaml")]
    small = SMALL if config == "quickstart.yaml" and "model.name=resnet" not in extra else []
    assert train(out, "train.steps=2", *extra, small=small, config=config) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(expected), err
    assert not out.exists()


@pytest.mark.parametrize("config", ["sngan_resnet_fashion_mnist.yaml", "cbn_projection_fashion_mnist.yaml",
                                    "diffaug_small_fashion_mnist.yaml"])
def test_every_new_config_trains(tmp_path, config):
    run = tmp_path / "run"
    assert train(run, "train.steps=2", "data.split=test", config=config) == 0
    state = json.loads((_ckpt(run, 2) / "state.json").read_text())
    assert state["step"] == 2 and np.isfinite(read_jsonl(run / "metrics.jsonl")[-1]["loss_D"])


def test_resnet_runs_on_the_onednn_operator_with_a_penalty():
    """Every convolution of the ResNet D runs on the operator, and an R1 penalty reaches D's weights."""
    from paddle_gan.gan.objective import Objective
    from paddle_gan.gan.state import make_optimizers
    from paddle_gan.gan.step import train_step

    cfg = load_config(RESNET, ["model.g_channels=8", "model.d_channels=8", "train.r1_gamma=10"])
    paddle.seed(0)
    G, D = build_models(cfg.model)
    n = ops.use_onednn(G) + ops.use_onednn(D)
    assert n == len([m for m in G.sublayers() + D.sublayers() if isinstance(m, nn.Conv2D)])
    opt_G, opt_D = make_optimizers(cfg, G, D)
    out = train_step(G, D, opt_G, opt_D, paddle.uniform([4, 1, 32, 32], min=-1, max=1), paddle.randn([4, 100]),
                     objective=Objective.of(cfg))
    assert out["r1"] > 0 and all(np.isfinite(v) for v in out.values())


def test_checkpoints_written_before_class_fakes_resume_with_it():
    """class_fakes now defaults to false (measured); a checkpoint written before the key existed was
    trained with D's classifier learning from fakes, and a resume of it continues that run."""
    from paddle_gan.config import Config
    from paddle_gan.run.state_json import checkpoint_config

    assert Config().train.class_fakes is False
    old = load_config(os.path.join(CONFIGS, "acgan_fashion_mnist.yaml")).to_dict()
    del old["train"]["class_fakes"]
    assert checkpoint_config({"config": old}).train.class_fakes is True
    old["train"]["class_fakes"] = False
    assert checkpoint_config({"config": old}).train.class_fakes is False
