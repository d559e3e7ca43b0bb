"""The training data order: a pure function of (seed, sample position), so a resumed run continues the stream."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class TrainSampler(Sampler[tuple[int, int]]):
    """``(index, seed)`` keys of one rank for iterations ``[start_iter, stop_iter)``.

    The sample stream is an endless sequence of epochs; epoch ``e`` is the permutation and the per-sample
    transform seeds drawn from ``np.random.default_rng([seed, e])``. Iteration ``i`` consumes ``accum_steps``
    micro-batches per rank; micro-batch ``m`` of rank ``r`` takes stream positions
    ``((i * accum_steps + m) * world + r) * batch_size + [0, batch_size)``. The keys therefore depend only on
    (seed, position): resuming at any iteration continues the same stream.
    """

    def __init__(self, length: int, seed: int, batch_size: int, start_iter: int, stop_iter: int, *,
                 accum_steps: int = 1, rank: int = 0, world: int = 1):
        if length <= 0:
            raise ValueError("TrainSampler needs a non-empty dataset")
        self.length, self.seed, self.batch_size = length, seed, batch_size
        self.start_iter, self.stop_iter, self.accum_steps, self.rank, self.world = (
            start_iter, stop_iter, accum_steps, rank, world)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def epoch(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        """(permutation, seeds) of epoch ``e``."""
        if self._epoch is None or self._epoch[0] != e:
            rng = np.random.default_rng([self.seed, e])
            self._epoch = (e, rng.permutation(self.length), rng.integers(0, 2**31 - 1, self.length))
        return self._epoch[1], self._epoch[2]

    def key(self, position: int) -> tuple[int, int]:
        perm, seeds = self.epoch(position // self.length)
        j = position % self.length
        return int(perm[j]), int(seeds[j])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        b = self.batch_size
        for i in range(self.start_iter, self.stop_iter):
            for m in range(self.accum_steps):
                first = ((i * self.accum_steps + m) * self.world + self.rank) * b
                for p in range(first, first + b):
                    yield self.key(p)

    def __len__(self) -> int:
        return (self.stop_iter - self.start_iter) * self.accum_steps * self.batch_size
