"""Scores against independent computations; the extractors' weights, shapes and key layouts."""
import os

import numpy as np
import pytest

from conftest import tool
from paddle_gan.data import BUNDLED_DIR, DataError, load_idx_dataset
from paddle_gan.metrics import (
    density_coverage,
    feature_stats,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid,
    precision_recall,
)


def _sqrtm_denman_beavers(a, iters=100):
    """Principal square root of a (possibly non-symmetric) matrix by the Denman-Beavers iteration."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(iters):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def test_frechet_distance_closed_form_and_independent_sqrtm():
    rng = np.random.default_rng(0)
    # diagonal covariances: FID = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    mu1, mu2, s1, s2 = rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    want = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want, rel=1e-10)
    # full covariances: against Tr(sqrtm(S1 S2)) from an iteration on the non-symmetric product
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    S1, S2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    want = np.trace(S1) + np.trace(S2) - 2 * np.trace(_sqrtm_denman_beavers(S1 @ S2))
    assert frechet_distance(np.zeros(6), S1, np.zeros(6), S2) == pytest.approx(want, rel=1e-8)
    # identical sets -> 0; a shift by c in every dimension -> d c^2
    x = rng.normal(size=(500, 8))
    assert abs(fid_from_features(x, x)) < 1e-8
    assert fid_from_features(x, x + 0.5) == pytest.approx(8 * 0.25, rel=1e-8)
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(sigma, np.cov(x.T))


def test_kid_matches_a_direct_double_sum():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.0, size=(10, 5))

    def k(a, b):
        return (a @ b / 5 + 1) ** 3

    n = len(y)
    # one subset holding every sample of the smaller set: the subset draw only permutes x
    out = kid(x[:10], y, subsets=1, subset_size=10)
    xs = x[:10]
    want10 = (sum(k(xs[i], xs[j]) for i in range(10) for j in range(10) if i != j) / 90
              + sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
              - 2 * sum(k(xs[i], y[j]) for i in range(10) for j in range(n)) / (10 * n))
    assert out["kid"] == pytest.approx(want10, rel=1e-5) and out["kid_std"] == 0  # float32 products
    for method in ("subsets", "indicators"):  # both ways of summing the kernel give it
        assert kid(x[:10], y, subsets=1, subset_size=10, method=method)["kid"] == pytest.approx(want10, rel=1e-5)
    a = rng.normal(size=(300, 4))
    shifted = kid(a, a + 1.0, subsets=20, subset_size=100)["kid"]
    assert abs(kid(a, a, subsets=20, subset_size=100)["kid"]) < 0.1 * shifted  # same distribution: ~0 (unbiased)
    assert kid(x, y, subsets=7, seed=3) == kid(x, y, subsets=7, seed=3)
    many = [kid(a, a + 0.5, subsets=9, subset_size=40, seed=1, method=m) for m in ("subsets", "indicators")]
    assert many[0]["kid"] == pytest.approx(many[1]["kid"], rel=1e-6)
    assert many[0]["kid_std"] == pytest.approx(many[1]["kid_std"], rel=1e-5)


def test_inception_score_extremes():
    k = 7
    confident_and_balanced = np.eye(k)[np.arange(70) % k]
    assert inception_score(confident_and_balanced, splits=1)["is"] == pytest.approx(k, rel=1e-9)
    assert inception_score(np.full((50, k), 1 / k), splits=5)["is"] == pytest.approx(1.0)
    one_class = np.eye(k)[np.zeros(40, int)]
    assert inception_score(one_class, splits=4) == {"is": pytest.approx(1.0), "is_std": pytest.approx(0.0)}


def _brute_prdc(real, fake, k_pr=3, k_dc=5):
    def radius(x, k):
        return [sorted(np.linalg.norm(x - p, axis=1))[k] for p in x]  # index 0: the point itself

    rr3, rf3, rr5 = radius(real, k_pr), radius(fake, k_pr), radius(real, k_dc)
    prec = np.mean([any(np.linalg.norm(f - r) <= rr3[i] for i, r in enumerate(real)) for f in fake])
    rec = np.mean([any(np.linalg.norm(r - f) <= rf3[j] for j, f in enumerate(fake)) for r in real])
    dens = sum(np.linalg.norm(f - r) <= rr5[i] for f in fake for i, r in enumerate(real)) / (k_dc * len(fake))
    cov = np.mean([any(np.linalg.norm(r - f) <= rr5[i] for f in fake) for i, r in enumerate(real)])
    return prec, rec, dens, cov


def test_precision_recall_density_coverage_against_brute_force():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(40, 3)), rng.normal(0.7, 1.3, size=(30, 3))
    prec, rec, dens, cov = _brute_prdc(real, fake)
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr == {"precision": pytest.approx(prec), "recall": pytest.approx(rec)}
    assert dc == {"density": pytest.approx(dens), "coverage": pytest.approx(cov)}
    assert 0 < prec < 1 and 0 < rec < 1 and 0 < cov < 1
    same = density_coverage(real, real)
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0} and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0 + 1 / 5)  # each point sits in its own ball and in k of its neighbours'
    # the blocked code path gives the same answer
    from paddle_gan.metrics import scores

    r = scores.kth_neighbour_radii(real.astype(np.float32), {3, 5}, block=7)
    whole = scores.kth_neighbour_radii(real.astype(np.float32), {3, 5})
    np.testing.assert_array_equal(r[3], whole[3]) and np.testing.assert_array_equal(r[5], whole[5])
    assert scores.knn_scores(real, fake, block=7) == scores.knn_scores(real, fake)
    # and so do real radii kept from an earlier call (the in-training Evaluator keeps them)
    assert scores.knn_scores(real, fake, real_radii=whole) == scores.knn_scores(real, fake)


def test_shipped_lenet_evaluator_matches_its_recorded_accuracy():
    from paddle_gan.metrics.lenet import LeNetExtractor, accuracy

    ex = LeNetExtractor("fashion_mnist")
    test = load_idx_dataset("fashion_mnist", BUNDLED_DIR, "test", 28, 1)  # the bundled copy is the test split
    acc = accuracy(ex.model, test.images, test.labels)
    assert acc == pytest.approx(ex.info["test_accuracy"], abs=1e-3) and acc > 0.85
    assert ex.name == "lenet_fashion"
    from paddle_gan.data import to_float

    feats, probs = ex.features_and_probs(to_float(test.images[:10]))
    assert feats.shape == (10, 128) and probs.shape == (10, 10)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    with pytest.raises(DataError, match="no LeNet evaluator for 'cifar10'"):
        LeNetExtractor("cifar10")
    with pytest.raises(DataError, match="train them with python tools/train_evaluator.py --data mnist"):
        LeNetExtractor("mnist", path="/nonexistent/lenet_mnist.pdparams")


def test_real_test_split_scores_better_than_noise(tmp_path, monkeypatch):
    """End to end on real data: half the bundled test split against the other half is close; noise is far."""
    from paddle_gan.config import Config
    from paddle_gan.data import to_float
    from paddle_gan.metrics import evaluate_images, make_extractor

    cfg = Config()
    cfg.data.name, cfg.data.root, cfg.data.split, cfg.data.limit = "fashion_mnist", BUNDLED_DIR, "test", 1000
    cfg.model.img_size, cfg.model.channels = 32, 1
    ex = make_extractor("auto", "fashion_mnist", 1)
    other = load_idx_dataset("fashion_mnist", BUNDLED_DIR, "test", 32, 1).images[-1000:]
    real = evaluate_images(to_float(other), ex, cfg.data, cfg.model, seed=0)
    noise = evaluate_images(np.random.default_rng(0).uniform(-1, 1, (1000, 1, 32, 32)).astype(np.float32),
                            ex, cfg.data, cfg.model, seed=0)
    assert set(real) == {f"{k}_lenet_fashion" for k in ("fid", "kid", "kid_std", "precision", "recall", "density",
                                                          "coverage", "is", "is_std")}
    assert real["fid_lenet_fashion"] < 0.1 * noise["fid_lenet_fashion"]
    assert real["kid_lenet_fashion"] < 0.01 * noise["kid_lenet_fashion"]
    # noise collapses to one spot in feature space: some of it lands in real k-NN balls (precision 0.57
    # when measured), but it covers none of the real data
    assert real["recall_lenet_fashion"] > 0.8 and noise["recall_lenet_fashion"] < 0.05
    assert real["coverage_lenet_fashion"] > 0.9 and noise["coverage_lenet_fashion"] < 0.1
    assert real["density_lenet_fashion"] > 0.8 > 0.5 > noise["density_lenet_fashion"]
    assert real["is_lenet_fashion"] > 5 and noise["is_lenet_fashion"] < 3
    assert len(os.listdir(tmp_path / "cache" / "stats")) == 1  # the reference features were cached once


# ---- Inception (random weights: the real ones are a 100 MB download) ------------------------------

def test_inception_shapes_and_pytorch_fid_key_layout(tmp_path):
    import paddle

    from paddle_gan.metrics.inception import (
        FIDInceptionV3,
        InceptionExtractor,
        convert_state_dict,
        load_inception,
    )

    paddle.seed(0)
    model = FIDInceptionV3()
    keys = list(model.state_dict())
    assert len([k for k in keys if k.endswith("conv.weight")]) == 94  # the 94 conv layers of InceptionV3
    for k in ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch5x5_2.bn._mean", "Mixed_6e.branch7x7dbl_5.conv.weight",
              "Mixed_7c.branch3x3dbl_3b.bn._variance", "fc.weight", "fc.bias"):
        assert k in keys
    assert list(model.state_dict()["Mixed_7c.branch_pool.conv.weight"].shape) == [192, 2048, 1, 1]
    # a torch-layout state dict (pytorch-fid names) converts key for key
    torch_layout = {}
    for k, v in model.state_dict().items():
        v = v.numpy()
        k = k.replace("_mean", "running_mean").replace("_variance", "running_var")
        torch_layout[k] = v.T if k == "fc.weight" else v
        if k.endswith("running_var"):
            torch_layout[k.replace("running_var", "num_batches_tracked")] = np.array(0)
    path = str(tmp_path / "fid_inception.pdparams")
    paddle.save(torch_layout, path)
    loaded = load_inception(path)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k].numpy(), v.numpy())
    ex = InceptionExtractor(path, model=loaded)
    feats, probs = ex.features_and_probs(np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32))
    assert feats.shape == (2, 2048) and probs.shape == (2, 1008) and np.isfinite(feats).all()
    # the Inception Score's probabilities come from the logits without the classifier's bias, as the
    # reference code (Salimans et al.) and torch-fidelity compute them
    loaded.fc.bias.set_value(np.random.default_rng(1).normal(0, 3, 1008).astype(np.float32))
    feats, probs = ex.features_and_probs(np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32))
    logits = feats.astype(np.float64) @ loaded.fc.weight.numpy().astype(np.float64)
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)
    assert sorted(convert_state_dict({"a.running_mean": np.zeros(1)})) == ["a._mean"]
    # without the classifier: features only, so no Inception Score
    del torch_layout["fc.weight"], torch_layout["fc.bias"]
    paddle.save(torch_layout, path)
    assert load_inception(path).fc is None
    paddle.save({"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 3, 3), np.float32)}, path)
    with pytest.raises(DataError, match="not FID InceptionV3 weights"):
        load_inception(path)


def test_the_reference_cache_is_keyed_on_the_weights_and_records_name_them(tmp_path, monkeypatch):
    """Two Inception weight files never share cached reference features; the record says which."""
    import paddle

    from paddle_gan.config import Config
    from paddle_gan.metrics import real_features
    from paddle_gan.metrics.inception import FIDInceptionV3, InceptionExtractor

    monkeypatch.setenv("PADDLE_GAN_CACHE", str(tmp_path / "cache"))
    cfg = Config()
    cfg.data.root, cfg.data.split = BUNDLED_DIR, "test"
    feats = []
    for seed in (0, 1):
        paddle.seed(seed)
        model = FIDInceptionV3()
        model.eval()
        path = str(tmp_path / f"w{seed}.pdparams")
        paddle.save(model.state_dict(), path)
        ex = InceptionExtractor(path)
        assert ex.weights == path and len(ex.sha256) == 64
        feats.append(real_features(ex, cfg.data, cfg.model, 12)[0])
    assert not np.allclose(feats[0], feats[1])  # the second file's reference was computed, not reused
    assert len(list((tmp_path / "cache" / "stats").glob("*.npz"))) == 2


def test_generated_images_are_scored_as_8_bit_images():
    """The evaluator scores what a saved PNG holds: G's floats rounded to 0..255."""
    from paddle_gan.config import Config
    from paddle_gan.metrics import Evaluator

    seen = []

    class Spy:
        name, dataset = "spy", "none"

        def features_and_probs(self, images, on_batch=None):
            seen.append(images)
            return images.reshape(len(images), -1)[:, :8].astype(np.float32), None

    class G:
        training = False

        def eval(self):
            pass

        def __call__(self, z):
            import paddle

            return paddle.tanh(z[:, :4].reshape([-1, 1, 2, 2]) * 0.37)

    cfg = Config()
    for quantize in (True, False):
        seen.clear()
        Evaluator(cfg, 20, 0, Spy(), quantize=quantize).fake_features(G())
        levels = (seen[0] + 1) * 127.5
        on_grid = np.allclose(levels, np.round(levels), atol=1e-4)
        assert on_grid == quantize


