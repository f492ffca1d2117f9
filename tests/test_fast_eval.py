"""Evaluation at the speed of training: the fast path (oneDNN convolutions for G and the LeNet,
streamed batches, the k-NN scores from one distance matrix each) gives the reference path's
features and scores; tools/eval.py works with train.conv=paddle and without a compiler."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tool, BUNDLED_DIR, CONFIGS, REPO, SMALL, TINY


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("fast") / "run"
    assert tool("train", *["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY, *SMALL,
                 "train.steps=8"]) == 0
    return str(run / "checkpoints" / "step_0000008")


def _reference_knn(real, fake, k_pr=3, k_dc=5):
    """Precision/recall/density/coverage as the package computed them before (float64, a distance
    matrix per score, one chunk of rows at a time): the independent reference."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def d2(a, b):
        return np.clip((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0, None)

    def radius(x, k):
        return np.concatenate([np.partition(d2(x[i:i + 256], x), k, axis=1)[:, k] for i in range(0, len(x), 256)])

    rr3, rf3, rr5 = radius(real, k_pr), radius(fake, k_pr), radius(real, k_dc)
    d = d2(real, fake)
    return {"precision": (d <= rr3[:, None]).any(0).mean(), "recall": (d <= rf3[None, :]).any(1).mean(),
            "density": (d <= rr5[:, None]).sum() / (k_dc * len(fake)), "coverage": (d <= rr5[:, None]).any(1).mean()}


def test_fast_and_reference_paths_give_the_same_features_and_scores(ckpt):
    import paddle

    from paddle_gan import ops
    from paddle_gan.gan.kernels import for_inference
    from paddle_gan.run.generator import open_generator
    from paddle_gan.metrics import Evaluator, make_extractor
    from paddle_gan.metrics.scores import knn_scores

    g = open_generator(ckpt)
    g.cfg.data.root = BUNDLED_DIR
    runs = {}
    for conv in ("paddle", "onednn"):
        G = for_inference(copy.deepcopy(g.G), conv)
        ex = make_extractor("auto", "fashion_mnist", 1, conv=conv)
        switched = [type(m) for m in list(G.sublayers()) + list(ex.model.sublayers())
                    if type(m) in (ops.OneDNNConv2D, ops.OneDNNConv2DTranspose)]
        assert bool(switched) == (conv == "onednn")
        ev = Evaluator(g.cfg, 600, 0, ex)
        with paddle.no_grad():
            features = ex.features_and_probs(G(paddle.to_tensor(ev.z[:64])).numpy())[0]
        runs[conv] = (ev(G), ev, features)
    (ref, ev_ref, f_ref), (fast, _, f_fast) = runs["paddle"], runs["onednn"]
    np.testing.assert_allclose(f_fast, f_ref, rtol=1e-4, atol=1e-5)  # the same features to float rounding
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], rel=2e-3, abs=2e-3), k
    # the one-pass k-NN scores against the old way of computing them, on these real features
    real, fake = ev_ref.real.features, f_ref
    got, want = knn_scores(real, np.concatenate([fake] * 3)), _reference_knn(real, np.concatenate([fake] * 3))
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1 / len(real)), k


@pytest.mark.parametrize("how", ["train.conv=paddle", "no compiler"])
def test_eval_tool_works_on_paddles_own_convolutions(ckpt, tmp_path, how):
    env = dict(os.environ, PADDLE_GAN_PROGRESS="0")
    if how == "no compiler":
        empty = tmp_path / "bin"
        empty.mkdir()
        env.update(PATH=str(empty), CXX="", PADDLE_GAN_OPS_DIR=str(tmp_path / "ops"))
        target = ckpt
    else:  # a checkpoint whose run asked for Paddle's own convolutions
        import shutil

        target = str(tmp_path / "ckpt")
        shutil.copytree(ckpt, target)
        meta = json.loads(open(os.path.join(target, "state.json")).read())
        meta["config"]["train"]["conv"] = "paddle"
        open(os.path.join(target, "state.json"), "w").write(json.dumps(meta))
    p = subprocess.run([sys.executable, os.path.join(REPO, "tools", "eval.py"), "--checkpoint", target, "--num", "100",
                        "--data-root", BUNDLED_DIR], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    record = json.loads(p.stdout.strip().splitlines()[-1])
    assert np.isfinite(record["fid_lenet_fashion"]) and "building" not in p.stdout
