#!/usr/bin/env python
"""bfloat16 weight gradients one layer at a time: oneDNN's backward-weights kernel against
ops/gemm_bwdw.cc (im2col + one matmul), in ONE process, the two alternating (PADDLE_GAN_BWDW, read
per call), forward + backward-weights timed together, channels-last, the minimum over rounds.

    python benchmarks/bench_bwd_weights.py [--batch 64] [--rounds 5]

The layers are DCGAN-32's (dcgan_fashion_mnist.yaml) and the ResNet's 3 x 3 convolutions at each map
size (sngan_resnet_fashion_mnist.yaml, width 128). `auto` (PADDLE_GAN_BWDW unset) is what a run takes
(dnnl_conv.cc's gemm_weights: the product where the gradient side has at most 8 x 8 positions per map),
timed alongside. Needs a CPU with bfloat16 arithmetic (AMX or AVX512-BF16).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import cpu_name  # noqa: E402

# (name, Cin, Cout, K, stride, pad, input size, transposed)
LAYERS = [("dcgan D1", 1, 64, 4, 2, 1, 32, False), ("dcgan D2", 64, 128, 4, 2, 1, 16, False),
          ("dcgan D3", 128, 256, 4, 2, 1, 8, False), ("dcgan D4", 256, 1, 4, 1, 0, 4, False),
          ("dcgan G1", 100, 256, 4, 1, 0, 1, True), ("dcgan G2", 256, 128, 4, 2, 1, 4, True),
          ("dcgan G3", 128, 64, 4, 2, 1, 8, True), ("dcgan G4", 64, 1, 4, 2, 1, 16, True),
          ("resnet 32x32", 128, 128, 3, 1, 1, 32, False), ("resnet 16x16", 128, 128, 3, 1, 1, 16, False),
          ("resnet 8x8", 128, 128, 3, 1, 1, 8, False), ("resnet 4x4", 128, 128, 3, 1, 1, 4, False)]


def layer_step(layer, batch):
    import paddle

    from paddle_gan import ops

    _, cin, cout, k, s, p, size, tr = layer
    paddle.seed(0)
    x = paddle.randn([batch, size, size, cin])
    w = paddle.randn([cin, cout, k, k] if tr else [cout, cin, k, k]) * 0.02
    w.stop_gradient = False

    def forward():
        with ops.bfloat16():  # channels-last, float32 in and out
            return ops.conv(x, w, None, s, p, 0, transposed=tr, nhwc=True)

    g = paddle.randn(forward().shape)

    def step():
        paddle.grad([forward()], [w], [g])

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=6, help="timed calls per round and kernel")
    args = ap.parse_args(argv)
    from paddle_gan import ops
    from paddle_gan.gan.precision import _bfloat16_fails, cpu_bfloat16

    if cpu_bfloat16() is None or _bfloat16_fails():
        print("this CPU has no bfloat16 arithmetic oneDNN runs (AMX or AVX512-BF16): nothing to measure")
        return 1
    ops.load()
    total = {"onednn": 0.0, "gemm": 0.0, "auto": 0.0}
    print(f"{'layer':14} {'oneDNN ms':>10} {'gemm ms':>9} {'auto ms':>9} {'ratio':>6}  (fwd + bwd_w, batch "
          f"{args.batch}, {cpu_name()})")
    before = os.environ.get("PADDLE_GAN_BWDW")
    try:
        for layer in LAYERS:
            step = layer_step(layer, args.batch)
            best = dict.fromkeys(total, float("inf"))
            for _ in range(args.rounds):
                for how in best:
                    if how == "auto":
                        os.environ.pop("PADDLE_GAN_BWDW", None)
                    else:
                        os.environ["PADDLE_GAN_BWDW"] = how
                    step()
                    t0 = time.perf_counter()
                    for _ in range(args.calls):
                        step()
                    best[how] = min(best[how], (time.perf_counter() - t0) / args.calls * 1e3)
            for how in best:
                total[how] += best[how]
            print(f"{layer[0]:14} {best['onednn']:10.2f} {best['gemm']:9.2f} {best['auto']:9.2f} "
                  f"{best['onednn'] / best['gemm']:6.2f}")
    finally:
        if before is None:
            os.environ.pop("PADDLE_GAN_BWDW", None)
        else:
            os.environ["PADDLE_GAN_BWDW"] = before
    print(json.dumps({"total_ms": {k: round(v, 2) for k, v in total.items()}, "batch": args.batch, "cpu": cpu_name()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
