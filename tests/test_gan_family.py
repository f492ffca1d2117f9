"""The GAN family by config: each loss and penalty against an independent computation, spectral
norm, the EMA generator's closed form, class-conditional models end to end, bit-exact resume of the
new variants, and their bad inputs."""
import json
import os
import shutil

import cv2
import numpy as np
import paddle
import pytest
from conftest import (
    BUNDLED_DIR,
    CONFIGS,
    SMALL,
    SMALL_MLP,
    assert_same_state,
    read_jsonl,
    tool,
    train,
)
from paddle import nn

from paddle_gan.config import load_config
from paddle_gan.gan.ema import EMA, decay_at
from paddle_gan.gan.losses import (
    LOSSES,
    gradient_penalty,
    input_gradient_squares,
    r1_penalty,
)
from paddle_gan.gan.models import build_models
from paddle_gan.gan.state import make_optimizers
from paddle_gan.gan.step import Objective, train_step

# ---- losses and penalties against NumPy ------------------------------------------------------------

def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def test_each_loss_matches_its_formula():
    r = np.array([[0.3], [-1.2], [2.0], [0.9]])
    f = np.array([[-0.5], [1.5], [0.1], [-2.0]])
    want = {  # (D loss, G loss) as the papers write them
        "nonsaturating": (np.mean(_softplus(-r)) + np.mean(_softplus(f)), np.mean(_softplus(-f))),
        "hinge": (np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)), -np.mean(f)),
        "wgan_gp": (np.mean(f) - np.mean(r), -np.mean(f)),
        "lsgan": (0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2), 0.5 * np.mean((f - 1) ** 2)),
    }
    assert set(LOSSES) == set(want)
    for name, loss in LOSSES.items():
        d_loss, g_loss = loss.d, loss.g
        rt, ft = paddle.to_tensor(r, "float32"), paddle.to_tensor(f, "float32")
        assert float(d_loss(rt, ft)) == pytest.approx(want[name][0], rel=1e-6), name
        assert float(g_loss(ft)) == pytest.approx(want[name][1], rel=1e-6), name


def _small_D():
    paddle.seed(3)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 1))


def _penalty(D, x, kind):
    x = paddle.to_tensor(x, "float32", stop_gradient=False)
    squares = input_gradient_squares(D(x), x)
    return gradient_penalty(squares, 10.0) if kind == "gp" else r1_penalty(squares, 2.0)


@pytest.mark.parametrize("kind", ["gp", "r1"])
def test_penalties_and_their_gradients_match_finite_differences(kind):
    """The penalty value from finite differences of D in x, and its gradient in D's weights (the
    gradient of a gradient) from finite differences of the penalty in one weight."""
    D = _small_D()
    x = np.random.default_rng(0).normal(size=(4, 5))

    def d_np(xs):
        with paddle.no_grad():
            return D(paddle.to_tensor(xs, "float32")).numpy().astype(np.float64).ravel()

    eps = 1e-3
    grads = np.stack([(d_np(x + eps * np.eye(5)[j]) - d_np(x - eps * np.eye(5)[j])) / (2 * eps) for j in range(5)], 1)
    norms = np.linalg.norm(grads, axis=1)
    want = 10 * np.mean((norms - 1) ** 2) if kind == "gp" else 0.5 * 2.0 * np.mean(norms ** 2)
    pen = _penalty(D, x, kind)
    assert float(pen) == pytest.approx(want, rel=1e-3)
    pen.backward()
    w = D[0].weight
    analytic = w.grad.numpy()[2, 3]
    base, h, vals = w.numpy().copy(), 1e-2, []
    for s in (h, -h):
        moved = base.copy()
        moved[2, 3] += s
        w.set_value(moved)
        vals.append(float(_penalty(D, x, kind)))
    w.set_value(base)
    assert analytic == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=2e-2, abs=1e-5)


@pytest.mark.parametrize("config, extra", [("wgan_gp_fashion_mnist.yaml", []),
                                           ("quickstart.yaml", ["train.r1_gamma=10"]),
                                           ("dcgan_anime64.yaml", ["data.root=x", "model.dropout=0", "train.r1_gamma=1"])])
