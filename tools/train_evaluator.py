#!/usr/bin/env python
"""Train the LeNet feature extractor behind the *_lenet_* metrics on a dataset's labels.

The command itself is paddle_gan/commands/train_evaluator.py (installed: paddle-gan-train-evaluator); this file runs it
from a clone, with the clone's package first on the path.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    from paddle_gan.commands.train_evaluator import main
except ImportError as e:  # no Paddle: paddle_gan's one-line install hint, as an error line
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main())
