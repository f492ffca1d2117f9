#!/usr/bin/env python
"""Training throughput of the package's own step vs the identical network and step in PyTorch.

    python benchmarks/bench_train.py                      # every case, torch too if importable
    python benchmarks/bench_train.py --cases dcgan32_b64 --steps 30 --repeats 5
    python benchmarks/bench_train.py --no-torch

Prints one JSON line per case: case, batch, paddle_img_s, torch_img_s, ratio (paddle / torch),
paddle_peak_rss_mb, torch_peak_rss_mb. Each framework runs each case in its own fresh process, so
thread settings apply as they would for a user and peak memory is not mixed. Per process: warm-up
steps (not timed), then `repeats` timed blocks of `steps` steps; the median block is reported.

The Paddle side is the trainer's loop body: batch from the BatchStream (uint8 -> [-1, 1]) ->
paddle.to_tensor -> per-step reseed -> z -> train_step. The PyTorch side mirrors the Paddle
modules layer for layer (same widths, kernels, strides, BN, dropout) and runs the same D step and
non-saturating G step with BCE-with-logits and two Adam optimisers. The "loader" case times the
data path alone (BatchStream + to_tensor), to show it is never the bottleneck. "dcgan32_b64_static"
is the Paddle side with train.to_static=true (the PyTorch side stays eager), and
"dcgan32_b64_paddleconv" with train.conv=paddle (Paddle's own convolutions instead of paddle_gan.ops). Set
PADDLE_GAN_CPU_TUNING=0 to time Paddle as installed, without paddle_gan's thread and MKL settings.

Optional peer: pip install torch (CPU wheel: pip install torch --index-url
https://download.pytorch.org/whl/cpu).
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# case -> (config, overrides, batch)
CASES = {
    "dcgan32_b64": ("dcgan_fashion_mnist.yaml", [], 64),
    "dcgan32_b128": ("dcgan_fashion_mnist.yaml", [], 128),
    "dcgan32_b64_paddleconv": ("dcgan_fashion_mnist.yaml", ["train.conv=paddle"], 64),
    "dcgan32_b64_static": ("dcgan_fashion_mnist.yaml", ["train.to_static=true"], 64),
    "dcgan64": ("dcgan_anime64.yaml", ["data.root=synthetic-images-unused"], 64),  # images are synthetic here
    "mlp": ("gan_mlp_mnist.yaml", [], 64),
    "loader": ("dcgan_fashion_mnist.yaml", [], 64),
}
DEFAULT_STEPS = {"dcgan64": 3, "mlp": 200, "loader": 500}


def _cfg(case):
    from paddle_gan.config import load_config

    config, overrides, batch = CASES[case]
    return load_config(os.path.join(REPO, "configs", config), overrides + [f"train.batch_size={batch}"])


def _fake_images(cfg, n=2048):
    import numpy as np

    m = cfg.model
    return np.random.default_rng(0).integers(0, 256, (n, m.channels, m.img_size, m.img_size), dtype=np.uint8)


def _timed(step, steps, repeats, warmup):
    for _ in range(warmup):
        step()
    blocks = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        blocks.append(time.perf_counter() - t0)
    return statistics.median(blocks)


def run_paddle(case, steps, repeats, warmup):
    import paddle

    from paddle_gan.data import BatchStream
    from paddle_gan.models import build_models
    from paddle_gan.fast import faster, use_onednn_convs
    from paddle_gan.seeds import step_seed
    from paddle_gan.step import make_optimizers, make_precision, train_step

    cfg = _cfg(case)
    t = cfg.train
    stream = BatchStream(_fake_images(cfg), t.batch_size, t.seed)
    if case == "loader":
        return _timed(lambda: paddle.to_tensor(stream.next()), steps, repeats, warmup)
    paddle.seed(0)
    G, D = build_models(cfg.model)
    opt_G, opt_D = make_optimizers(cfg, G, D)
    G, D = faster(G, D, t, use_onednn_convs(t.conv))  # as the trainer does: train.conv, train.to_static
    precision = make_precision(t.amp)
    state = {"step": 0}

    def step():
        real = paddle.to_tensor(stream.next())
        paddle.seed(step_seed(t.seed, state["step"]))
        z = paddle.randn([t.batch_size, cfg.model.z_dim])
        train_step(G, D, opt_G, opt_D, real, z, precision)
        state["step"] += 1

    return _timed(step, steps, repeats, warmup)


def torch_mirror(layer):
    """A torch module with the same layers as a paddle_gan G or D (weights are not copied)."""
    import torch
    from paddle import nn as pnn
    from torch import nn as tnn

    from paddle_gan import models as M

    def conv(l):
        k, s, p = l._kernel_size, l._stride, l._padding
        cin, cout, bias = l._in_channels, l._out_channels, l.bias is not None
        if isinstance(l, pnn.Conv2DTranspose):
            return tnn.ConvTranspose2d(cin, cout, k, s, p, output_padding=l.output_padding or 0, bias=bias)
        return tnn.Conv2d(cin, cout, k, s, p, bias=bias)

    def one(l):
        if isinstance(l, (pnn.Conv2D, pnn.Conv2DTranspose)):
            return conv(l)
        if isinstance(l, pnn.BatchNorm2D):
            return tnn.BatchNorm2d(l.weight.shape[0], eps=l._epsilon, momentum=1 - l._momentum)
        if isinstance(l, pnn.BatchNorm1D):
            return tnn.BatchNorm1d(l.weight.shape[0], eps=l._epsilon, momentum=1 - l._momentum)
        if isinstance(l, pnn.Linear):
            return tnn.Linear(l.weight.shape[0], l.weight.shape[1], bias=l.bias is not None)
        if isinstance(l, pnn.LeakyReLU):
            return tnn.LeakyReLU(l._negative_slope)
        if isinstance(l, pnn.Dropout):
            return tnn.Dropout(l.p)
        simple = {pnn.ReLU: tnn.ReLU, pnn.Tanh: tnn.Tanh, pnn.Flatten: tnn.Flatten, M.Flatten: tnn.Flatten}
        for p_cls, t_cls in simple.items():
            if isinstance(l, p_cls):
                return t_cls()
        raise TypeError(f"no torch mirror for {type(l).__name__}")

    def seq(s):
        return tnn.Sequential(*[one(l) for l in s])

    class Mirror(tnn.Module):
        def __init__(self):
            super().__init__()
            self.kind = type(layer)
            self.net = seq(layer.net)
            if isinstance(layer, M.DenseDCGANGenerator):
                self.fc, self.c0 = seq(layer.fc), layer.c0

        def forward(self, x):
            if self.kind is M.DCGANGenerator:
                return self.net(x.reshape(x.shape[0], -1, 1, 1))
            if self.kind is M.DenseDCGANGenerator:
                return self.net(self.fc(x).reshape(x.shape[0], self.c0, 4, 4))
            if self.kind is M.MLPGenerator:
                return self.net(x).reshape(x.shape[0], *layer.shape)
            return self.net(x)

    torch.manual_seed(0)
    return Mirror()


def run_torch(case, steps, repeats, warmup):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from paddle_gan.data import BatchStream
    from paddle_gan.models import build_models

    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    cfg = _cfg(case)
    t = cfg.train
    stream = BatchStream(_fake_images(cfg), t.batch_size, t.seed)
    if case == "loader":
        return _timed(lambda: torch.from_numpy(np.ascontiguousarray(stream.next())), steps, repeats, warmup)
    pG, pD = build_models(cfg.model)
    G, D = torch_mirror(pG), torch_mirror(pD)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.opt_G.lr, betas=(cfg.opt_G.beta1, cfg.opt_G.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.opt_D.lr, betas=(cfg.opt_D.beta1, cfg.opt_D.beta2))

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def step():
        real = torch.from_numpy(np.ascontiguousarray(stream.next()))  # uint8 -> [-1, 1] float32, as in the trainer
        z = torch.randn(t.batch_size, cfg.model.z_dim)
        fake = G(z)
        loss_D = bce(D(real), 1.0) + bce(D(fake.detach()), 0.0)
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        for p in D.parameters():  # the same saving as paddle_gan's G step: no D weight gradients
            p.requires_grad_(False)
        loss_G = bce(D(fake), 1.0)
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()
        for p in D.parameters():
            p.requires_grad_(True)
        float(loss_D), float(loss_G)  # the trainer reads the losses every step too

    return _timed(step, steps, repeats, warmup)


def child(framework, case, steps, repeats, warmup):
    seconds = (run_paddle if framework == "paddle" else run_torch)(case, steps, repeats, warmup)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"img_s": steps * CASES[case][2] / seconds, "peak_rss_mb": rss_mb}))


def measure(framework, case, args):
    steps = args.steps or DEFAULT_STEPS.get(case, 20)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, "--cases", case, "--steps", str(steps),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{framework} {case} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=0, help="steps per timed block (default: per case)")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is reported")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--child", choices=["paddle", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.child:
        child(args.child, cases[0], args.steps or DEFAULT_STEPS.get(cases[0], 20), args.repeats, args.warmup)
        return 0
    have_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    for case in cases:
        pd = measure("paddle", case, args)
        th = measure("torch", case, args) if have_torch else None
        print(json.dumps({"case": case, "batch": CASES[case][2], "paddle_img_s": round(pd["img_s"], 1),
                          "torch_img_s": round(th["img_s"], 1) if th else None,
                          "ratio": round(pd["img_s"] / th["img_s"], 3) if th else None,
                          "paddle_peak_rss_mb": round(pd["peak_rss_mb"]), "torch_peak_rss_mb":
                          round(th["peak_rss_mb"]) if th else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
