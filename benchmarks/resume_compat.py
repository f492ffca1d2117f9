#!/usr/bin/env python
"""Checkpoints of an older paddle_gan resume in this one and give the same weights, bit for bit: for
every config, the older checkout trains 4 steps (saving at 2 and 4); this checkout resumes the older
step-2 checkpoint to step 4; every tensor of G, D, both Adam states and G_ema must equal the older
run's own step 4.

    git worktree add /tmp/old f6437d5
    python benchmarks/resume_compat.py --old /tmp/old [--configs configs/quickstart.yaml ...] [-o more overrides]

Data as benchmarks/seed_weights.py gives it (the bundled split; 256 generated images for image-folder
configs). Prints one line per config and a JSON summary; exit 1 if any config differs.

A config whose numbers a commit changed on purpose differs across that commit, as it should: the
biases inside the oneDNN primitive (420e084: the WGAN-GP, SNGAN and StyleGAN2 configs),
the operator's BatchNorm for penalised runs (d5cb2f2: -o train.r1_gamma / WGAN-GP with BatchNorm in D),
train.channels_last (bfloat16 runs of DCGAN and the ResNet), bfloat16 weight gradients as one product
(8fbedfd) and bfloat16 activations (129afde, 5a4d4e0; all three: bfloat16 runs only), a penalised D
channels-last in float32 too (train.channels_last=auto: WGAN-GP, -o train.r1_gamma). Compare those on
checkouts after it.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _train(repo: str, *args: str) -> None:
    cmd = [sys.executable, os.path.join(repo, "tools", "train.py"), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, env=dict(os.environ, PADDLE_GAN_PROGRESS="0"))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:4])}...: {(p.stderr.strip().splitlines() or ['?'])[-1]}")


def main(argv=None) -> int:
    from seed_weights import _image_folder, digests

    from paddle_gan.config import load_config
    from paddle_gan.data import BUNDLED_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="a checkout of the older paddle_gan (git worktree add ...)")
    p.add_argument("--configs", nargs="*", help="config files (default: every configs/*.yaml)")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], help="more overrides for every config")
    args = p.parse_args(argv)
    configs = args.configs or sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml")))
    result, bad = {}, 0
    with tempfile.TemporaryDirectory(prefix="resume_compat-") as tmp:
        folder = _image_folder(os.path.join(tmp, "images"))
        for path in configs:
            name = os.path.basename(path)
            cfg = load_config(path, ["data.root=unused"] if "image_folder" in open(path).read() else [])
            data = ([f"data.root={folder}"] if cfg.data.name == "image_folder" else
                    ["data.name=fashion_mnist", f"data.root={BUNDLED_DIR}", "data.split=test"])
            common = [*data, "train.eval_every=0", "train.save_every=2", "train.keep_checkpoints=0",
                      "train.progress_gif=false", *args.override]
            old_run, new_run = os.path.join(tmp, name, "old"), os.path.join(tmp, name, "new")
            old_config = os.path.join(args.old, "configs", name)
            try:
                _train(args.old, "-c", old_config, "--output", old_run, "-o", *common, "train.steps=4")
                os.makedirs(os.path.join(new_run, "checkpoints"))
                shutil.copytree(os.path.join(old_run, "checkpoints", "step_0000002"),
                                os.path.join(new_run, "checkpoints", "step_0000002"))
                _train(REPO, "--resume", os.path.join(new_run, "checkpoints", "step_0000002"), "-o", "train.steps=4")
            except RuntimeError as e:
                result[name] = {"error": str(e)}
                bad += 1
                print(f"{name}: error {e}", flush=True)
                continue
            a, b = (digests(os.path.join(r, "checkpoints", "step_0000004")) for r in (old_run, new_run))
            same = a == b
            bad += not same
            result[name] = {"same": same, "files": sorted(a)} if same else {"same": False, "old": a, "new": b}
            print(f"{name}: {'same' if same else 'DIFFERENT'} ({', '.join(sorted(a))})", flush=True)
    print(json.dumps(result, indent=1, sort_keys=True))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
