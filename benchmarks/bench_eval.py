#!/usr/bin/env python
"""Evaluation speed: tools/eval.py's work, whole and in parts, against a plain PyTorch peer.

    python benchmarks/bench_eval.py --checkpoint work/dcgan_fashion_mnist/checkpoints/step_0003000
    python benchmarks/bench_eval.py --checkpoint CKPT --nums 2000 --no-torch

One JSON line per case (a DCGAN checkpoint of a Fashion-MNIST or MNIST run, unconditional):
- "eval.py": the wall time and peak memory of `tools/eval.py --checkpoint CKPT --num N` as a user
  runs it (a fresh process: imports included), "cold" (empty statistics cache: the real images are
  decoded and their features computed first) and "warm" (the cache filled by the cold run).
- "in_training": one evaluation of N images as the trainer does it every train.eval_every steps
  (models loaded and reference features in memory: the median of 3 calls).
- "part": each part of a warm evaluation of N images, in one process: generate + features, FID,
  KID, precision/recall/density/coverage (knn), IS.
The PyTorch peer does the same work in a fresh process of its own that never imports Paddle: the
same generator architecture and LeNet in torch with the checkpoint's weights (so its scores must
equal ours), the data read with NumPy and OpenCV, and the scores as they are commonly written:
FID with scipy's sqrtm, KID over 100 subsets in float64 NumPy (as torch-fidelity), precision/
recall/density/coverage from full torch.cdist matrices and torch.topk (as the prdc package does
with full matrices). ratio = torch seconds / paddle seconds (> 1: paddle_gan is faster).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
HERE = os.path.abspath(__file__)


def _run(cmd, env=None):
    """(wall seconds, peak RSS MB, stdout) of a fresh process (its own peak, from os.wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO, env=dict(os.environ, **(env or {})))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


# ---- the Paddle side (paddle_gan) -------------------------------------------------------------------

def paddle_parts(ckpt, num):
    from paddle_gan.gan.kernels import for_inference
    from paddle_gan.run.generator import open_generator
    from paddle_gan.metrics import Evaluator, make_extractor
    from paddle_gan.metrics.scores import fid_from_features, inception_score, kid, knn_scores

    g = open_generator(ckpt)
    G = for_inference(g.G, g.cfg.train.conv)
    ev = Evaluator(g.cfg, num, 0, make_extractor("auto", g.cfg.data.name, 1, conv=g.cfg.train.conv))
    ev(G)  # warm-up: reference features read, primitives built
    calls = []
    for _ in range(3):
        t0 = time.perf_counter()
        ev(G)
        calls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    fake, probs = ev.fake_features(G)  # the Evaluator's own first part
    parts = {"generate+features": time.perf_counter() - t0}
    for name, fn in (("fid", lambda: fid_from_features(ev.real, fake)), ("kid", lambda: kid(ev.real, fake)),
                     ("knn", lambda: knn_scores(ev.real, fake)), ("is", lambda: inception_score(probs))):
        t0 = time.perf_counter()
        fn()
        parts[name] = time.perf_counter() - t0
    return {"in_training": statistics.median(calls), "parts": parts}


def export_for_torch(ckpt, folder):
    """The checkpoint's G and the LeNet evaluator as NumPy arrays plus the model config, for the peer."""
    import numpy as np

    from paddle_gan.run.generator import open_generator
    from paddle_gan.metrics.lenet import LeNetExtractor
    from paddle_gan.data.idx import BUNDLED_DIR, DEBIAN_FASHION_DIR

    g = open_generator(ckpt)
    m = g.cfg.model
    if m.name != "dcgan" or m.num_classes or g.cfg.data.name not in ("fashion_mnist", "mnist"):
        raise SystemExit("bench_eval.py needs an unconditional dcgan checkpoint of a (Fashion-)MNIST run")
    np.savez(os.path.join(folder, "G.npz"), **{k: v.numpy() for k, v in g.G.state_dict().items()})
    ex = LeNetExtractor(g.cfg.data.name)
    np.savez(os.path.join(folder, "lenet.npz"), **{k: v.numpy() for k, v in ex.model.state_dict().items()})
    root = g.cfg.data.root or next(d for d in (DEBIAN_FASHION_DIR, BUNDLED_DIR)
                                   if os.path.isfile(os.path.join(d, "train-images-idx3-ubyte.gz"))
                                   or g.cfg.data.split == "test")
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model": g.cfg.to_dict()["model"], "root": root, "split": g.cfg.data.split,
                   "limit": g.cfg.data.limit}, f)


