"""The loaded dataset (:class:`DataSplits`) and how a source becomes one.

Every loader hands :func:`make_splits` the full training array (uint8 or float, on CPU) and an
optional test array; this module holds out the validation set, applies ``limit``, converts to
float32 and binarises, so all datasets follow the same rules:

* **Validation split.** A permutation of the N training examples from
  ``torch.Generator().manual_seed(split_seed)``; its first ``n_val = max(1, round(val_fraction
  * N))`` indices are the validation set, the rest the training set (see
  :func:`split_indices`). The split depends only on N, ``val_fraction`` and ``split_seed``.
* **Limit.** ``limit`` keeps the first ``limit`` training indices of that split and the first
  ``max(1, round(limit * val_fraction / (1 - val_fraction)))`` validation indices (never more
  than the uncapped validation set), so a small experiment keeps the train/val ratio and
  stays small. The test split is never capped, so test numbers stay comparable.
* **Conversion.** uint8 becomes float32 / 255, bool becomes 0/1, anything else float32.
* **Binarisation.** Each pixel becomes 1 with probability equal to its value, using one
  generator per split seeded from ``(split_seed, split name)`` (see :func:`derive_seed`), so a
  split's binarisation does not depend on the size of the others. ``static`` binarises train,
  val and test; ``dynamic`` binarises val and test and leaves train grey-level for the trainer
  to re-sample each batch; ``none`` changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from vae_search.config import DataConfig
from vae_search.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class DataSplits:
    """A dataset split into train / validation / test, ready for training.

    Attributes:
        name: dataset name (``cfg.name``).
        train: float32 training examples, shape ``(N_train, *shape)``, on CPU.
        val: float32 validation examples, shape ``(N_val, *shape)``.
        test: float32 test examples, or None when the source has no test split.
        shape: event shape: ``(C, H, W)`` for images, ``(D,)`` for flat vectors.
        binary_ok: True when every value lies in [0, 1], so a Bernoulli likelihood is valid.
        factor_names: names of the ground-truth factors (``shapes`` only).
        train_factors: float32 factors ``(N_train, n_factors)``, row-aligned with ``train``.
        val_factors: float32 factors ``(N_val, n_factors)``, row-aligned with ``val``.
        vocab_size: token data only: ids lie in [0, vocab_size); ``train`` / ``val`` / ``test``
            are then int64 ``(N, T)``, each row <bos> first and padded with ``pad_id``.
        pad_id, bos_id, eos_id, unk_id: the special ids of token data (eos / unk: None when
            the data have none).
        vocab: the token strings by id (``text``, ``sentences``), None for ``tokens``.
    """

    name: str
    train: torch.Tensor = field(repr=False)
    val: torch.Tensor = field(repr=False)
    test: torch.Tensor | None = field(repr=False)
    shape: tuple[int, ...]
    binary_ok: bool
    factor_names: tuple[str, ...] = ()
    train_factors: torch.Tensor | None = field(default=None, repr=False)
    val_factors: torch.Tensor | None = field(default=None, repr=False)
    vocab_size: int | None = None
    pad_id: int = 0
    bos_id: int = 0
    eos_id: int | None = None
    unk_id: int | None = None
    vocab: list[str] | None = field(default=None, repr=False)

    @property
    def is_tokens(self) -> bool:
        """True for token data (int64 ids, a sequence model)."""
        return self.vocab_size is not None

    def test_split(self, max_examples: int | None = None) -> torch.Tensor | None:
        """The test split for a final evaluation, its first ``max_examples`` examples when
        given (None: all; ``eval.test_max_examples``); None when the source has no test split.

        Every read of the test split for evaluation goes through here (the trainer's
        ``eval.test``, which only ``vae-search finalize`` sets in a study), and is logged, so
        that "only finalize touches the test split", and how much of it, can be checked
        through this one door.
        """
        if self.test is None:
            return None
        test = self.test if max_examples is None else self.test[:max_examples]
        logger.info("%s: evaluating on the test split (%d of %d examples)", self.name, len(test), len(self.test))
        return test

    @property
    def is_image(self) -> bool:
        """True for image data, whose event shape is ``(C, H, W)``."""
        return len(self.shape) == 3


def derive_seed(seed: int, tag: str) -> int:
    """A 63-bit seed derived from ``seed`` and a tag, independent across tags.

    Args:
        seed: the base seed (``split_seed``).
        tag: what the seed is for (``"binarize-val"``, ``"shapes-test"``, ...).

    Returns:
        A non-negative int usable with ``torch.Generator().manual_seed``.
    """
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, *tag.encode()]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def split_indices(
    n: int, val_fraction: float, split_seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the training and validation examples among ``n``.

    Args:
        n: number of examples in the source's training set (at least 2).
        val_fraction: share held out for validation, in (0, 1).
        split_seed: seed of the permutation.
        limit: cap on the training examples (the validation set shrinks in proportion).

    Returns:
        ``(train_idx, val_idx)``: disjoint int64 tensors, in permutation order.

    Raises:
        DataError: when there are fewer than 2 examples.
    """
    if n < 2:
        raise DataError(
            f"the training set has {n} example(s) but at least 2 are needed to hold out a "
            "validation set; provide more data"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    n_val = min(n - 1, max(1, round(val_fraction * n)))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if limit is not None:
        val_cap = max(1, round(limit * val_fraction / (1.0 - val_fraction)))
        train_idx, val_idx = train_idx[:limit], val_idx[:val_cap]
    return train_idx, val_idx


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Convert to float32: uint8 is divided by 255, bool becomes 0/1, floats are cast."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def value_range(*tensors: torch.Tensor | None) -> tuple[float, float]:
    """Smallest and largest value over the non-empty tensors given."""
    lo, hi = float("inf"), float("-inf")
    for t in tensors:
        if t is not None and t.numel():
            tmin, tmax = torch.aminmax(t)
            lo, hi = min(lo, float(tmin)), max(hi, float(tmax))
    return lo, hi


def binarize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Sample binary pixels: each becomes 1.0 with probability equal to its value in [0, 1].

    Args:
        x: float tensor with values in [0, 1].
        seed: seed of the generator used for this tensor.

    Returns:
        A new float32 tensor of 0.0 and 1.0 with the shape of ``x``.
    """
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    return u.lt_(x)  # u < p happens with probability p; in place to spare a copy


def make_splits(
    cfg: DataConfig,
    train: torch.Tensor,
    test: torch.Tensor | None = None,
    *,
    factors: torch.Tensor | None = None,
    factor_names: tuple[str, ...] = (),
) -> DataSplits:
    """Split, convert and binarise a loaded source into :class:`DataSplits`.

    Args:
        cfg: the data config (``name``, ``val_fraction``, ``split_seed``, ``limit``,
            ``binarize``).
        train: the source's whole training set, ``(N, *shape)``; uint8 (0-255) or numeric.
        test: the source's test set with the same event shape, or None.
        factors: ground-truth factors ``(N, n_factors)`` aligned with ``train``, or None.
        factor_names: the factors' names.

    Returns:
        The dataset ready for training.

    Raises:
        DataError: too few examples, or ``binarize`` asked for on data outside [0, 1].
    """
    name = cfg.name
    try:
        train_idx, val_idx = split_indices(len(train), cfg.val_fraction, cfg.split_seed, cfg.limit)
    except DataError as e:
        raise DataError(f"{name}: {e}") from None
    tr, va = to_float(train[train_idx]), to_float(train[val_idx])
    te = to_float(test) if test is not None else None

    lo, hi = value_range(tr, va, te)
    in_unit = lo >= 0.0 and hi <= 1.0
    if cfg.binarize != "none":
        if not in_unit:
            raise DataError(
                f"{name}: binarize: {cfg.binarize} needs data in [0, 1], but the values span "
                f"[{lo:.4g}, {hi:.4g}]; rescale the data to [0, 1] or set data.binarize: none"
            )
        if cfg.binarize == "static":
            tr = binarize(tr, derive_seed(cfg.split_seed, "binarize-train"))
        va = binarize(va, derive_seed(cfg.split_seed, "binarize-val"))
        if te is not None:
            te = binarize(te, derive_seed(cfg.split_seed, "binarize-test"))

    tf = vf = None
    if factors is not None:
        factors = factors.to(torch.float32)
        tf, vf = factors[train_idx], factors[val_idx]

    out = DataSplits(
        name=name,
        train=tr,
        val=va,
        test=te,
        shape=tuple(int(s) for s in tr.shape[1:]),
        binary_ok=in_unit,
        factor_names=tuple(factor_names),
        train_factors=tf,
        val_factors=vf,
    )
    logger.info(
        "%s: %d train, %d val, %s test examples of shape %s (binarize: %s)",
        name,
        len(tr),
        len(va),
        len(te) if te is not None else "no",
        out.shape,
        cfg.binarize,
    )
    return out
