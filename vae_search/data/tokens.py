"""Token data: ``tokens`` (an int array of ids) and ``text`` (UTF-8 lines), as int64 (N, T).

Every row starts with <bos> and is padded with the pad id after its last token; the model is
scored on every token after <bos> that is not padding (<eos> counts, <bos> does not).

``tokens`` reads ``cfg.path``: a ``.npy`` int array (N, T) or a ``.npz`` with ``train`` (and
optionally ``test``). Ids lie in [0, V) with V = ``vocab_size`` (null: the largest id + 1) and
``pad_id`` marks padding; a <bos> id V is added in front of every row (so the vocabulary has
V + 1 ids). An <eos>, if the data have one, is one of the user's ids like any other.

``text`` reads ``cfg.path``, one sequence per non-blank line, tokenised by ``tokenizer``
(``word``: whitespace-separated; ``char``: every character, spaces included). The split rule
is the one of every dataset (:func:`vae_search.data.splits.split_indices`), on lines. The
vocabulary is built from the training lines only: <pad> 0, <unk> 1, <bos> 2, <eos> 3, then the
tokens seen at least ``min_count`` times, most frequent first (ties alphabetical), at most
``max_vocab`` of them; validation and test tokens outside it become <unk>. A given ``vocab``
(what export writes) is used as it is instead. Lines longer than ``max_len`` tokens (<bos> and
<eos> included) are cut, their <eos> kept.
"""

from __future__ import annotations

import logging
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vae_search.config import DataConfig
from vae_search.data.splits import DataSplits, split_indices
from vae_search.errors import DataError

logger = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


def tokenize(line: str, tokenizer: str) -> list[str]:
    return list(line) if tokenizer == "char" else line.split()


def build_vocab(sequences: Sequence[Sequence[str]], min_count: int = 1, max_vocab: int | None = None) -> list[str]:
    """The vocabulary of ``sequences`` (training split only): specials, then by frequency."""
    counts = Counter(t for seq in sequences for t in seq)
    kept = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                  key=lambda t: (-counts[t], t))
    return [*SPECIALS, *kept[:max_vocab]]


def encode(sequences: Sequence[Sequence[str]], vocab: Sequence[str], max_len: int) -> torch.Tensor:
    """int64 (N, T): <bos> tokens <eos>, cut to ``max_len``, padded to the longest row."""
    index = {t: i for i, t in enumerate(vocab)}
    pad, unk, bos, eos = (index[s] for s in SPECIALS)
    rows = [[bos, *(index.get(t, unk) for t in seq[: max_len - 2]), eos] for seq in sequences]
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def decode(ids: Sequence[int], vocab: Sequence[str], tokenizer: str = "word") -> str:
    """Text of one row of ids: up to <eos>, without <bos> and <pad>."""
    words = []
    for i in ids:
        t = vocab[int(i)] if 0 <= int(i) < len(vocab) else UNK
        if t == EOS:
            break
        if t not in (PAD, BOS):
            words.append(t)
    return ("" if tokenizer == "char" else " ").join(words)


def line_splits(
    cfg: DataConfig, lines: list[str], test_lines: list[str] | None = None, *,
    factors: torch.Tensor | None = None, factor_names: tuple[str, ...] = (),
) -> DataSplits:
    """Split lines, build the vocabulary from the training ones and encode every split."""
    try:
        train_idx, val_idx = split_indices(len(lines), cfg.val_fraction, cfg.split_seed, cfg.limit)
    except DataError as e:
        raise DataError(f"{cfg.name}: {e}") from None
    seqs = [tokenize(line, cfg.tokenizer) for line in lines]
    train_seqs = [seqs[i] for i in train_idx.tolist()]
    if cfg.vocab is not None:
        if list(cfg.vocab[:4]) != list(SPECIALS):
            raise DataError(f"data.vocab: must start with {', '.join(SPECIALS)}, got {cfg.vocab[:4]}; "
                            "leave it null to build it from the training split")
        vocab = list(cfg.vocab)
    else:
        vocab = build_vocab(train_seqs, cfg.min_count, cfg.max_vocab)
    every = encode(seqs, vocab, cfg.max_len)
    train, val = every[train_idx], every[val_idx]
    width = int((every != 0).sum(-1).max())  # the longest row over the splits
    test = None
    if test_lines:
        test = encode([tokenize(line, cfg.tokenizer) for line in test_lines], vocab, cfg.max_len)
        width = max(width, test.shape[1])
        test = _pad_to(test, width)
    train, val = _pad_to(train, width), _pad_to(val, width)
    tf = vf = None
    if factors is not None:
        tf, vf = factors[train_idx].float(), factors[val_idx].float()
    out = DataSplits(
        name=cfg.name, train=train, val=val, test=test, shape=(width,), binary_ok=False,
        factor_names=factor_names, train_factors=tf, val_factors=vf,
        vocab_size=len(vocab), pad_id=0, bos_id=2, eos_id=3, unk_id=1, vocab=vocab,
    )
    unk_share = float((val == 1).sum()) / max(1, int((val[:, 1:] != 0).sum()))
    logger.info("%s: %d train, %d val sequences of at most %d tokens; vocabulary %d (training split), "
                "%.1f%% of validation tokens <unk>", cfg.name, len(train), len(val), width, len(vocab),
                100 * unk_share)
    return out


