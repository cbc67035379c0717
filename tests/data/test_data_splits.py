"""The split, limit, conversion and binarisation rules shared by every dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_search.config import DataConfig
from vae_search.data import DataSplits, load_data
from vae_search.data.splits import derive_seed, make_splits, split_indices
from vae_search.errors import ConfigError, DataError


def _ids(n: int) -> torch.Tensor:
    """Row i holds i / n in both columns, so a row tells which example it is."""
    return (torch.arange(n, dtype=torch.float32) / n).view(-1, 1).repeat(1, 2)


def test_split_sizes_follow_val_fraction() -> None:
    train, val = split_indices(1000, 0.1, split_seed=0)
    # n_val = max(1, round(0.1 * 1000))
    assert (len(train), len(val)) == (900, 100)
    train, val = split_indices(5, 0.01, split_seed=0)
    # at least one validation example
    assert (len(train), len(val)) == (4, 1)
    train, val = split_indices(2, 0.9, split_seed=0)
    # at least one training example
    assert (len(train), len(val)) == (1, 1)


def test_split_is_a_disjoint_cover_and_seeded() -> None:
    train, val = split_indices(500, 0.2, split_seed=7)
    # train and val partition range(500)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(500))
    # the permutation is torch's, seeded with split_seed
    perm = torch.randperm(500, generator=torch.Generator().manual_seed(7))
    assert torch.equal(val, perm[:100]) and torch.equal(train, perm[100:])
    # same seed, same split; another seed, another split
    again = split_indices(500, 0.2, split_seed=7)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)
    other = split_indices(500, 0.2, split_seed=8)
    assert not torch.equal(other[1], val)


def test_limit_caps_train_and_shrinks_val_in_proportion() -> None:
    full_train, full_val = split_indices(1000, 0.2, split_seed=3)
    train, val = split_indices(1000, 0.2, split_seed=3, limit=40)
    # limit training examples; val keeps the 80/20 ratio: round(40 * 0.2 / 0.8) = 10
    assert (len(train), len(val)) == (40, 10)
    # the limited split is a prefix of the full one, so it stays disjoint and seeded
    assert torch.equal(train, full_train[:40]) and torch.equal(val, full_val[:10])
    # a limit above the training size changes nothing
    train, val = split_indices(1000, 0.2, split_seed=3, limit=5000)
    assert torch.equal(train, full_train) and torch.equal(val, full_val)


def test_make_splits_takes_rows_by_the_split_indices() -> None:
    x = _ids(200)
    cfg = DataConfig(name="array", path="x.npy", val_fraction=0.25, split_seed=5)
    out = make_splits(cfg, x)
    train_idx, val_idx = split_indices(200, 0.25, 5)
    # each row is the source row the permutation says, so no train row is a val row
    assert torch.equal(out.train, x[train_idx]) and torch.equal(out.val, x[val_idx])
    assert set((out.train[:, 0] * 200).round().long().tolist()).isdisjoint(
        (out.val[:, 0] * 200).round().long().tolist()
    )
    assert out.test is None and out.shape == (2,) and not out.is_image
    assert out.train.dtype == torch.float32 and out.binary_ok


def test_limit_through_load_data(tmp_path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((300, 4)).astype(np.float32))
    out = load_data(DataConfig(name="array", path=str(path), val_fraction=0.1, limit=50))
    # round(50 * 0.1 / 0.9) = 6 validation examples
    assert (len(out.train), len(out.val)) == (50, 6)


def test_uint8_is_divided_by_255_exactly() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(64, 4)
    out = make_splits(DataConfig(name="array", path="x"), x)
    train_idx, _ = split_indices(64, 0.1, 0)
    assert torch.equal(out.train, x[train_idx].to(torch.float32) / 255)
    assert out.train.max() <= 1.0 and out.binary_ok


def test_binary_ok_is_false_outside_unit_interval() -> None:
    x = torch.linspace(-1.0, 2.0, 40).view(20, 2)
    out = make_splits(DataConfig(name="array", path="x"), x)
    assert not out.binary_ok


def _grey(n: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns of constant probability 0, 0.1, 0.5, 0.9 and 1."""
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    return p.repeat(n, 1), p.repeat(n // 4, 1)


def test_static_binarisation_samples_bernoulli_everywhere() -> None:
    x, test = _grey()
    cfg = DataConfig(name="array", path="x", binarize="static", split_seed=1)
    out = make_splits(cfg, x, test)
    for part in (out.train, out.val, out.test):
        # only 0 and 1 remain
        assert set(part.unique().tolist()) <= {0.0, 1.0}
    # each column's mean is its probability (binomial std <= 0.008 for 3600 rows)
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    assert torch.allclose(out.train.mean(0), p, atol=0.04)
    assert torch.allclose(out.test.mean(0), p, atol=0.06)
    # p = 0 and p = 1 are never flipped
    assert out.train[:, 0].sum() == 0 and out.train[:, 4].min() == 1
    # deterministic for a seed, different for another seed
    again = make_splits(cfg, x, test)
    assert torch.equal(again.train, out.train) and torch.equal(again.test, out.test)
    other = make_splits(
        DataConfig(name="array", path="x", binarize="static", split_seed=2), x, test
    )
    assert not torch.equal(other.train, out.train)
    assert out.binary_ok


def test_dynamic_binarisation_keeps_train_grey() -> None:
    x, test = _grey()
    dyn = make_splits(DataConfig(name="array", path="x", binarize="dynamic", split_seed=1), x, test)
    static = make_splits(
        DataConfig(name="array", path="x", binarize="static", split_seed=1), x, test
    )
    none = make_splits(DataConfig(name="array", path="x", binarize="none", split_seed=1), x, test)
    # train is untouched grey-level data
    assert torch.equal(dyn.train, none.train)
    assert (dyn.train == 0.5).any()
    # val and test are binarised once, the same way as with static
    assert torch.equal(dyn.val, static.val) and torch.equal(dyn.test, static.test)
    assert set(dyn.val.unique().tolist()) <= {0.0, 1.0}
    assert dyn.binary_ok


def test_binarising_out_of_range_data_is_an_error() -> None:
    x = torch.linspace(0.0, 3.0, 40).view(20, 2)
    with pytest.raises(DataError) as err:
        make_splits(DataConfig(name="array", path="x", binarize="static"), x)
    # the message names the dataset, the rule, the values and the fix
    msg = str(err.value)
    assert msg.startswith("array:") and "[0, 1]" in msg and "3" in msg and "binarize: none" in msg


def test_too_few_examples_is_an_error() -> None:
    with pytest.raises(DataError, match="at least 2"):
        make_splits(DataConfig(name="array", path="x"), torch.zeros(1, 3))


def test_load_data_checks_the_config() -> None:
    with pytest.raises(ConfigError, match="data.val_fraction"):
        load_data(DataConfig(val_fraction=1.5))
    with pytest.raises(DataError, match="unknown dataset"):
        load_data(DataConfig(name="svhn"))  # type: ignore[arg-type]


def test_derive_seed_depends_on_seed_and_tag() -> None:
    seeds = {derive_seed(s, t) for s in (0, 1, -1) for t in ("a", "b")}
    assert len(seeds) == 6
    assert derive_seed(0, "a") == derive_seed(0, "a")
    assert all(0 <= s < 2**63 for s in seeds)


def test_repr_omits_tensors() -> None:
    out = make_splits(DataConfig(name="array", path="x"), _ids(20))
    assert isinstance(out, DataSplits) and "tensor" not in repr(out)
