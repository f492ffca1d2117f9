#!/usr/bin/env python
"""StyleGAN2's modulated convolution, two ways, forward + backward + the second derivative R1 and path
length take, at the sizes of configs/stylegan2_fashion_mnist.yaml's widest layers:

    python benchmarks/bench_modconv.py [--batch 32] [--repeats 5]

- scaled: modulation and demodulation as scalings around one convolution whose weight the batch
  shares (paddle_gan's way: the oneDNN operator, or Paddle's conv2d), as stylegan2-ada's
  fused_modconv=False;
- grouped: one weight per sample, a grouped convolution over the batch (fused_modconv=True), on
  Paddle's conv2d (the operator runs groups=1 only).
Prints one JSON line per (layer, way): milliseconds per call, the median of --repeats.
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import paddle
    import paddle.nn.functional as F

    from paddle_gan import ops
    from paddle_gan.gan.models.stylegan2_layers import demodulation
    from paddle_gan.gan.precision import cpu_name

    ops.load()
    n = args.batch

    def scaled(x, w, s, onednn):
        y = x * s.reshape([n, -1, 1, 1])
        y = ops.conv(y, w, None, 1, 1) if onednn else F.conv2d(y, w, padding=1)
        return y * demodulation(w, s).reshape([n, -1, 1, 1])

    def grouped(x, w, s, onednn=False):
        ws = w.unsqueeze(0) * s.reshape([n, 1, -1, 1, 1])  # [N, O, I, k, k]
        ws = ws * paddle.rsqrt(ws.square().sum(axis=[2, 3, 4]) + 1e-8).reshape([n, -1, 1, 1, 1])
        y = F.conv2d(x.reshape([1, -1, x.shape[2], x.shape[3]]), ws.reshape([-1, w.shape[1], 3, 3]), padding=1, groups=n)
        return y.reshape([n, -1, x.shape[2], x.shape[3]])

    for c_in, c_out, size in ((32, 16, 32), (64, 32, 16), (64, 64, 8)):
        for name, fn, onednn in (("scaled, oneDNN operator", scaled, True), ("scaled, Paddle conv2d", scaled, False),
                                 ("grouped, Paddle conv2d", grouped, False)):
            x = paddle.randn([n, c_in, size, size])
            w = paddle.randn([c_out, c_in, 3, 3])
            s = paddle.rand([n, c_in]) + 0.5
            for t in (x, w, s):
                t.stop_gradient = False

            def once():
                y = fn(x, w, s, onednn)
                (gx,) = paddle.grad(y.square().sum(), x, create_graph=True)  # the penalties' double backward
                gx.square().sum().backward()

            try:
                once()
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    once()
                    times.append(time.perf_counter() - t0)
                ms = round(statistics.median(times) * 1000, 2)
            except Exception as e:  # e.g. a kernel without a second derivative
                ms = f"failed: {str(e).strip().splitlines()[0][:120]}"
            print(json.dumps({"layer": f"{c_in}->{c_out} at {size}x{size}", "batch": n, "way": name, "ms": ms,
                              "cpu": cpu_name()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
