"""Train a GAN from a config; stop any time (Ctrl-C saves) and continue with --resume.

    python tools/train.py                                  # the quickstart, offline, into work/quickstart/
    python tools/train.py --list                           # every config, one line each
    python tools/train.py -c configs/dcgan_mnist.yaml -o train.steps=20000 train.batch_size=128
    python tools/train.py -c configs/dcgan_mnist.yaml --resume            # newest checkpoint of the run
    python tools/train.py --resume work/dcgan_mnist/checkpoints/step_0005000
"""
import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", help="YAML config (configs/*.yaml; see --list); default: the quickstart")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. -o train.steps=500 opt_G.lr=1e-4")
    p.add_argument("--output", help="run folder (default: work/<config name>)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="continue a run: no value = newest valid checkpoint of the run folder; "
                        "or a checkpoint folder (or a run folder, or its checkpoints/)")
    p.add_argument("--device", help="auto | cpu | gpu | gpu:N, as the other tools take it (= -o train.device=...)")
    p.add_argument("--list", action="store_true", help="list the configs with a line each, then exit")
    args = p.parse_args(argv)
    if args.device:
        args.override.append(f"train.device={args.device}")
    try:
        from paddle_gan.cli import Invocation, configs_dir, describe_configs, run
    except ImportError as e:  # no Paddle: paddle_gan's one-line install hint
        print(f"error: {e}", file=sys.stderr)
        return 2
    configs = configs_dir()
    if args.list:
        rows = [(os.path.relpath(os.path.join(configs, name)), text) for name, text in describe_configs(configs)]
        width = max((len(path) for path, _ in rows), default=0)
        for path, text in rows:
            print(f"{path:{width}s}  {text}")
        return 0
    return run(Invocation(args.config, args.override, args.output, args.resume,
                          quickstart=os.path.relpath(os.path.join(configs, "quickstart.yaml")),
                          program=program(argv)))


def program(argv) -> str:
    """How the user called us, for the commands we print: the installed command, or the clone's script."""
    name = os.path.basename(sys.argv[0]) if argv is None else ""
    return name if name.startswith("paddle-gan-") else "python tools/train.py"