def test_inception_weights_offline_is_one_clear_line(monkeypatch):
    from paddle_gan.metrics import inception

    monkeypatch.setattr(inception, "WEIGHTS_URL", "http://127.0.0.1:9/InceptionV3.pdparams")
    with pytest.raises(DataError) as e:
        inception.load_inception()
    msg = str(e.value)
    assert "\n" not in msg and "could not download http://127.0.0.1:9/" in msg and "--inception-weights" in msg
    with pytest.raises(DataError, match="no such Inception weights file"):
        inception.load_inception("/nonexistent.pdparams")


def test_train_evaluator_tool_trains_records_and_loads(tmp_path, capsys):
    """tools/train_evaluator.py on a folder holding the bundled split as both train and test files."""
    import json
    import shutil


    from paddle_gan.metrics.lenet import LeNetExtractor

    root = tmp_path / "fm"
    root.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        for prefix in ("train", "t10k"):
            shutil.copy(os.path.join(BUNDLED_DIR, f"t10k-{kind}-ubyte.gz"), root / f"{prefix}-{kind}-ubyte.gz")
    out = tmp_path / "lenet_fashion_mnist.pdparams"
    assert tool("train_evaluator", *["--data", "fashion_mnist", "--root", str(root), "--epochs", "1", "--limit", "2000",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    info = json.loads((tmp_path / "lenet_fashion_mnist.json").read_text())
    assert info["train_images"] == 2000 and info["test_images"] == 10000 and info["epochs"] == 1
    assert f"test accuracy {info['test_accuracy']:.4f}" in printed and info["test_accuracy"] > 0.6
    assert LeNetExtractor("fashion_mnist", path=str(out)).info == info