def test_penalty_gradients_on_the_onednn_operator_equal_paddles(config, extra):
    """The operator's second derivative: the penalty's gradient in every weight of D (BatchNorm in D
    or not, conv and dense heads) is the one Paddle's own kernels give."""
    from paddle_gan import ops
    from paddle_gan.gan.objective import Judged
    from paddle_gan.gan.terms import R1, GradientPenalty

    cfg = load_config(os.path.join(CONFIGS, config), SMALL + extra + ["model.img_size=32"])
    term = GradientPenalty(10.0) if cfg.train.loss == "wgan_gp" else R1(cfg.train.r1_gamma)
    grads = []
    for fast in (False, True):
        paddle.seed(0)
        _, D = build_models(cfg.model)
        if fast:
            assert ops.use_onednn(D) > 0
        paddle.seed(1)
        real = paddle.uniform([4, cfg.model.channels, 32, 32], min=-1, max=1)
        real.stop_gradient = False
        fake = paddle.uniform([4, cfg.model.channels, 32, 32], min=-1, max=1)
        b = Judged(lambda x, y: D(x), real, fake, None, None, D(real), None)
        value = term(b)
        value.backward()
        grads.append((float(value), {k: p.grad.numpy() for k, p in D.named_parameters() if p.grad is not None}))
    (v_ref, g_ref), (v_fast, g_fast) = grads
    assert v_fast == pytest.approx(v_ref, rel=1e-4) and v_ref > 0
    assert set(g_ref) <= set(g_fast) and len(g_ref) >= 4
    for k in set(g_fast) - set(g_ref):  # biases: the input gradient does not depend on them (Paddle gives none)
        assert not np.any(g_fast[k]), k
    for k in g_ref:
        scale = np.abs(g_ref[k]).max()
        assert scale > 0, k  # the penalty reaches every weight
        np.testing.assert_allclose(g_fast[k], g_ref[k], atol=2e-4 * scale, rtol=1e-3, err_msg=k)


def test_n_critic_updates_d_on_each_batch_then_g_once():
    cfg = load_config(os.path.join(CONFIGS, "wgan_gp_fashion_mnist.yaml"), SMALL)
    paddle.seed(0)
    G, D = build_models(cfg.model)
    opt_G, opt_D = make_optimizers(cfg, G, D)
    reals = [paddle.uniform([4, 1, 32, 32], min=-1, max=1) for _ in range(3)]
    out = train_step(G, D, opt_G, opt_D, reals, [paddle.randn([4, 100]) for _ in range(3)],
                     objective=Objective.of(cfg))
    assert {"loss_D", "loss_G", "D_real", "D_fake", "gp"} <= set(out) and out["gp"] > 0
    # Adam's beta powers count the updates (beta2^(updates + 1); beta1 is 0 in this config): 3 for D, 1 for G
    b2_D = next(iter(opt_D._accumulators["beta2_pow_acc"].values())).numpy().item()
    b2_G = next(iter(opt_G._accumulators["beta2_pow_acc"].values())).numpy().item()
    assert b2_D == pytest.approx(0.9 ** 4, rel=1e-6) and b2_G == pytest.approx(0.9 ** 2, rel=1e-6)


# ---- spectral norm and the EMA ---------------------------------------------------------------------

def test_spectral_norm_keeps_each_d_weight_near_sigma_one():
    cfg = load_config(os.path.join(CONFIGS, "sngan_fashion_mnist.yaml"), SMALL)
    paddle.seed(0)
    _, D = build_models(cfg.model)
    assert not [l for l in D.sublayers() if isinstance(l, nn.BatchNorm2D)]  # BN left out under SN
    x = paddle.uniform([8, 1, 32, 32], min=-1, max=1)
    for _ in range(30):  # one power iteration per forward in training mode
        D(x)
    weighted = [l for l in D.sublayers() if isinstance(l, (nn.Conv2D, nn.Linear))]
    assert len(weighted) == 4
    for layer in weighted:
        w = layer.weight.numpy()
        sigma = np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]
        raw = np.linalg.svd(layer.weight_orig.numpy().reshape(w.shape[0], -1), compute_uv=False)[0]
        assert sigma == pytest.approx(1.0, rel=0.05) and raw != pytest.approx(1.0, rel=0.05)


