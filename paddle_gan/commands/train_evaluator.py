"""Train the LeNet feature extractor behind the *_lenet_* metrics on a dataset's labels.

    python tools/train_evaluator.py --data fashion_mnist          # -> paddle_gan/metrics/weights/
    python tools/train_evaluator.py --data mnist --root ~/data/mnist

Prints the test-split accuracy, which is also recorded next to the weights (lenet_<data>.json).
"""
import argparse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "mnist"])
    p.add_argument("--root", default="", help="folder with the IDX files (default: the usual places)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only (0 = all)")
    p.add_argument("--out", help="weights file (default: paddle_gan/metrics/weights/lenet_<data>.pdparams)")
    args = p.parse_args(argv)
    from paddle_gan.errors import run_tool
    from paddle_gan.metrics.lenet import train_lenet

    def body() -> int:
        info = train_lenet(args.data, args.root, epochs=args.epochs, seed=args.seed, out=args.out, limit=args.limit)
        print(f"test accuracy {info['test_accuracy']:.4f}; weights {info['weights']}")
        return 0

    return run_tool(body)

