"""Model shapes for every config, the layer widths each setup promises, init statistics, and the
numerics of train_step against an independent NumPy computation."""
import copy
import glob
import os

import numpy as np
import paddle
import pytest
from conftest import CONFIGS
from paddle import nn

from paddle_gan.config import Config, load_config
from paddle_gan.gan.models import build_generator, build_models
from paddle_gan.gan.state import make_optimizers
from paddle_gan.gan.step import train_step


def layers_of(model, kind):
    return [l for l in model.sublayers() if isinstance(l, kind)]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIGS, "*.yaml"))), ids=os.path.basename)
def test_every_config_builds_and_has_the_right_shapes(path):
    overrides = ["data.root=/data"] if "anime" in path else []
    m = load_config(path, overrides).model
    paddle.seed(0)
    G, D = build_models(m)
    z = paddle.randn([3, m.z_dim])
    y = [paddle.to_tensor([0, 1, 2])] if m.num_classes else []  # a class-conditional model takes labels
    G.eval()
    x = G(z, *y)
    assert x.shape == [3, m.channels, m.img_size, m.img_size]
    from paddle_gan.gan.models import MODELS

    assert MODELS[m.name].styled or float(x.abs().max()) <= 1.0  # tanh output (StyleGAN2's is linear, as the paper's)
    out = D(x, *y)  # the logit, then the class logits of a D that classifies (acgan)
    assert out.shape == [3, 1 + (m.num_classes if m.d_cond == "acgan" else 0)]


def test_dcgan_mnist_widths():
    G, D = build_models(load_config(os.path.join(CONFIGS, "dcgan_mnist.yaml")).model)
    convt = layers_of(G, nn.Conv2DTranspose)
    assert [(l.weight.shape[0], l.weight.shape[1]) for l in convt] == [(100, 256), (256, 128), (128, 64), (64, 1)]
    assert all(l.weight.shape[2:] == [4, 4] for l in convt)
    conv = layers_of(D, nn.Conv2D)
    assert [(l.weight.shape[1], l.weight.shape[0]) for l in conv] == [(1, 64), (64, 128), (128, 256), (256, 1)]
    assert len(layers_of(G, nn.BatchNorm2D)) == 3 and len(layers_of(D, nn.BatchNorm2D)) == 2
    assert all(l._negative_slope == 0.2 for l in layers_of(D, nn.LeakyReLU))


def test_anime64_widths():
    m = load_config(os.path.join(CONFIGS, "dcgan_anime64.yaml"), ["data.root=/data"]).model
    G, D = build_models(m)
    assert G.fc[0].weight.shape == [100, 4 * 4 * 1024]
    convt = layers_of(G, nn.Conv2DTranspose)
    assert [(l.weight.shape[0], l.weight.shape[1]) for l in convt] == [(1024, 512), (512, 256), (256, 128), (128, 3)]
    assert all(l.weight.shape[2:] == [5, 5] for l in convt)
    conv = layers_of(D, nn.Conv2D)
    assert [l.weight.shape[0] for l in conv] == [128, 256, 512, 1024] and all(l.weight.shape[2:] == [5, 5] for l in conv)
    assert [l.p for l in layers_of(D, nn.Dropout)] == [0.3] * 4


@pytest.mark.parametrize("g_hidden, d_hidden", [([128, 256, 512, 1024], [512, 256]), ([128, 256], [256, 128])])
def test_mlp_widths(g_hidden, d_hidden):
    cfg = load_config(os.path.join(CONFIGS, "gan_mlp_mnist.yaml"),
                      [f"model.g_hidden={g_hidden}", f"model.d_hidden={d_hidden}"])
    G, D = build_models(cfg.model)
    assert [l.weight.shape[1] for l in layers_of(G, nn.Linear)] == g_hidden + [784]
    assert [l.weight.shape[1] for l in layers_of(D, nn.Linear)] == d_hidden + [1]
    assert len(layers_of(G, nn.BatchNorm1D)) == len(g_hidden) - 1  # none after the first layer
    assert G(paddle.randn([2, 100])).shape == [2, 1, 28, 28]


def test_dcgan_init_statistics():
    paddle.seed(1)
    G, D = build_models(Config().model)
    weights = np.concatenate([l.weight.numpy().ravel() for m in (G, D)
                              for l in layers_of(m, (nn.Conv2D, nn.Conv2DTranspose))])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 1e-3
    bn = np.concatenate([l.weight.numpy() for m in (G, D) for l in layers_of(m, nn.BatchNorm2D)])
    assert abs(bn.mean() - 1.0) < 5e-3 and abs(bn.std() - 0.02) < 5e-3
    biases = [l.bias.numpy() for m in (G, D) for l in m.sublayers() if getattr(l, "bias", None) is not None]
    assert biases and all(np.all(b == 0) for b in biases)


