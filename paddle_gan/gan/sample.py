"""Putting a generator to use: images, sample grids and latent interpolation from a G in memory
(a checkpoint's generator: run/generator.py opens one)."""
from __future__ import annotations

import numpy as np
import paddle

from .. import seeds
from ..images import make_grid


def generate(G, z: np.ndarray, labels: np.ndarray | None = None, batch: int = 256, on_batch=None) -> np.ndarray:
    """G(z) (G(z, labels) for a conditional G) in eval mode (BatchNorm running statistics) without
    touching training state. on_batch(n) is called as each batch of n images is done."""
    was_training = G.training
    G.eval()
    out = []
    try:
        with paddle.no_grad():
            for i in range(0, len(z), batch):
                args = [paddle.to_tensor(z[i:i + batch])]
                if labels is not None:
                    args.append(paddle.to_tensor(np.asarray(labels[i:i + batch], np.int64)))
                out.append(G(*args).numpy())
                if on_batch:
                    on_batch(len(out[-1]))
    finally:
        if was_training:
            G.train()
    return np.concatenate(out)


def sample_grid(G, z: np.ndarray, labeling, scale: int = 1) -> np.ndarray:
    """The uint8 grid of G's images for z, laid out as the labeling says (gan/labels.py: one row
    per class for a conditional G, else as square as it gets), enlarged `scale` times: the sample
    grids of training and of tools/generate.py --grid."""
    z = labeling.grid_noise(z)
    images = generate(G, z, labeling.grid_labels(len(z)))
    return make_grid(images, nrow=labeling.row_length(len(images)), scale=scale)


def sample_noise(seed: int, num: int, z_dim: int) -> np.ndarray:
    """The z of tools/generate.py: the same seed gives the same images."""
    return seeds.normal(seed, seeds.SAMPLE_NOISE, num, z_dim)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between z vectors a and b at fractions t (shape [T]) -> [T, z_dim].
    For Gaussian z it keeps the norm typical, where a straight line passes through low-norm z that
    the generator has rarely seen (White 2016)."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # (anti)parallel to float precision: a straight line is the same path
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolation_z(seed: int, strips: int, steps: int, z_dim: int) -> np.ndarray:
    """[strips, steps, z_dim]: each strip walks by slerp from one random z to another."""
    ends = sample_noise(seed, 2 * strips, z_dim)
    t = np.linspace(0.0, 1.0, steps)
    return np.stack([slerp(ends[2 * i], ends[2 * i + 1], t) for i in range(strips)])
