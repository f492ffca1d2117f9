"""What labels a run asks of G, as one small interface for conditional and unconditional runs, so
that the loop, the sample grids, the evaluation and tools/generate.py never ask which one they have.

    labeling = labeling_for(cfg.model)    # Unconditional(), or ClassConditional(num_classes)
    labeling.real_batch(stream)       # (images, their labels or None)
    labeling.fake_labels(n)           # the labels asked of G in a training step (Paddle's RNG), or None
    labeling.grid_noise(z), labeling.grid_labels(n), labeling.row_length(n), labeling.grid_images(n)   # a sample grid
    labeling.balanced(n)              # an evaluation: each class equally often, or None

Conditional sample grids have one row per class and the same z down each column, so that only the
class changes between rows.
"""
from __future__ import annotations

import numpy as np
import paddle


class Unconditional:
    num_classes = 0

    def real_batch(self, stream):
        return stream.next(), None

    def stream_labels(self, dataset):
        """The labels the batch stream must serve alongside the images (None: images only)."""
        return None

    def fake_labels(self, n: int):
        return None

    def grid_noise(self, z: np.ndarray) -> np.ndarray:
        return z

    def grid_labels(self, n: int):
        return None

    def row_length(self, n: int):
        """Images per row of a grid of n (None: as square as it gets)."""
        return None

    def grid_images(self, n: int) -> int:
        """How many images a grid asked for n holds (len(grid_noise(z)) for n vectors z)."""
        return n

    def balanced(self, n: int):
        return None

    def strip_labels(self, i: int, n: int):
        """The labels of interpolation strip i (n images): one class per strip."""
        return None

    def state(self, dataset) -> dict:
        """What a checkpoint's state.json records about the labels: the class names."""
        return {}


class ClassConditional(Unconditional):
    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def real_batch(self, stream):
        return stream.next_labelled()

    def stream_labels(self, dataset):
        return dataset.labels

    def fake_labels(self, n: int):
        return paddle.randint(0, self.num_classes, [n])

    def grid_noise(self, z: np.ndarray) -> np.ndarray:
        """One row per class of ceil(len(z) / num_classes) images, the same z down each column: the
        first vectors of z, tiled. Idempotent: a run's fixed noise is saved tiled, and tiles to itself."""
        per_row = -(-len(z) // self.num_classes)
        return np.tile(z[:per_row], (self.num_classes, 1))

    def grid_labels(self, n: int) -> np.ndarray:
        """Row r (n / num_classes images) is class r."""
        return np.repeat(np.arange(self.num_classes, dtype=np.int64), n // self.num_classes)

    def row_length(self, n: int) -> int:
        return n // self.num_classes

    def grid_images(self, n: int) -> int:
        return self.num_classes * -(-n // self.num_classes)

    def balanced(self, n: int) -> np.ndarray:
        """0, 1, ..., C-1, 0, 1, ...: what evaluation asks of G."""
        return np.arange(n, dtype=np.int64) % self.num_classes

    def strip_labels(self, i: int, n: int) -> np.ndarray:
        return np.full(n, i % self.num_classes, np.int64)

    def state(self, dataset) -> dict:
        return {"classes": list(dataset.classes)}


class OneClass(ClassConditional):
    """Every image of one class (tools/generate.py --class): grids are square, strips keep the class."""

    def __init__(self, num_classes: int, cls: int):
        super().__init__(num_classes)
        self.cls = cls

    def grid_noise(self, z):
        return z

    def grid_labels(self, n: int):
        return np.full(n, self.cls, np.int64)

    def row_length(self, n: int):
        return None

    def grid_images(self, n: int) -> int:
        return n

    def balanced(self, n: int):
        return np.full(n, self.cls, np.int64)

    def strip_labels(self, i: int, n: int):
        return np.full(n, self.cls, np.int64)


def labeling_for(m, cls: int | None = None) -> Unconditional:
    """The labeling of a model section (model.num_classes); cls: one class only."""
    if not m.num_classes:
        return Unconditional()
    return ClassConditional(m.num_classes) if cls is None else OneClass(m.num_classes, cls)
