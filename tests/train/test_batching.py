"""The tensor batcher: every example once an epoch, and dynamic binarisation per batch."""

from __future__ import annotations

import torch

from vae_search.train.batching import TensorBatcher


def test_an_epoch_sees_every_example_once_in_a_new_order():
    data = torch.arange(100.0).unsqueeze(1)
    batcher = TensorBatcher(data, 10, torch.Generator().manual_seed(0))
    epochs = [torch.cat(list(batcher)).squeeze(1) for _ in range(2)]
    for seen in epochs:
        assert sorted(seen.tolist()) == list(range(100))
    assert not torch.equal(epochs[0], epochs[1])


def test_dynamic_binarisation_draws_fresh_pixels_every_batch_with_the_grey_level_as_mean():
    grey = torch.linspace(0.05, 0.95, 16).expand(64, 16).contiguous()  # 64 examples, 16 pixels
    batcher = TensorBatcher(grey, 64, torch.Generator().manual_seed(1), binarize=True)
    draws = torch.stack([next(iter(batcher)) for _ in range(400)])  # 400 epochs of one batch
    # every pixel is 0 or 1, the data are left grey, and two epochs differ
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert grey.min() > 0.0 and not torch.equal(draws[0], draws[1])
    # x ~ Bernoulli(grey): each pixel's mean over 400 x 64 draws is its grey level
    # (standard error at most 0.5 / sqrt(25600) = 0.003)
    torch.testing.assert_close(draws.mean((0, 1)), grey[0], atol=0.015, rtol=0.0)
