"""Score a generator checkpoint: FID, KID, IS, precision/recall, density/coverage, as one JSON line
(--metrics fid,kid: only those).

    python tools/eval.py --checkpoint work/dcgan_fashion_mnist/checkpoints/best
    python tools/eval.py --checkpoint CKPT --num 10000 --seed 0 --data fashion_mnist:test
    python tools/eval.py --real fashion_mnist:test --data fashion_mnist:train   # real vs real: the floor

Scores are named <score>_<extractor> (lenet_fashion: the package's own LeNet features, comparable
only with each other; inception: the FID InceptionV3). The reference is the checkpoint's own dataset
and split unless --data says otherwise. Same checkpoint + same --seed -> same numbers. For a
checkpoint the record is also appended to <run>/metric-<extractor>.jsonl.
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    from paddle_gan import device, zoo
    from paddle_gan.errors import run_tool
    from paddle_gan.metrics import EXTRACTORS, METRICS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint folder (e.g. <run>/checkpoints/best), or a run folder (its "
                     "newest checkpoint)")
    src.add_argument("--real", metavar="DATA:SPLIT", help="score real images instead of a generator")
    zoo.add_argument(src)
    p.add_argument("--num", type=int, default=10000, help="generated (and real) images (default 10000; 10..1000000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the z batch and the KID subsets")
    p.add_argument("--data", metavar="DATA[:SPLIT]", help="reference data (default: the checkpoint's)")
    p.add_argument("--data-root", help="folder of the reference data (default: the usual places)")
    p.add_argument("--extractor", default="auto", choices=["auto", *EXTRACTORS])
    p.add_argument("--metrics", default="", metavar="NAMES",
                   help=f"comma-separated metrics to compute (default: all of {', '.join(METRICS)})")
    p.add_argument("--inception-weights", help="FID Inception weights (.pdparams, or pytorch-fid's .pth)")
    p.add_argument("--img-size", type=int, default=32, help="with --real: the size images are scored at")
    p.add_argument("--device", default="auto", help="auto (a GPU when Paddle is a CUDA build and sees one, "
                   "else the CPU) | cpu | gpu | gpu:N")
    p.add_argument("--float-images", action="store_true",
                   help="score G's images as floats, not as the 8-bit PNGs they become when saved (the default)")
    p.add_argument("--raw", action="store_true",
                   help="use the raw generator G even when the checkpoint has an EMA one (G_ema, train.ema)")
    args = p.parse_args(argv)
    from paddle_gan.bounds import MAX_GENERATED, check_count
    from paddle_gan.commands.evaluate import evaluate_checkpoint, record_evaluation

    def body() -> int:
        from paddle_gan.config import keys
        from paddle_gan.config.checks import validate_choice

        if zoo.listed(args.pretrained):
            return 0
        check_count(args.num, MAX_GENERATED, "--num", low=10)
        validate_choice("--metrics", keys("train")["eval_metrics"], args.metrics)
        device.use(args.device, key="--device")
        args.checkpoint = zoo.checkpoint(args.pretrained, args.checkpoint)
        record = evaluate_checkpoint(args.checkpoint, args.num, args.seed, args.data, args.data_root, args.extractor,
                                     args.inception_weights, args.real, args.img_size, raw=args.raw,
                                     quantize=not args.float_images,
                                     metrics=[n for n in METRICS if n in args.metrics.split(",")] or None)
        print(json.dumps(record), flush=True)  # the result first: a run we may not write to still gets it
        try:
            record_evaluation(record)
        except OSError as e:
            print(f"warning: not recorded in the run folder ({e.strerror or e}); the scores are above", file=sys.stderr)
        return 0

    return run_tool(body)