def test_ema_after_k_updates_equals_its_closed_form():
    paddle.seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1D(4))
    ema = EMA(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1D(4)), decay=0.9)
    ema.reset(G)
    history = [G[0].weight.numpy().astype(np.float64)]
    opt = paddle.optimizer.SGD(0.5, parameters=G.parameters())
    for step in range(1, 7):
        loss = (G(paddle.randn([5, 3])) ** 2).mean()
        opt.clear_grad()
        loss.backward()
        opt.step()
        ema.update(G, step)
        history.append(G[0].weight.numpy().astype(np.float64))
    d = [decay_at(0.9, s) for s in range(1, 7)]  # 0.2, 0.273, ..., 0.9 capped
    assert d[0] == pytest.approx(2 / 11) and max(d) <= 0.9
    want = np.prod(d) * history[0]
    for j in range(1, 7):  # e_k = prod(d) p_0 + sum_j (1 - d_j) prod_{i > j} d_i p_j
        want = want + (1 - d[j - 1]) * np.prod(d[j:]) * history[j]
    np.testing.assert_allclose(ema.G[0].weight.numpy(), want, rtol=1e-5, atol=1e-6)
    # BatchNorm statistics are copied, not averaged
    np.testing.assert_array_equal(ema.G[1]._mean.numpy(), G[1]._mean.numpy())


# ---- the real entry points ---------------------------------------------------------------------------

def _ckpt(run, step):
    return run / "checkpoints" / f"step_{step:07d}"


RESUMED = {  # scenario -> overrides: together they cover hinge + SN + EMA, WGAN-GP with n_critic > 1, both conditionings
    "hinge_sn_ema_projection": ["train.loss=hinge", "model.spectral_norm=true", "train.ema=0.99",
                                "model.num_classes=10", "model.d_cond=projection"],
    "wgan_gp_ncritic2_acgan_r1": ["train.loss=wgan_gp", "train.n_critic=2", "model.d_norm=none", "train.r1_gamma=1",
                                  "model.num_classes=10", "model.d_cond=acgan"],
}


