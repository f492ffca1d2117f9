"""The resumable batch stream: shuffled batches whose order is a pure function of (seed, epoch)."""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .arrays import to_float


class BatchStream:
    """Endless shuffled batches (last partial batch of an epoch dropped).

    The order of epoch e is permutation(N) from a generator seeded with (seed, e); the position is
    (epoch, offset), so a stream rebuilt from a saved position yields exactly the batches the
    original stream would have yielded next.

    With `world` > 1 processes, each step takes the next global batch of world * batch_size indices
    and process `rank` gets its own disjoint part of it. The position counts global images, so a
    checkpoint saved by any number of processes continues the same order with any other number.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, epoch: int = 0, offset: int = 0,
                 rank: int = 0, world: int = 1, labels: np.ndarray | None = None):
        self.global_batch = batch_size * world
        if len(images) < self.global_batch:
            need = f"train.batch_size={batch_size}" + (f" x {world} processes" if world > 1 else "")
            raise DataError(f"dataset has {len(images)} images, fewer than {need}: -o train.batch_size="
                            f"{max(1, len(images) // world)} (or fewer) trains on it")
        self.images, self.labels, self.batch_size, self.seed, self.rank = images, labels, batch_size, seed, rank
        self.epoch, self.offset = epoch, offset
        self._perm_epoch, self._perm = None, None

    def _order(self) -> np.ndarray:
        if self._perm_epoch != self.epoch:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
            self._perm_epoch = self.epoch
        return self._perm

    def _next_indices(self) -> np.ndarray:
        if self.epoch_done:
            self.epoch, self.offset = self.epoch + 1, 0
        start = self.offset + self.rank * self.batch_size
        idx = np.sort(self._order()[start:start + self.batch_size])  # sorted: faster gather
        self.offset += self.global_batch
        return idx

    def next(self) -> np.ndarray:
        """The next batch of images, float32 in [-1, 1]."""
        return to_float(self.images[self._next_indices()])

    def next_labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch of images and their int64 labels (the stream was given labels)."""
        idx = self._next_indices()
        return to_float(self.images[idx]), np.asarray(self.labels[idx], np.int64)

    @property
    def epoch_done(self) -> bool:
        """True when the next batch starts a new epoch."""
        return self.offset + self.global_batch > len(self.images)

    def state_dict(self) -> dict:
        """The position: what a checkpoint keeps to continue the same order."""
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = state["epoch"], state["offset"]
