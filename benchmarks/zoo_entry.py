#!/usr/bin/env python
"""Make (or remake) an entry of the pretrained-generator zoo from a training checkpoint, with its
scores measured, never typed:

    python benchmarks/zoo_entry.py --checkpoint work/budget/dcgan/checkpoints/best --name fashion_mnist \
        --about "DCGAN-32, unconditional, 3000 steps x 64 (README equal-budget protocol)"

Exports the generator only (tools/export.py --format safetensors: no pickle) into a
staging folder, scores it with tools/eval.py twice: 10,000 samples against the train split (the README's protocol,
needs the full Fashion-MNIST: data.root or /usr/share/datasets/fashion-mnist) and 2,000 samples
against the test split bundled in the package (what tests/test_eval_tools.py checks offline).
Writes zoo.json with both records and the commands that made them, then puts the folder in place as
paddle_gan/zoo/NAME whole (an earlier entry of that name is replaced; any other folder there is
refused). Entries must stay under 5 MB (they ship in the wheel).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
LIMIT = 5_000_000


def _tool(*args: str) -> dict:
    """Run tools/<args[0]>.py in a fresh process; its last stdout line parsed as JSON ({} if none)."""
    cmd = [sys.executable, os.path.join(REPO, "tools", f"{args[0]}.py"), *args[1:]]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    return json.loads(out[-1]) if out and out[-1].startswith("{") else {}


def main() -> int:
    from paddle_gan.zoo import HERE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a checkpoint folder of a finished run")
    ap.add_argument("--name", required=True, help="the entry's name (--pretrained NAME)")
    ap.add_argument("--about", required=True, help="one line: what the generator is and how it was trained")
    args = ap.parse_args()

    out = os.path.join(HERE, args.name)
    staging = os.path.join(HERE, f".{args.name}.staging-{os.getpid()}")  # scored here, then put in place whole
    try:
        entry = _make(args, staging)
        if entry is None:
            return 2
        from paddle_gan.files import write_folder
        from paddle_gan.run.checkpoint import earlier_generator_only

        write_folder(out, lambda tmp: [os.replace(os.path.join(staging, n), os.path.join(tmp, n))
                                       for n in os.listdir(staging)],
                     lambda path: earlier_generator_only(path, also=("zoo.json",)), option="zoo entry")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps({k: v for k, v in entry.items() if not k.startswith("eval_")}))
    print(f"wrote {os.path.relpath(out, REPO)} ({entry['bytes'] / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def portable(record: dict, staging: str, name: str) -> dict:
    """An evaluation record as the entry ships it: the checkpoint it scored is the entry itself
    (paddle_gan/zoo/NAME, not the staging folder it was scored in), and paths inside the clone are
    relative to it (no machine's absolute paths in a file the package carries)."""
    def rel(v):
        if not isinstance(v, str) or not os.path.isabs(v):
            return v
        if os.path.abspath(v) == os.path.abspath(staging):
            return f"paddle_gan/zoo/{name}"
        inside = os.path.relpath(v, REPO)
        return v if inside.startswith("..") else inside
    return {k: rel(v) for k, v in record.items()}


def _make(args, out: str) -> dict | None:
    """The entry in the new folder `out`: exported, sized, scored, zoo.json written; None if too big."""
    from paddle_gan.data import BUNDLED_DIR

    _tool("export", "--checkpoint", args.checkpoint, "--out", out, "--format", "safetensors")
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    if size > LIMIT:
        print(f"error: {args.name}: {size / 1e6:.1f} MB is over the zoo's {LIMIT / 1e6:.0f} MB", file=sys.stderr)
        return None
    full = _tool("eval", "--checkpoint", out, "--num", "10000")
    small = _tool("eval", "--checkpoint", out, "--num", "2000", "--data", "fashion_mnist:test",
                  "--data-root", BUNDLED_DIR)
    full, small = (portable(r, out, args.name) for r in (full, small))
    entry = {"name": args.name, "about": args.about, "from": os.path.relpath(os.path.abspath(args.checkpoint), REPO),
             "bytes": size, "eval_10000_train": full, "eval_2000_test": small,
             "commands": [f"python tools/eval.py --pretrained {args.name} --num 10000",
                          f"python tools/eval.py --pretrained {args.name} --num 2000 --data fashion_mnist:test "
                          f"--data-root {os.path.relpath(BUNDLED_DIR, REPO)}"]}
    for key in ("fid_lenet_fashion", "class_acc_lenet_fashion"):
        if key in small:
            entry[f"{key}_2000_test"] = small[key]
        if key in full:
            entry[f"{key}_10000_train"] = full[key]
    with open(os.path.join(out, "zoo.json"), "w") as f:
        json.dump(entry, f, indent=1)
    return entry


if __name__ == "__main__":
    sys.exit(main())