def _pad_to(x: torch.Tensor, width: int) -> torch.Tensor:
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=0)


def load_text(cfg: DataConfig) -> DataSplits:
    """Load ``cfg.path``, a UTF-8 text file with one sequence per line (module docstring)."""
    path = Path(cfg.path or "")
    if not path.is_file():
        raise DataError(f"text: {path}: no such file; set data.path to a UTF-8 text file, one sequence a line")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"text: {path} is not UTF-8 (byte {e.start} is {raw[e.start]:#04x}); re-save it as "
                        "UTF-8 (iconv -f LATIN1 -t UTF-8, or your editor's encoding menu)") from e
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"text: {path} has no non-blank line; put one sequence on each line")
    return line_splits(cfg, lines)


def _check_ids(a: np.ndarray, where: str, cfg: DataConfig, vocab_size: int | None) -> int:
    if a.dtype.kind not in "iu":
        raise DataError(f"{where}: token ids must be integers, got dtype {a.dtype}; save an int array")
    if a.ndim != 2:
        raise DataError(f"{where}: token ids must be (N, T), got shape {a.shape}; pad the sequences to one length")
    if a.size == 0:
        raise DataError(f"{where}: array of shape {a.shape} is empty; save at least 2 sequences")
    lo, hi = int(a.min()), int(a.max())
    v = vocab_size if vocab_size is not None else max(hi, cfg.pad_id) + 1
    if lo < 0 or hi >= v:
        bad = int(((a < 0) | (a >= v)).sum())
        raise DataError(f"{where}: {bad} token ids outside [0, {v}) (data.vocab_size), smallest {lo}, largest "
                        f"{hi}; fix the ids or raise data.vocab_size")
    return v


def load_tokens(cfg: DataConfig) -> DataSplits:
    """Load ``cfg.path``, an int array (N, T) of ids padded with ``pad_id`` (module docstring)."""
    path = Path(cfg.path or "")
    if not path.is_file():
        raise DataError(f"tokens: {path}: no such file; set data.path to a .npy or .npz int array (N, T)")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "train" not in z and len(z.keys()) != 1:
                    raise DataError(f"tokens: {path} has arrays {list(z.keys())} but no key 'train'; save "
                                    "np.savez(path, train=..., test=...)")
                train = z["train"] if "train" in z else z[list(z.keys())[0]]
                test = z["test"] if "test" in z else None
        elif path.suffix.lower() == ".npy":
            train, test = np.load(path, allow_pickle=False), None
        else:
            raise DataError(f"tokens: {path}: unsupported extension {path.suffix or '(none)'!r}; save with "
                            "np.save (.npy) or np.savez (.npz)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"tokens: {path} cannot be read ({e}); save it with np.save / np.savez") from e
    v = _check_ids(train, f"tokens: {path}", cfg, cfg.vocab_size)
    if test is not None:
        v = max(v, _check_ids(test, f"tokens: {path} (key 'test')", cfg, cfg.vocab_size or v))
    if cfg.pad_id >= v or cfg.pad_id < 0:
        raise DataError(f"tokens: data.pad_id {cfg.pad_id} is outside [0, {v}); set it to the padding id")
    bos = v  # one id more than the data use

    def rows(a: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
        return torch.cat([torch.full((len(x), 1), bos, dtype=torch.int64), x], dim=1)

    every = rows(train)
    try:
        train_idx, val_idx = split_indices(len(every), cfg.val_fraction, cfg.split_seed, cfg.limit)
    except DataError as e:
        raise DataError(f"tokens: {e}") from None
    te = rows(test) if test is not None else None
    if te is not None and te.shape[1] != every.shape[1]:
        width = max(te.shape[1], every.shape[1])
        te, every = (torch.nn.functional.pad(t, (0, width - t.shape[1]), value=cfg.pad_id) for t in (te, every))
    out = DataSplits(name=cfg.name, train=every[train_idx], val=every[val_idx], test=te,
                     shape=(every.shape[1],), binary_ok=False, vocab_size=v + 1, pad_id=cfg.pad_id,
                     bos_id=bos, eos_id=None, unk_id=None)
    logger.info("tokens: %d train, %d val sequences of %d ids (vocabulary %d + <bos>)",
                len(out.train), len(out.val), every.shape[1] - 1, v)
    return out
