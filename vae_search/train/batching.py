"""Batches drawn by index from one tensor that already lives on the training device.

No DataLoader, no per-item Python: an epoch is one ``randperm`` and a gather per batch. The last
partial batch is dropped (when there is at least one full batch) so every step has the same
shape, which keeps ``torch.compile`` from recompiling; the permutation changes every epoch, so
every example is seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorBatcher:
    """Iterate shuffled mini-batches of ``data``.

    Args:
        data: (N, ...) tensor on the training device.
        batch_size: examples per batch.
        generator: a generator on ``data.device``; its state is the batcher's whole state.
        binarize: re-sample binary pixels x ~ Bernoulli(data) for every batch (dynamic
            binarisation, standard for MNIST likelihood figures).
    """

    def __init__(self, data: torch.Tensor, batch_size: int, generator: torch.Generator, binarize: bool = False):
        self.data = data
        self.batch_size = min(batch_size, data.shape[0])
        self.generator = generator
        self.binarize = binarize

    def __len__(self) -> int:
        return self.data.shape[0] // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        n, b = self.data.shape[0], self.batch_size
        perm = torch.randperm(n, generator=self.generator, device=self.data.device)
        for i in range(len(self)):
            x = self.data.index_select(0, perm[i * b : (i + 1) * b])  # ~3x faster than x[idx] on CPU
            if self.binarize:
                x = torch.bernoulli(x, generator=self.generator)
            yield x