# ---- the PyTorch peer (never imports Paddle) --------------------------------------------------------

def torch_models(folder):
    import numpy as np
    import torch
    from torch import nn

    cfg = json.load(open(os.path.join(folder, "config.json")))
    m = cfg["model"]
    n = int(round(math.log2(m["img_size"] // 4)))  # stride-2 stages after 4 x 4, as models.DCGANGenerator
    c = m["g_channels"] * 2 ** (n - 1)
    layers = [nn.ConvTranspose2d(m["z_dim"], c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(n - 1):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
        c //= 2
    layers += [nn.ConvTranspose2d(c, m["channels"], 4, 2, 1), nn.Tanh()]
    G = nn.Sequential(*layers)
    sd = np.load(os.path.join(folder, "G.npz"))
    G.load_state_dict({k.replace("net.", "").replace("_mean", "running_mean").replace("_variance", "running_var"):
                       torch.from_numpy(sd[k]) for k in sd.files}, strict=False)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU())
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            f = self.body(nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False))
            return f, torch.softmax(self.head(f), 1)

    le = LeNet()
    w = np.load(os.path.join(folder, "lenet.npz"))
    le.load_state_dict({k: torch.from_numpy(w[k].T.copy() if w[k].ndim == 2 else w[k]) for k in w.files})
    return G.eval(), le.eval(), cfg


def torch_real_features(le, cfg, num, cache):
    import gzip

    import cv2
    import numpy as np
    import torch

    path = os.path.join(cache, f"torch-real-{num}.npz")
    if os.path.isfile(path):
        return np.load(path)["features"]
    prefix = "train" if cfg["split"] == "train" else "t10k"
    with gzip.open(os.path.join(cfg["root"], f"{prefix}-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    raw = raw[:cfg["limit"]] if cfg["limit"] else raw
    size = cfg["model"]["img_size"]
    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in raw])
    if num < len(images):
        images = images[np.sort(np.random.default_rng(0).choice(len(images), num, replace=False))]
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), 500):
            x = torch.from_numpy(images[i:i + 500, None].astype(np.float32) / 127.5 - 1)
            feats.append(le(x)[0].numpy())
    feats = np.concatenate(feats)
    np.savez(path, features=feats)
    return feats


def torch_generate_features(G, le, z):
    import numpy as np
    import torch

    feats, probs = [], []
    with torch.no_grad():
        for i in range(0, len(z), 500):
            f, p = le(G(torch.from_numpy(z[i:i + 500]).reshape(-1, z.shape[1], 1, 1)))
            feats.append(f.numpy())
            probs.append(p.numpy())
    return np.concatenate(feats), np.concatenate(probs)


def torch_scores(real, fake, probs):
    """The scores as commonly written (see the module docstring)."""
    import numpy as np
    import torch
    from scipy import linalg

    out, t = {}, {}
    t0 = time.perf_counter()
    mu1, mu2 = real.mean(0, dtype=np.float64), fake.mean(0, dtype=np.float64)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    out["fid"] = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    t["fid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rng, vals, r64, f64 = np.random.default_rng(0), [], real.astype(np.float64), fake.astype(np.float64)
    m, d = min(1000, len(real), len(fake)), real.shape[1]
    for _ in range(100):
        x, y = r64[rng.choice(len(real), m, replace=False)], f64[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    out["kid"] = float(np.mean(vals))
    t["kid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    R, F_ = torch.from_numpy(real), torch.from_numpy(fake)
    rr, ff, rf = torch.cdist(R, R), torch.cdist(F_, F_), torch.cdist(R, F_)
    r3, r5 = rr.topk(6, dim=1, largest=False).values[:, 3], rr.topk(6, dim=1, largest=False).values[:, 5]
    f3 = ff.topk(4, dim=1, largest=False).values[:, 3]
    out["precision"] = float((rf <= r3[:, None]).any(0).float().mean())
    out["recall"] = float((rf <= f3[None, :]).any(1).float().mean())
    out["density"] = float((rf <= r5[:, None]).sum(0).float().mean() / 5)
    out["coverage"] = float((rf.min(1).values <= r5).float().mean())
    t["knn"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = probs.astype(np.float64)
    iss = [np.exp((q * (np.log(q + 1e-12) - np.log(q.mean(0, keepdims=True) + 1e-12))).sum(1).mean())
           for q in np.array_split(p, 10)]
    out["is"] = float(np.mean(iss))
    t["is"] = time.perf_counter() - t0
    return out, t


def torch_eval(folder, num, cache):
    """The peer's tools/eval.py: models, reference features (cached), generation, scores."""
    import numpy as np

    G, le, cfg = torch_models(folder)
    real = torch_real_features(le, cfg, num, cache)
    z = np.random.default_rng([0, 2]).standard_normal((num, cfg["model"]["z_dim"])).astype(np.float32)
    fake, probs = torch_generate_features(G, le, z)
    return torch_scores(real, fake, probs)


def torch_parts(folder, num, cache):
    import numpy as np

    G, le, cfg = torch_models(folder)
    real = torch_real_features(le, cfg, num, cache)
    z = np.random.default_rng([0, 2]).standard_normal((num, cfg["model"]["z_dim"])).astype(np.float32)
    torch_scores(real, *torch_generate_features(G, le, z))  # warm-up
    calls = []
    for _ in range(3):
        t0 = time.perf_counter()
        torch_scores(real, *torch_generate_features(G, le, z))
        calls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    fake, probs = torch_generate_features(G, le, z)
    parts = {"generate+features": time.perf_counter() - t0}
    parts.update(torch_scores(real, fake, probs)[1])
    return {"in_training": statistics.median(calls), "parts": parts}


# ---- driver -------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a dcgan checkpoint of a Fashion-MNIST/MNIST run")
    p.add_argument("--nums", default="2000,10000", help="evaluation sizes (default 2000,10000)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    p.add_argument("--child", choices=["paddle-parts", "torch-parts", "torch-eval"], help=argparse.SUPPRESS)
    p.add_argument("--num", type=int, help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "paddle-parts":
        print(json.dumps(paddle_parts(args.checkpoint, args.num)))
        return 0
    if args.child in ("torch-parts", "torch-eval"):
        cache = os.environ["PADDLE_GAN_CACHE"]
        fn = torch_parts if args.child == "torch-parts" else torch_eval
        print(json.dumps(fn(args.folder, args.num, cache)))
        return 0
    work = tempfile.mkdtemp(prefix="bench_eval-")
    try:
        with_torch = not args.no_torch
        if with_torch:
            export_for_torch(args.checkpoint, work)
        for num in (int(n) for n in args.nums.split(",")):
            cache = os.path.join(work, f"cache-{num}")
            for state in ("cold", "warm"):
                pd = _run([sys.executable, "tools/eval.py", "--checkpoint", args.checkpoint, "--num", str(num)],
                          env={"PADDLE_GAN_CACHE": cache, "PADDLE_GAN_PROGRESS": "0"})
                th = (_run([sys.executable, HERE, "--checkpoint", args.checkpoint, "--child", "torch-eval",
                            "--num", str(num), "--folder", work], env={"PADDLE_GAN_CACHE": cache})
                      if with_torch else None)
                line = {"case": "eval.py", "num": num, "cache": state, "paddle_s": round(pd[0], 2),
                        "paddle_peak_rss_mb": round(pd[1])}
                if th:
                    ours = json.loads(pd[2].strip().splitlines()[-1])
                    theirs = json.loads(th[2].strip().splitlines()[-1])[0]
                    line.update(torch_s=round(th[0], 2), torch_peak_rss_mb=round(th[1]), ratio=round(th[0] / pd[0], 2),
                                fid_paddle=round(ours[f"fid_{ours['extractor']}"], 4), fid_torch=round(theirs["fid"], 4))
                print(json.dumps(line), flush=True)
            pd = json.loads(_run([sys.executable, HERE, "--checkpoint", args.checkpoint, "--child", "paddle-parts",
                                  "--num", str(num)], env={"PADDLE_GAN_CACHE": cache})[2].strip().splitlines()[-1])
            th = (json.loads(_run([sys.executable, HERE, "--checkpoint", args.checkpoint, "--child", "torch-parts",
                                   "--num", str(num), "--folder", work], env={"PADDLE_GAN_CACHE": cache})[2]
                             .strip().splitlines()[-1]) if with_torch else None)
            line = {"case": "in_training", "num": num, "paddle_s": round(pd["in_training"], 2)}
            if th:
                line.update(torch_s=round(th["in_training"], 2), ratio=round(th["in_training"] / pd["in_training"], 2))
            print(json.dumps(line), flush=True)
            for part, seconds in pd["parts"].items():
                line = {"case": "part", "num": num, "part": part, "paddle_s": round(seconds, 3)}
                if th:
                    line.update(torch_s=round(th["parts"][part], 3), ratio=round(th["parts"][part] / seconds, 2))
                print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
