#!/usr/bin/env python
"""Two variants of one config in ONE process, stepped in alternating blocks: an A/B of a switch whose
effect is smaller than the machine's noise between processes (on the 2-core machines here the same
step measured 1.3-2x apart minutes apart; within one process, blocks a few seconds apart share it).

    python benchmarks/bench_ab.py dcgan_fashion_mnist.yaml --a train.channels_last=off --b train.channels_last=on
    python benchmarks/bench_ab.py dcgan_fashion_mnist.yaml -o train.amp=bfloat16 --a train.channels_last=off \\
        --b train.channels_last=on --swap
    python benchmarks/bench_ab.py dcgan_fashion_mnist.yaml -o train.amp=bfloat16 --a-env PADDLE_GAN_BWDW=onednn

--a-env / --b-env set environment variables for building each variant and around each of its blocks
(for switches read from the environment, like PADDLE_GAN_BWDW, which the operator reads per call).

Both variants are built by the trainer's prepare (benchmarks/bench_train.py's paddle_step: the same
models, switches and step as a run), warmed up, then stepped in `blocks` rounds of `steps` steps each,
the order alternating every round. Prints one JSON line: img/s of each, B/A (total time) and the
median of the per-round ratios. An A/A run (the same overrides on both sides) gave 1.06 once and 0.99
once (Intel Xeon): run both orders (--swap) and read the two ratios together.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import cpu_name, paddle_step  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("-o", "--override", nargs="*", action="extend", default=[], help="overrides of both variants")
    p.add_argument("--a", nargs="*", default=[], help="overrides of variant A")
    p.add_argument("--b", nargs="*", default=[], help="overrides of variant B")
    p.add_argument("--a-env", nargs="*", default=[], metavar="NAME=VALUE",
                   help="environment of variant A, set before it is built and before each of its blocks "
                        "(e.g. PADDLE_GAN_BWDW=onednn)")
    p.add_argument("--b-env", nargs="*", default=[], metavar="NAME=VALUE", help="the same for variant B")
    p.add_argument("--swap", action="store_true", help="build B first")
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="steps per block")
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    order = ("b", "a") if args.swap else ("a", "b")
    env = {k: dict(kv.split("=", 1) for kv in getattr(args, f"{k}_env")) for k in ("a", "b")}
    before = {n: os.environ.get(n) for e in env.values() for n in e}
    for name in before:  # a name one side sets, the other side has as before
        for e in env.values():
            e.setdefault(name, before[name])

    def use_env(k):
        for name, value in (before if k is None else env[k]).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    try:
        built = {}
        for k in order:
            use_env(k)
            built[k] = paddle_step((args.config, args.override + getattr(args, k)))
        for _ in range(args.warmup):
            for k, (step, _) in built.items():
                use_env(k)
                step()
        times = {"a": [], "b": []}
        for i in range(args.blocks):
            for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
                use_env(k)
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    built[k][0]()
                times[k].append(time.perf_counter() - t0)
    finally:  # the variants' environment undone, also when one fails
        use_env(None)
    images = args.blocks * args.steps * built["a"][1]
    print(json.dumps({"config": args.config, "overrides": args.override, "a": args.a + args.a_env,
                      "b": args.b + args.b_env,
                      "built_first": order[0], "a_img_s": round(images / sum(times["a"]), 1),
                      "b_img_s": round(images / sum(times["b"]), 1),
                      "b_over_a": round(sum(times["a"]) / sum(times["b"]), 3),
                      "b_over_a_median_block": round(statistics.median(a / b for a, b in zip(times["a"], times["b"])), 3),
                      "cpu": cpu_name()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
