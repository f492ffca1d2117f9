#!/usr/bin/env python
"""The weights every config gives after N steps, as SHA-256 digests: run it before and after a change
that must not alter any numbers (a refactor, a new kernel that claims to be exact) and compare.

    python benchmarks/seed_weights.py --steps 4 > before.json
    ... change the code ...
    python benchmarks/seed_weights.py --steps 4 > after.json && diff before.json after.json

Each config trains through the real tools/train.py, in a fresh process, into a temporary folder,
for --steps steps at its own widths, batch size, loss and optimizer settings. Data: the Fashion-MNIST
split bundled in the package for every IDX config (MNIST configs read it in MNIST's place: the same
shapes), and a folder of 256 deterministic RGB images for image-folder configs. Digests cover every
tensor of G, D, their Adam states and G_ema (by key, so renamed parameters show up too) and the
step's metrics row. One JSON object: {config: {file: digest, ...}}. Digests depend on the CPU's
kernels (float rounding): compare only runs on one machine.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _image_folder(root: str) -> str:
    """256 RGB 64x64 PNGs, the same on every run (coloured Fashion-MNIST images)."""
    import cv2

    from paddle_gan.data import BUNDLED_DIR, read_idx

    images = read_idx(os.path.join(BUNDLED_DIR, "t10k-images-idx3-ubyte.gz"))[:256]
    os.makedirs(root, exist_ok=True)
    for i, im in enumerate(images):
        big = cv2.resize(im, (64, 64), interpolation=cv2.INTER_LINEAR)
        rgb = np.stack([big, 255 - big, (big.astype(np.int32) * (i % 7) // 7).astype(np.uint8)], axis=2)
        cv2.imwrite(os.path.join(root, f"{i:04d}.png"), rgb)
    return root


def digests(ckpt: str) -> dict:
    from paddle_gan import safepickle

    out = {}
    for path in sorted(glob.glob(os.path.join(ckpt, "*.pd*"))):
        with open(path, "rb") as f:
            state = safepickle.load_state_dict(f.read())
        h = hashlib.sha256()
        for key in sorted(state):
            v = state[key]
            h.update(key.encode() + b"\0")
            h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
        out[os.path.basename(path)] = h.hexdigest()[:16]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--configs", nargs="*", help="config files (default: every configs/*.yaml)")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], help="more overrides for every config")
    args = p.parse_args(argv)
    from paddle_gan.config import load_config
    from paddle_gan.data import BUNDLED_DIR

    configs = args.configs or sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml")))
    result = {}
    with tempfile.TemporaryDirectory(prefix="seed_weights-") as tmp:
        folder = _image_folder(os.path.join(tmp, "images"))
        for path in configs:
            cfg = load_config(path, ["data.root=unused"] if "image_folder" in open(path).read() else [])
            data = ([f"data.root={folder}"] if cfg.data.name == "image_folder" else
                    ["data.name=fashion_mnist", f"data.root={BUNDLED_DIR}", "data.split=test"])
            run = os.path.join(tmp, os.path.basename(path))
            cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path, "--output", run, "-o", *data,
                   f"train.steps={args.steps}", "train.eval_every=0", "train.log_every=1", "train.progress_gif=false",
                   *args.override]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                                  env=dict(os.environ, PADDLE_GAN_PROGRESS="0"))
            if proc.returncode != 0:
                result[os.path.basename(path)] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
                continue
            ckpt = sorted(glob.glob(os.path.join(run, "checkpoints", "step_*")))[-1]
            d = digests(ckpt)
            with open(os.path.join(run, "metrics.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            last = {k: v for k, v in rows[-1].items() if k not in ("time", "img_per_s")}
            d["metrics"] = last  # the losses exactly as logged (repr of floats: every bit)
            result[os.path.basename(path)] = d
            print(f"{os.path.basename(path)}: {d}", file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
