#!/usr/bin/env python
"""The README's "speed on this CPU" table, measured here and now, so that a reader can refresh it on
their own machine:

    python benchmarks/readme_numbers.py            # the training speeds (~5 min on 2 cores)
    python benchmarks/readme_numbers.py --tests    # also the test suite: its count and time (~4 more)

Each setup's training step is timed by benchmarks/bench_train.py in a fresh process (the trainer's own
step, warm-up excluded, median of 3 blocks), on random images of the config's shape. Prints a
markdown table with the CPU, the date and the command; nothing here is typed in by hand.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks", "bench_train.py")

# (what the README calls it, config, overrides, steps per timed block)
ROWS = [
    ("quickstart (DCGAN-32 at half width, batch 32)", "quickstart.yaml", [], 40),
    ("DCGAN-32, full width, batch 64 (`dcgan_fashion_mnist`)", "dcgan_fashion_mnist.yaml", [], 20),
    ("MLP GAN, batch 64 (`gan_mlp_mnist`)", "gan_mlp_mnist.yaml", [], 100),
    ("SNGAN ResNet 48/32, batch 64 (`sngan_resnet_fashion_mnist`)", "sngan_resnet_fashion_mnist.yaml", [], 10),
    ("StyleGAN2 16/64, batch 32 (`stylegan2_fashion_mnist`)", "stylegan2_fashion_mnist.yaml", [], 10),
    ("dense DCGAN 64x64x3, batch 64 (`dcgan_anime64`)", "dcgan_anime64.yaml", ["data.root=unused"], 2),
    ("the same shrunk: widths 32, batch 32", "dcgan_anime64.yaml",
     ["data.root=unused", "model.g_channels=32", "model.d_channels=32", "train.batch_size=32"], 10),
]


def speed(config: str, overrides: list, steps: int) -> dict:
    cmd = [sys.executable, BENCH, "--no-torch", "--config", os.path.join(REPO, "configs", config), "--steps", str(steps),
           "-o", *overrides]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])}: {p.stderr.strip()[-500:]}")
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    return next(r for r in lines if "paddle_img_s" in r)


def suite() -> str:
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q"], capture_output=True, text=True, cwd=REPO)
    summary = (p.stdout.strip().splitlines() or ["?"])[-1]
    counts = ", ".join(re.findall(r"\d+ (?:passed|failed|skipped)", summary))
    return f"{counts} in {time.time() - t0:.0f} s (`python -m pytest -q`, 2 worker processes)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", action="store_true", help="also run the test suite and report it")
    args = ap.parse_args()
    sys.path.insert(0, REPO)
    from paddle_gan.gan.precision import cpu_bfloat16, cpu_name

    rows = []
    for name, config, overrides, steps in ROWS:
        r = speed(config, overrides, steps)
        rows.append(f"| {name} | {r['paddle_img_s']:.0f} | {r['paddle_peak_rss_mb']} MB |")
        print(rows[-1], file=sys.stderr, flush=True)
    bf16 = cpu_bfloat16()
    print(f"Measured {datetime.date.today()} on {os.cpu_count()} cores of an {cpu_name()} "
          f"({'with ' + bf16 if bf16 else 'no bfloat16 arithmetic'}) by "
          f"`python benchmarks/readme_numbers.py{' --tests' if args.tests else ''}`, float32, the oneDNN convolutions:\n")
    print("| training step | img/s | peak memory |\n|---|---|---|")
    print("\n".join(rows))
    if args.tests:
        print(f"\nTests: {suite()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
