#!/usr/bin/env python
"""Training throughput of the package's own step vs the identical network and step in PyTorch.

    python benchmarks/bench_train.py                      # every case, torch too if importable
    python benchmarks/bench_train.py --cases dcgan32_b64 --steps 30 --repeats 5
    python benchmarks/bench_train.py --config configs/wgan_gp_fashion_mnist.yaml -o train.batch_size=32
    python benchmarks/bench_train.py --no-torch
    python benchmarks/bench_train.py --cases r1_bn,wgan_gp --interleave --repeats 8

Prints one JSON line per case: case, batch, paddle_img_s, torch_img_s, ratio (paddle / torch),
paddle_peak_rss_mb, torch_peak_rss_mb, and the CPU. --rounds R runs both frameworks' processes R times
per case, the order alternating, and reports the medians, the median of the per-round ratios and the
rounds themselves ([paddle, torch] img/s): on a machine whose speed drifts, one pair of processes can
be minutes apart in effect. --interleave keeps both frameworks' processes alive at once and has their
timed blocks (--repeats of them, steps each) take turns, ABBA, the ratio being the median of the
per-pair ratios: a drift lands on both alike (on these machines it moved within seconds as well).
Each framework runs each case in its own fresh
process, so thread settings apply as they would for a user and peak memory is not mixed. Per
process: warm-up steps (not timed), then `repeats` timed blocks of `steps` steps; the median block
is reported.

The Paddle side is the trainer's own: the models, optimizers, kernels (train.conv, train.to_static),
objective and displayed generator built by paddle_gan.train.prepare, and per step
gan.step.step_inputs (batches from the BatchStream, reseed, noise, labels) -> gan.step.train_step ->
the EMA update: any config and overrides, every loss, penalty, n_critic and precision. The PyTorch
side mirrors the Paddle modules layer for layer (same widths, kernels, strides, BN, dropout, spectral
norm) and runs the same objective (loss, gradient penalty on interpolates, R1 with
create_graph=True, n_critic D updates, the G step through the updated D with D frozen, the EMA),
with two Adam optimisers. The ResNet's peer is benchmarks/torch_resnet.py. Class-conditional configs, DiffAugment and models the
mirror does not know (StyleGAN2) have no PyTorch peer (torch_img_s null). "loader"
times the data path alone (BatchStream + to_tensor). Images are random uint8 arrays of the config's
shape, so no dataset is needed. Set PADDLE_GAN_CPU_TUNING=0 to time Paddle as installed.

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
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# case -> (config, overrides); the batch size is the config's unless an override sets it
CASES = {
    "dcgan32_b64": ("dcgan_fashion_mnist.yaml", []),
    "dcgan32_b128": ("dcgan_fashion_mnist.yaml", ["train.batch_size=128"]),
    "dcgan32_b64_paddleconv": ("dcgan_fashion_mnist.yaml", ["train.conv=paddle"]),
    "dcgan32_b64_static": ("dcgan_fashion_mnist.yaml", ["train.to_static=true"]),
    "dcgan64": ("dcgan_anime64.yaml", ["data.root=unused"]),
    "mlp": ("gan_mlp_mnist.yaml", []),
    "loader": ("dcgan_fashion_mnist.yaml", []),
    # the penalties (issue "Every GAN on the fast path"): D twice differentiable on the oneDNN operator
    "wgan_gp": ("wgan_gp_fashion_mnist.yaml", []),  # n_critic 5, lambda 10, D without BN
    "r1_lazy16": ("dcgan_fashion_mnist.yaml", ["train.r1_gamma=10", "train.r1_every=16"]),
    "bf16": ("dcgan_fashion_mnist.yaml", ["train.amp=bfloat16"]),
    "resnet": ("sngan_resnet_fashion_mnist.yaml", []),
    "resnet_bf16": ("sngan_resnet_fashion_mnist.yaml", ["train.amp=bfloat16"]),
    "r1_bn": ("dcgan_fashion_mnist.yaml", ["train.r1_gamma=10"]),  # R1 on a D with BatchNorm (the old 0.02x cliff)
    # StyleGAN2 (issue "StyleGAN2"): its modulated convolutions on the operator, on Paddle's kernels, in bfloat16
    "stylegan2": ("stylegan2_fashion_mnist.yaml", []),
    "stylegan2_paddleconv": ("stylegan2_fashion_mnist.yaml", ["train.conv=paddle"]),
    "stylegan2_bf16": ("stylegan2_fashion_mnist.yaml", ["train.amp=bfloat16"]),
}
DEFAULT_STEPS = {"dcgan64": 3, "mlp": 200, "loader": 500, "wgan_gp": 6, "r1_lazy16": 32, "stylegan2": 16,
                 "stylegan2_paddleconv": 16, "stylegan2_bf16": 16}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _cfg(spec):
    from paddle_gan.config import load_config

    config, overrides = spec
    path = config if os.path.isfile(config) else os.path.join(REPO, "configs", config)
    return load_config(path, overrides)


def _fake_stream(cfg, n=2048):
    import numpy as np

    from paddle_gan.data import BatchStream

    m, t = cfg.model, cfg.train
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(n, 2 * t.batch_size * t.n_critic), m.channels, m.img_size, m.img_size),
                          dtype=np.uint8)
    labels = rng.integers(0, max(m.num_classes, 1), len(images)).astype(np.int64)
    return BatchStream(images, t.batch_size, t.seed, labels=labels if m.num_classes else None)


_SERVE = [False]  # --interleave child: time blocks when the parent says (_serve), not on its own


def _serve(step):
    """An --interleave child: for each line the parent writes (a number of steps; 0 ends), run that many
    steps and answer with one JSON line of their seconds. Returns None."""
    for line in sys.stdin:
        n = int(line)
        if n <= 0:
            break
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)


def _timed(step, steps, repeats, warmup):
    if _SERVE[0]:
        return _serve(step)
    for _ in range(warmup):
        step()
    blocks = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        blocks.append(time.perf_counter() - t0)
    return statistics.median(blocks)


def paddle_step(spec):
    """One training step of the trainer's own (a function), for config and overrides `spec`, on
    random images; and the batch size."""
    import paddle

    from paddle_gan.distributed import SINGLE
    from paddle_gan.gan.labels import labeling_for
    from paddle_gan.gan.objective import Objective
    from paddle_gan.gan.step import step_inputs, train_step
    from paddle_gan.train import prepare

    cfg = _cfg(spec)
    stream = _fake_stream(cfg)
    labeling, objective = labeling_for(cfg.model), Objective.of(cfg)
    with paddle.utils.unique_name.guard():
        state = prepare(cfg, None, SINGLE, labeling, stream, objective)

    def step():
        inputs = step_inputs(stream, cfg, labeling, state.step)
        train_step(state.G, state.D, state.opt_G, state.opt_D, **inputs, precision=state.precision,
                   objective=objective)
        state.step += 1
        state.display.update(state.G, state.step)

    return step, cfg.train.batch_size


def run_paddle(spec, loader, steps, repeats, warmup):
    if loader:
        import paddle

        stream = _fake_stream(_cfg(spec))
        return _timed(lambda: paddle.to_tensor(stream.next()), steps, repeats, warmup)
    return _timed(paddle_step(spec)[0], steps, repeats, warmup)


def torch_mirror(layer):
    """A torch module with the same layers as a paddle_gan G or D (weights are not copied)."""
    import torch
    from paddle import nn as pnn
    from torch import nn as tnn

    from paddle_gan.gan.models import dcgan, dcgan_dense, layers, mlp, resnet

    if isinstance(layer, (resnet.ResNetGenerator, resnet.ResNetDiscriminator)):
        import torch_resnet  # (benchmarks/: the reference blocks of SNGAN's ResNet)

        torch.manual_seed(0)
        return torch_resnet.mirror(layer)

    def conv(l):
        k, s, p = l._kernel_size, l._stride, l._padding
        cin, cout, bias = l._in_channels, l._out_channels, l.bias is not None
        if isinstance(l, pnn.Conv2DTranspose):
            return tnn.ConvTranspose2d(cin, cout, k, s, p, output_padding=l.output_padding or 0, bias=bias)
        return tnn.Conv2d(cin, cout, k, s, p, bias=bias)

    def one(l):
        if isinstance(l, (pnn.Conv2D, pnn.Conv2DTranspose)):
            t = conv(l)
        elif isinstance(l, pnn.BatchNorm2D):
            return tnn.BatchNorm2d(l.weight.shape[0], eps=l._epsilon, momentum=1 - l._momentum)
        elif isinstance(l, pnn.BatchNorm1D):
            return tnn.BatchNorm1d(l.weight.shape[0], eps=l._epsilon, momentum=1 - l._momentum)
        elif isinstance(l, pnn.Linear):
            t = tnn.Linear(l.weight.shape[0], l.weight.shape[1], bias=l.bias is not None)
        elif isinstance(l, pnn.LeakyReLU):
            return tnn.LeakyReLU(l._negative_slope)
        elif isinstance(l, pnn.Dropout):
            return tnn.Dropout(l.p)
        else:
            simple = {pnn.ReLU: tnn.ReLU, pnn.Tanh: tnn.Tanh, pnn.Flatten: tnn.Flatten, layers.Flatten: tnn.Flatten}
            for p_cls, t_cls in simple.items():
                if isinstance(l, p_cls):
                    return t_cls()
            raise TypeError(f"no torch mirror for {type(l).__name__}")
        spectral = hasattr(l, "weight_orig")  # paddle's spectral_norm keeps the raw weight as weight_orig
        return tnn.utils.spectral_norm(t) if spectral else t

    def seq(s):
        return tnn.Sequential(*[one(l) for l in s])

    class Mirror(tnn.Module):
        def __init__(self):
            super().__init__()
            if not isinstance(getattr(layer, "net", None), pnn.Sequential):  # e.g. the ResNet's blocks
                raise TypeError(f"no torch mirror for {type(layer).__name__}")
            self.kind = type(layer)
            self.net = seq(layer.net)
            if isinstance(layer, dcgan_dense.DenseDCGANGenerator):
                self.fc, self.c0 = seq(layer.fc), layer.c0

        def forward(self, x):
            if self.kind is dcgan.DCGANGenerator:
                return self.net(x.reshape(x.shape[0], -1, 1, 1))
            if self.kind is dcgan_dense.DenseDCGANGenerator:
                return self.net(self.fc(x).reshape(x.shape[0], self.c0, 4, 4))
            if self.kind is mlp.MLPGenerator:
                return self.net(x).reshape(x.shape[0], *layer.shape)
            return self.net(x)

    torch.manual_seed(0)
    return Mirror()


def _torch_losses(name):
    """train.loss in torch: (D loss of (real, fake) logits, G loss of fake logits)."""
    import torch.nn.functional as F

    def bce(x, t):
        return F.binary_cross_entropy_with_logits(x, x.new_full(x.shape, t))

    return {"nonsaturating": (lambda r, f: bce(r, 1.0) + bce(f, 0.0), lambda f: bce(f, 1.0)),
            "hinge": (lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(), lambda f: -f.mean()),
            "wgan_gp": (lambda r, f: f.mean() - r.mean(), lambda f: -f.mean()),
            "lsgan": (lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean(),
                      lambda f: 0.5 * ((f - 1) ** 2).mean())}[name]


def run_torch(spec, loader, steps, repeats, warmup):
    import copy

    import numpy as np
    import torch

    from paddle_gan.gan.losses import LOSSES
    from paddle_gan.gan.models import build_models

    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    cfg = _cfg(spec)
    t, m = cfg.train, cfg.model
    stream = _fake_stream(cfg)
    if loader:
        return _timed(lambda: torch.from_numpy(np.ascontiguousarray(stream.next())), steps, repeats, warmup)
    pG, pD = build_models(m)
    G, D = torch_mirror(pG), torch_mirror(pD)
    G_ema = copy.deepcopy(G).eval() if t.ema else None
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.opt_G.lr, betas=(cfg.opt_G.beta1, cfg.opt_G.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.opt_D.lr, betas=(cfg.opt_D.beta1, cfg.opt_D.beta2))
    d_loss, g_loss = _torch_losses(t.loss)
    gp = LOSSES[t.loss].gradient_penalty
    state = {"d_updates": 0}

    def autocast():  # train.amp=bfloat16: PyTorch's CPU autocast, the peer of paddle_gan's bfloat16 convolutions
        import contextlib

        return torch.autocast("cpu", dtype=torch.bfloat16) if t.amp == "bfloat16" else contextlib.nullcontext()

    def norms(out, x):
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return g.reshape(g.shape[0], -1).norm(2, dim=1)

    def step():
        for _ in range(t.n_critic):
            real = torch.from_numpy(np.ascontiguousarray(stream.next()))  # uint8 -> [-1, 1], as the trainer
            real.requires_grad_(t.r1_gamma > 0 and state["d_updates"] % t.r1_every == 0)
            with autocast():
                fake = G(torch.randn(t.batch_size, m.z_dim))
                out_real = D(real)
                loss_D = d_loss(out_real.float(), D(fake.detach()).float())
            if gp:
                e = torch.rand(real.shape[0], 1, 1, 1)
                x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(True)
                loss_D = loss_D + t.gp_lambda * ((norms(D(x_hat), x_hat) - 1) ** 2).mean()
            if t.r1_gamma and state["d_updates"] % t.r1_every == 0:  # lazy R1: every k-th update, weighted by k
                loss_D = loss_D + 0.5 * t.r1_gamma * t.r1_every * (norms(out_real, real) ** 2).mean()
            state["d_updates"] += 1
            opt_D.zero_grad()
            loss_D.backward()
            opt_D.step()
            float(loss_D)
        for p in D.parameters():  # the same saving as paddle_gan's G step: no D weight gradients
            p.requires_grad_(False)
        with autocast():
            loss_G = g_loss(D(fake).float())
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()
        for p in D.parameters():
            p.requires_grad_(True)
        float(loss_G)  # the trainer reads the losses every step too
        if G_ema is not None:
            with torch.no_grad():
                for pe, p in zip(G_ema.parameters(), G.parameters()):
                    pe.lerp_(p, 1 - t.ema)

    return _timed(step, steps, repeats, warmup)


def flops_per_image(spec) -> float:
    """Multiply-adds x 2 of one training step per image, counted on the Paddle models' forward passes
    (hooks on every convolution and dense layer) as n_critic x (G + 6 D) + 2 G + 2 D: each D update
    runs G forward, D forward on real and fake images and their backward (twice the forward); the G
    update runs D forward and backward to its input and G backward. A penalty's extra backward is not
    counted: for those cases the roof fraction is a lower bound."""
    import paddle
    from paddle import nn

    from paddle_gan.gan.models import build_models

    cfg = _cfg(spec)
    m, t = cfg.model, cfg.train
    G, D = build_models(m)
    macs = {"n": 0}

    def hook(layer, inputs, output):
        w = layer.weight
        if isinstance(layer, nn.Linear):
            macs["n"] += output.shape[0] * w.shape[0] * w.shape[1]
        elif isinstance(layer, nn.Conv2DTranspose):  # every input pixel meets every kernel tap
            macs["n"] += inputs[0].shape[0] * inputs[0].shape[2] * inputs[0].shape[3] * w.numel().item()
        else:
            k = w.numel().item() // w.shape[0]  # per output value
            macs["n"] += output.numel().item() * k

    from paddle_gan.gan.models import stylegan2_layers as sg

    def equal_linear(layer, inputs, output):  # StyleGAN2's dense layers (mapping, styles, D's head)
        macs["n"] += output.shape[0] * layer.weight.shape[0] * layer.weight.shape[1]

    def counted(conv):  # StyleGAN2's convolutions are calls, not layers: count each call's multiply-adds
        def wrapper(layer, x, weight, *a, **k):
            out = conv(layer, x, weight, *a, **k)
            macs["n"] += out.numel().item() * (weight.numel().item() // weight.shape[0])
            return out
        return wrapper

    def counted_transposed(fn):  # every input pixel meets every tap of the kernel
        def wrapper(layer, x, weight):
            macs["n"] += x.shape[0] * x.shape[2] * x.shape[3] * weight.numel().item()
            return fn(layer, x, weight)
        return wrapper

    real_conv, sg.conv = sg.conv, counted(sg.conv)
    real_transposed, sg.transposed_stride2 = sg.transposed_stride2, counted_transposed(sg.transposed_stride2)
    for net in (G, D):
        for layer in net.sublayers():
            if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, nn.Linear)):
                layer.register_forward_post_hook(hook)
            elif isinstance(layer, sg.EqualLinear):
                layer.register_forward_post_hook(equal_linear)
    z, y = paddle.randn([2, m.z_dim]), paddle.to_tensor([0, 1]) if m.num_classes else None
    try:
        with paddle.no_grad():
            x = G(z) if y is None else G(z, y)
            g, macs["n"] = macs["n"] / 2, 0
            D(x) if y is None else D(x, y)
            d = macs["n"] / 2
    finally:
        sg.conv, sg.transposed_stride2 = real_conv, real_transposed
    return 2 * (t.n_critic * (g + 6 * d) + 2 * g + 2 * d)


def matmul_roof(dtype: str = "float32", n: int = 2048) -> float:
    """GFLOP/s of Paddle's n x n matrix product on this CPU (the best of 5), in this process, with the
    thread settings a training process has (paddle_gan's CPU defaults: without them Paddle's matrix
    product runs on one thread, and every case would be "above the roof")."""
    import paddle

    import paddle_gan  # noqa: F401  (runtime defaults: threads)

    a, b = paddle.randn([n, n]).astype(dtype), paddle.randn([n, n]).astype(dtype)
    best = 0.0
    for _ in range(6):
        t0 = time.perf_counter()
        paddle.matmul(a, b).numpy()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def child(framework, spec, loader, batch, steps, repeats, warmup):
    seconds = (run_paddle if framework == "paddle" else run_torch)(spec, loader, steps, repeats, warmup)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"img_s": steps * batch / seconds if seconds else None, "peak_rss_mb": rss_mb}))


def _child_cmd(framework, name, spec, args, steps, serve=False):
    return [sys.executable, os.path.abspath(__file__), "--child", framework, "--name", name, "--config", spec[0],
            "--steps", str(steps), "--repeats", str(args.repeats), "--warmup", str(args.warmup)] + (
        ["--serve"] if serve else []) + ["-o", *spec[1]]


def _answer(proc, err, what: str) -> dict:
    """The next JSON line a child prints (anything else it prints is skipped); `err`: its stderr file."""
    for line in iter(proc.stdout.readline, ""):
        if line.startswith("{"):
            return json.loads(line)
    proc.wait()
    err.seek(0)
    raise RuntimeError(f"{what} failed:\n{err.read()[-2000:]}")


def measure_interleaved(frameworks, name, spec, args) -> dict:
    """Both frameworks' processes alive at once, each built and warmed up, then timed blocks of `steps`
    steps taking turns (ABBA...: the order alternates every pair), so that a drift of the machine's
    speed lands on both alike. Returns {framework: {"img_s": [per block], "peak_rss_mb"}}."""
    steps = args.steps or DEFAULT_STEPS.get(name, 20)
    batch = _cfg(spec).train.batch_size
    errs = {fw: tempfile.TemporaryFile("w+") for fw in frameworks}
    procs = {fw: subprocess.Popen(_child_cmd(fw, name, spec, args, steps, serve=True), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=errs[fw], text=True, cwd=REPO)
             for fw in frameworks}

    def ask(fw, n):
        try:
            procs[fw].stdin.write(f"{n}\n")
            procs[fw].stdin.flush()
        except BrokenPipeError:  # it has ended: _answer says why
            pass
        return _answer(procs[fw], errs[fw], f"{fw} {name}")

    def run(fw, n):
        seconds = ask(fw, n)["seconds"]
        time.sleep(0.5)  # the idle side's OpenMP threads stop spinning before the other side's block
        return seconds

    try:
        for fw in frameworks:  # one after the other: the second's start-up overlaps only the first's warm-up
            run(fw, max(1, args.warmup))
        out = {fw: {"img_s": []} for fw in frameworks}
        for r in range(args.repeats):
            for fw in frameworks if r % 2 == 0 else frameworks[::-1]:
                out[fw]["img_s"].append(steps * batch / run(fw, steps))
        for fw in frameworks:
            out[fw]["peak_rss_mb"] = ask(fw, 0)["peak_rss_mb"]
        return out
    finally:
        for fw, proc in procs.items():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            errs[fw].close()


def measure(framework, name, spec, args):
    cmd = _child_cmd(framework, name, spec, args, args.steps or DEFAULT_STEPS.get(name, 20))
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{framework} {name} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _summary(runs: list) -> dict:
    """The median img/s and the largest peak memory of one framework's rounds."""
    return {"img_s": statistics.median(r["img_s"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=None, help=f"comma-separated, from {', '.join(CASES)} (default: all)")
    p.add_argument("--config", help="time this config (with -o) instead of the named cases")
    p.add_argument("-o", "--override", nargs="*", action="extend", default=[], help="overrides for --config")
    p.add_argument("--steps", type=int, default=0, help="steps per timed block (default: per case)")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is reported")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--rounds", type=int, default=1,
                   help="per case, this many rounds of both frameworks' processes, the order alternating; "
                        "medians and the median per-round ratio are reported (the machine's speed drifts "
                        "between processes minutes apart)")
    p.add_argument("--interleave", action="store_true",
                   help="both frameworks' processes alive at once, their timed blocks (--repeats of them) taking "
                        "turns: img/s are the medians of the blocks, the ratio the median of the per-pair ratios "
                        "(for machines whose speed drifts within minutes; with --rounds, fresh pairs of processes)")
    p.add_argument("--child", choices=["paddle", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--roof", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.roof:
        print(matmul_roof())
        return 0
    if args.child:
        _SERVE[0] = args.serve
        spec = (args.config, args.override)
        cfg = _cfg(spec)
        child(args.child, spec, args.name == "loader", cfg.train.batch_size,
              args.steps or DEFAULT_STEPS.get(args.name, 20), args.repeats, args.warmup)
        return 0
    if args.config:
        cases = {os.path.basename(args.config) + "".join(f" {o}" for o in args.override): (args.config, args.override)}
    else:
        names = args.cases.split(",") if args.cases else list(CASES)
        unknown = [c for c in names if c not in CASES]
        if unknown:
            p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
        cases = {n: CASES[n] for n in names}
    have_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    roof = float(subprocess.run([sys.executable, os.path.abspath(__file__), "--roof"], capture_output=True, text=True,
                                cwd=REPO).stdout.strip().splitlines()[-1])  # in a fresh process, as the cases
    print(json.dumps({"cpu": cpu_name(), "float32_matmul_gflop_s": round(roof, 1)}), flush=True)
    for name, spec in cases.items():
        cfg = _cfg(spec)
        # no peer for class-conditional models, DiffAugment, or layers the mirror does not know
        peer = have_torch and not cfg.model.num_classes and not cfg.train.diffaug
        runs = {"paddle": [], "torch": []}
        for r in range(max(1, args.rounds)):
            order = ("paddle", "torch") if r % 2 == 0 else ("torch", "paddle")
            if args.interleave:  # one row per block: [paddle, torch]
                try:
                    blocks = measure_interleaved(order if peer else ("paddle",), name, spec, args)
                except RuntimeError as e:
                    if not peer or "no torch mirror" not in str(e):
                        raise
                    peer, blocks = False, measure_interleaved(("paddle",), name, spec, args)
                for fw, got in blocks.items():
                    runs[fw] += [{"img_s": v, "peak_rss_mb": got["peak_rss_mb"]} for v in got["img_s"]]
                continue
            for fw in order:
                if fw == "torch" and not peer:
                    continue
                try:
                    runs[fw].append(measure(fw, name, spec, args))
                except RuntimeError as e:
                    if fw == "paddle" or "no torch mirror" not in str(e):
                        raise
                    peer = False
        pd, th = _summary(runs["paddle"]), _summary(runs["torch"]) if runs["torch"] else None
        ratios = [a["img_s"] / b["img_s"] for a, b in zip(runs["paddle"], runs["torch"])]
        flops = flops_per_image(spec) if name != "loader" else 0.0
        print(json.dumps({"case": name, "batch": cfg.train.batch_size, "paddle_img_s": round(pd["img_s"], 1),
                          "gflop_per_img": round(flops / 1e9, 3),
                          "roof_fraction": round(pd["img_s"] * flops / 1e9 / roof, 3) if flops else None,
                          "torch_img_s": round(th["img_s"], 1) if th else None,
                          "ratio": round(statistics.median(ratios), 3) if th else None,
                          "paddle_peak_rss_mb": round(pd["peak_rss_mb"]),
                          "torch_peak_rss_mb": round(th["peak_rss_mb"]) if th else None,
                          **({"rounds": [[round(a["img_s"], 1), round(b["img_s"], 1) if b else None] for a, b in
                                         zip(runs["paddle"], runs["torch"] or [None] * len(runs["paddle"]))]}
                             if args.rounds > 1 or args.interleave else {}),
                          "cpu": cpu_name()}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