@pytest.mark.parametrize("scenario", list(RESUMED))
def test_new_variants_resume_bit_for_bit(tmp_path, scenario):
    """2N steps straight == N + --resume + N: weights, spectral-norm vectors, EMA, Adam state."""
    extra = RESUMED[scenario]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(straight, "train.steps=8", *extra) == 0
    assert train(resumed, "train.steps=4", *extra) == 0
    assert train(resumed, "train.steps=8", *extra, "--resume") == 0
    a, b = _ckpt(straight, 8), _ckpt(resumed, 8)
    files = sorted(f for f in os.listdir(a) if f.endswith((".pdparams", ".pdopt")))
    assert ("G_ema.pdparams" in files) == ("train.ema=0.99" in extra)
    for name in files:
        assert_same_state(a / name, b / name)
    sd = paddle.load(str(a / "D.pdparams"))
    assert any(k.endswith("weight_u") for k in sd) == ("model.spectral_norm=true" in extra)
    state = json.loads((a / "state.json").read_text())
    n_critic = 2 if "train.n_critic=2" in extra else 1
    assert state["data"]["offset"] == 8 * n_critic * 16 and state["classes"][7] == "Sneaker"
    rows_a, rows_b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [r["loss_D"] for r in rows_a] == [r["loss_D"] for r in rows_b]
    grid = cv2.imread(str(straight / "samples" / "step_0000008.png"), cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (2 * (10 * 34 + 2), 2 * (7 * 34 + 2))  # a row per class, ceil(64 / 10) = 7 per row, shown x2


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cond") / "run"
    assert train(run, "train.steps=4", "train.ema=0.9", "model.num_classes=10", "model.d_cond=acgan",
                 "train.eval_every=4", "train.eval_samples=100") == 0
    return run


def test_conditional_training_scores_class_accuracy_and_uses_the_ema(conditional_run):
    rows = [r for r in read_jsonl(conditional_run / "metrics.jsonl") if "fid_lenet_fashion" in r]
    assert rows[-1]["generator"] == "G_ema" and 0 <= rows[-1]["class_acc_lenet_fashion"] <= 1
    assert len(rows[-1]["class_acc_per_class_lenet_fashion"]) == 10
    from visualdl import LogReader

    tags = LogReader(file_path=str(conditional_run / "vdl" / "vdlrecords.paddle_gan.log")).get_tags()["scalar"]
    assert "score/G_ema/fid_lenet_fashion" in tags  # the dashboard says which generator was scored
    best = json.loads((conditional_run / "checkpoints" / "best" / "state.json").read_text())
    assert best["eval"]["generator"] == "G_ema"


def test_generate_eval_and_export_a_conditional_checkpoint(conditional_run, tmp_path, capsys):
    from paddle_gan.run.generator import open_generator

    ckpt = str(_ckpt(conditional_run, 4))
    out = tmp_path / "sneakers"
    assert tool("generate", "--checkpoint", ckpt, "--class", "Sneaker", "--num", "3", "--out", str(out)) == 0
    assert sorted(os.listdir(out)) == ["000000.png", "000001.png", "000002.png", "generated.json"]
    gen = open_generator(ckpt)
    assert gen.which == "G_ema" and open_generator(ckpt, raw=True).which == "G"
    z = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    with paddle.no_grad():  # a 4-step G barely moves from 0: compare at its own scale
        want = {c: gen.G(paddle.to_tensor(z), paddle.to_tensor([c] * 3)).numpy() for c in (1, 7)}
    scale = np.abs(want[7]).max()
    assert np.abs(want[1] - want[7]).max() > 0.05 * scale  # the label matters
    assert cv2.imread(str(out / "000000.png"), cv2.IMREAD_GRAYSCALE).shape == (32, 32)
    assert tool("generate", "--checkpoint", ckpt, "--class", "12", "--num", "3", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --class 12: not a class of this generator (0=T-shirt/top")
    assert tool("generate", "--checkpoint", ckpt, "--grid", "--num", "20", "--out", str(tmp_path / "g")) == 0
    assert cv2.imread(str(tmp_path / "g" / "grid.png")).shape[:2] == (2 * (10 * 34 + 2), 2 * (2 * 34 + 2))  # shown x2
    # export: the program takes (z, label) and gives what the dygraph EMA generator gives for that class
    assert tool("export", "--checkpoint", ckpt, "--out", str(tmp_path / "x")) == 0
    exported = paddle.jit.load(str(tmp_path / "x" / "generator"))
    for c in (1, 7):
        got = exported(paddle.to_tensor(z), paddle.to_tensor([c] * 3)).numpy()
        assert got.shape == (3, 1, 32, 32) and np.abs(got - want[c]).max() <= 1e-4 * scale
    info = json.load(open(tmp_path / "x" / "export.json"))
    assert info["classes"][7] == "Sneaker" and "label: int64 [N]" in info["input"] and info["generator"] == "G_ema"
    # eval: the class accuracy per class name, and which generator was scored
    assert tool("eval", "--checkpoint", ckpt, "--num", "100", "--data-root", BUNDLED_DIR, "--raw") == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["generator"] == "G" and set(record["class_acc_per_class_lenet_fashion"]) >= {"Sneaker", "Bag"}


def _class_folder(root, classes):
    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for j in range(6):
            cv2.imwrite(str(root / name / f"{j}.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    return root


def test_an_image_folder_gives_one_class_per_sub_folder(tmp_path):
    root = _class_folder(tmp_path / "faces", ["cats", "dogs"])
    run = tmp_path / "run"
    assert train(run, f"data.root={root}", "data.name=image_folder", "model.num_classes=2", "train.steps=2",
                 "train.batch_size=4", "data.limit=0") == 0
    state = json.loads((_ckpt(run, 2) / "state.json").read_text())
    assert state["classes"] == ["cats", "dogs"]
    assert tool("generate", "--checkpoint", str(_ckpt(run, 2)), "--class", "dogs", "--num", "2",
                "--out", str(tmp_path / "dogs")) == 0


@pytest.mark.parametrize("extra, expected", [
    (["train.loss=wasserstein"], "error: train.loss: must be one of nonsaturating, hinge, wgan_gp, lsgan, got 'wasserstein'"),
    (["model.num_classes=7"], "error: model.num_classes: fashion_mnist has 10 classes, got 7"),
    (["train.loss=wgan_gp", "model.dropout=0.3"], "error: model.dropout: train.loss=wgan_gp penalises D's input gradient"),
    (["train.gp_lambda=5"], "error: train.gp_lambda: train.loss=nonsaturating has no gradient penalty (only wgan_gp)"),
    (["model.d_cond=auxiliary", "model.num_classes=10"], "error: model.d_cond: must be one of projection, acgan, got 'auxiliary'"),
    (["train.ema=1.5"], "error: train.ema: must be in [0, 1)"),
    (["train.n_critic=0"], "error: train.n_critic: must be >= 1"),
    ("no class folders", "error: data.root"),
    ("3 class folders", "has 3 class sub-folders (a, b, c), but model.num_classes is 5"),
])
def test_bad_family_settings_are_one_line_and_write_nothing(tmp_path, capsys, extra, expected):
    if extra == "no class folders":
        root = tmp_path / "flat"
        root.mkdir()
        cv2.imwrite(str(root / "a.png"), np.zeros((8, 8), np.uint8))
        extra = [f"data.root={root}", "data.name=image_folder", "model.num_classes=3"]
    elif extra == "3 class folders":
        extra = [f"data.root={_class_folder(tmp_path / 'imgs', ['a', 'b', 'c'])}", "data.name=image_folder",
                 "model.num_classes=5"]
    out = tmp_path / "run"
    assert train(out, "train.steps=2", *extra) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and expected in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("config", ["sngan_fashion_mnist.yaml", "wgan_gp_fashion_mnist.yaml", "lsgan_fashion_mnist.yaml",
                                    "acgan_fashion_mnist.yaml", "cgan_mnist.yaml"])
def test_every_new_config_trains(tmp_path, config):
    run = tmp_path / "run"
    small = SMALL_MLP if "mlp" in open(os.path.join(CONFIGS, config)).read() else SMALL
    assert train(run, "train.steps=2", "data.name=fashion_mnist", "data.split=test", config=config, small=small) == 0
    rows = read_jsonl(run / "metrics.jsonl")
    assert rows[-1]["step"] == 2 and np.isfinite(rows[-1]["loss_D"]) and np.isfinite(rows[-1]["loss_G"])
    assert os.path.isdir(_ckpt(run, 2))
    shutil.rmtree(run)


def test_the_ema_generator_measures_its_own_batchnorm_statistics():
    """G's running statistics describe G's activations, not the averaged weights': G_ema measures its own."""
    paddle.seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1D(4))
    z = np.random.default_rng(0).standard_normal((512, 3)).astype(np.float32)
    ema = EMA(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1D(4)), decay=0.9, stats_z=z)
    ema.reset(G)
    with paddle.no_grad():
        G[0].weight.set_value(G[0].weight.numpy() * 3)  # G moves on; the average lags behind
    ema.update(G, 1)
    assert not ema.fresh and np.array_equal(ema.G[1]._mean.numpy(), G[1]._mean.numpy())
    G_ema = ema.ready()  # measured on z, in chunks of 256 averaged
    with paddle.no_grad():
        h = G_ema[0](paddle.to_tensor(z)).numpy().astype(np.float64)
    np.testing.assert_allclose(G_ema[1]._mean.numpy(), h.mean(0), rtol=1e-4, atol=1e-6)
    chunk_vars = [h[i:i + 256].var(0) for i in (0, 256)]  # each chunk's (biased) variance, averaged
    np.testing.assert_allclose(G_ema[1]._variance.numpy(), np.mean(chunk_vars, 0), rtol=1e-4)
    assert ema.fresh and not G_ema.training and G_ema[1]._momentum == 0.9
