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
    called = argv is None  # from the command line (not a test or a notebook calling main)
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=_keys_help() if {"-h", "--help"} & set(argv) else None)
    p.add_argument("-c", "--config", help="YAML config (configs/*.yaml; see --list); default: the quickstart")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. -o train.steps=500 opt_G.lr=1e-4 (every key: --help)")
    p.add_argument("--output", help="run folder (default: work/<config name>)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="continue a run: no value = newest valid checkpoint of the run folder; "
                        "or a checkpoint folder (or a run folder, or its checkpoints/)")
    p.add_argument("--device", help="auto | cpu | gpu | gpu:N, as the other tools take it (= -o train.device=...)")
    p.add_argument("--list", action="store_true", help="list the configs with a line each, then exit")
    args, stray = p.parse_known_args(argv)
    if stray:
        keyish = [a for a in stray if "=" in a and "." in a.split("=", 1)[0] and not a.startswith("-")]
        if keyish:
            p.error(f"{keyish[0]}: a config override goes after -o, e.g. -o {' '.join(keyish)} (put -o last, or "
                    f"give it again before each group of SECTION.KEY=VALUE)")
        p.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.device:
        args.override.append(f"train.device={args.device}")
    try:
        from paddle_gan.cli import Invocation, configs_dir, describe_configs, run
    except ImportError as e:  # no Paddle: paddle_gan's one-line install hint
        print(f"error: {e}", file=sys.stderr)
        return 2
    configs = configs_dir()
    if args.list:
        return _list(configs, describe_configs(configs))
    return run(Invocation(args.config, args.override, args.output, args.resume,
                          quickstart=_shown_path(os.path.join(configs, "quickstart.yaml")),
                          program=program(called)))


def _shown_path(path: str) -> str:
    """A path as the user can type it here: relative to this folder when it lies below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def _list(configs: str, described) -> int:
    rows = [(_shown_path(os.path.join(configs, name)), text) for name, text in described]
    width = max((len(path) for path, _ in rows), default=0)
    try:
        for path, text in rows:
            print(f"{path:{width}s}  {text}")
        sys.stdout.flush()
    except BrokenPipeError:  # `--list | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _keys_help() -> str:
    """Every config key with its default and comment (from the registries: components registered)."""
    try:
        from paddle_gan.config import describe
    except ImportError:
        return ""
    return "config keys (-o section.key=value; a config file sets the same keys):\n" + describe()


def program(called: bool) -> str:
    """How the user called us, for the commands we print: the installed command, or the clone's script."""
    name = os.path.basename(sys.argv[0]) if called else ""
    return name if name.startswith("paddle-gan-") else "python tools/train.py"

