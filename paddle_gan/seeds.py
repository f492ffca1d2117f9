"""The package's random streams, each named once.

NumPy streams are seeded with [seed, TAG], so no two uses of one seed ever share a stream: the
sample grid's noise cannot shift when the evaluation noise changes size, and so on. Paddle's own RNG
(training noise, dropout, labels) is reseeded before every training step from (seed, step), so
nothing outside a step (sampling, evaluation, a resume) can move it.
"""
from __future__ import annotations

import numpy as np

FIXED_NOISE = 1  # the z of the run's sample grids (saved in every checkpoint as fixed_noise.npy)
EVAL_NOISE = 2  # the z of an evaluation (trainer and tools/eval.py)
SAMPLE_NOISE = 3  # the z of tools/generate.py
REAL_SUBSET = 4  # which real images stand in for generated ones in `tools/eval.py --real`
EMA_STATS = 5  # the z on which the EMA generator's BatchNorm statistics are measured (ema.py)


def rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag])


def reference_rng() -> np.random.Generator:
    """Which real images of a reference split are scored: one fixed subset for every seed, since
    their features are cached (metrics.real_features)."""
    return np.random.default_rng(0)


def normal(seed: int, tag: int, n: int, z_dim: int) -> np.ndarray:
    """[n, z_dim] float32 draws of N(0, 1) from stream `tag` of `seed`."""
    return rng(seed, tag).standard_normal((n, z_dim)).astype(np.float32)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Paddle's seed for a step; process `rank` of a data-parallel run reseeds with its own after the
    shared noise is drawn, so its dropout masks differ from the other processes'."""
    return (seed * 1_000_003 + step + rank * 0x9E3779B9) % (2 ** 32)