def test_same_seed_same_init_and_names():
    paddle.seed(3)
    G1, _ = build_models(Config().model)
    paddle.seed(3)
    G2 = build_generator(Config().model)
    for (k1, p1), (k2, p2) in zip(G1.named_parameters(), G2.named_parameters()):
        assert k1 == k2 and p1.name == p2.name  # optimizer state is keyed by p.name
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _bce_np(logits, target):
    p = _sigmoid(logits.astype(np.float64))
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def test_train_step_losses_and_updates_match_an_independent_computation():
    cfg = load_config(os.path.join(CONFIGS, "gan_mlp_mnist.yaml"), ["model.g_hidden=[32]", "model.d_hidden=[16]"])
    paddle.seed(0)
    G, D = build_models(cfg.model)
    opt_G, opt_D = make_optimizers(cfg, G, D)
    real = paddle.uniform([8, 1, 28, 28], min=-1, max=1)
    z = paddle.randn([8, 100])
    D0 = copy.deepcopy(D)
    with paddle.no_grad():
        fake = G(z)
        lr, lf = D0(real).numpy(), D0(fake).numpy()
    G_before = {k: v.numpy().copy() for k, v in G.state_dict().items()}
    out = train_step(G, D, opt_G, opt_D, real, z)
    assert set(out) == {"loss_D", "loss_G", "D_real", "D_fake"} and all(isinstance(v, float) for v in out.values())
    np.testing.assert_allclose(out["loss_D"], _bce_np(lr, 1) + _bce_np(lf, 0), rtol=1e-5)
    np.testing.assert_allclose(out["D_real"], _sigmoid(lr).mean(), rtol=1e-5)
    np.testing.assert_allclose(out["D_fake"], _sigmoid(lf).mean(), rtol=1e-5)
    # the G loss is taken through the D that the D step just updated
    with paddle.no_grad():
        lg = D(fake).numpy()
    np.testing.assert_allclose(out["loss_G"], _bce_np(lg, 1), rtol=1e-4)
    # first Adam step moves every weight by about lr (sign of its gradient)
    G_step = [np.abs(v.numpy() - G_before[k]).max() for k, v in G.state_dict().items() if k.endswith("weight")]
    assert all(1e-5 < s <= 2.1e-4 for s in G_step)


def test_bce_is_stable_for_extreme_logits():
    cfg = load_config(os.path.join(CONFIGS, "gan_mlp_mnist.yaml"), ["model.g_hidden=[8]", "model.d_hidden=[8]"])
    paddle.seed(0)
    G, D = build_models(cfg.model)
    last = [l for l in D.sublayers() if isinstance(l, nn.Linear)][-1]
    last.bias.set_value(paddle.to_tensor([200.0]))  # sigmoid saturates: naive log(sigmoid) would give inf
    opt_G, opt_D = make_optimizers(cfg, G, D)
    out = train_step(G, D, opt_G, opt_D, paddle.zeros([4, 1, 28, 28]), paddle.randn([4, 100]))
    assert all(np.isfinite(v) for v in out.values()) and out["loss_D"] > 100


def test_freezing_D_in_the_G_step_changes_nothing_but_the_work():
    """train_step skips D's weight gradients in the G step; G and D come out bit-identical to the
    plain formulation, where the G step's backward also fills D's (unused) gradients."""
    from paddle_gan.gan.losses import bce as _bce

    def plain_step(G, D, opt_G, opt_D, real, z):
        fake = G(z)
        loss_D = _bce(D(real), 1.0) + _bce(D(fake.detach()), 0.0)
        opt_D.clear_grad()
        loss_D.backward()
        opt_D.step()
        loss_G = _bce(D(fake), 1.0)
        opt_G.clear_grad()
        loss_G.backward()
        opt_G.step()

    cfg = load_config(os.path.join(CONFIGS, "quickstart.yaml"), ["model.g_channels=8", "model.d_channels=8"])
    runs = []
    for step_fn in (train_step, plain_step):
        paddle.seed(0)
        G, D = build_models(cfg.model)
        opt_G, opt_D = make_optimizers(cfg, G, D)
        trainable = [p.stop_gradient for p in D.parameters()]  # BN running stats are frozen parameters
        for i in range(3):
            paddle.seed(100 + i)
            step_fn(G, D, opt_G, opt_D, paddle.uniform([4, 1, 32, 32], min=-1, max=1), paddle.randn([4, 100]))
        runs.append({f"{n}.{k}": v.numpy() for n, m in (("G", G), ("D", D)) for k, v in m.state_dict().items()})
        assert [p.stop_gradient for p in D.parameters()] == trainable  # unfrozen again afterwards
    fast, plain = runs
    for k in plain:
        np.testing.assert_array_equal(fast[k], plain[k], err_msg=k)
