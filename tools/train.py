#!/usr/bin/env python
"""Train a GAN from a config; stop any time (Ctrl-C saves) and continue with --resume.

    python tools/train.py -c configs/quickstart.yaml
    python tools/train.py -c configs/dcgan_mnist.yaml -o train.steps=20000 train.batch_size=128
    python tools/train.py -c configs/dcgan_mnist.yaml --resume            # newest checkpoint of the run
    python tools/train.py --resume work/dcgan_mnist/checkpoints/step_0005000
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone too


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", help="YAML config (configs/*.yaml); optional with --resume")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. -o train.steps=500 opt_G.lr=1e-4")
    p.add_argument("--output", help="run folder (default: work/<config name>)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="continue a run: no value = newest valid checkpoint of the run folder; "
                        "or a checkpoint folder (or a run folder)")
    args = p.parse_args(argv)
    try:
        from paddle_gan.cli import run
    except ImportError as e:  # no Paddle: paddle_gan's one-line install hint
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(config=args.config, overrides=args.override, output=args.output, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
