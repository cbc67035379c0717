"""Token data (``tokens``, ``text``, ``sentences``): the vocabulary comes from the training split
only, every row is <bos> ... <eos> padded, and bad token data are one line with exit code 2."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vae_search.cli import main
from vae_search.config import DataConfig, RunConfig
from vae_search.data import load_data
from vae_search.data.sentences import TOPICS, generate
from vae_search.data.splits import split_indices
from vae_search.data.tokens import SPECIALS, decode
from vae_search.errors import ConfigError


def test_the_vocabulary_comes_from_the_training_split_only(tmp_path):
    lines = [f"w{i % 7} common u{i}" for i in range(40)]  # u<i>: one line each
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n\n")
    d = load_data(DataConfig(name="text", path=str(path), val_fraction=0.25, split_seed=3))
    train_idx, val_idx = split_indices(40, 0.25, 3)
    # brute force: the tokens of the training lines, by frequency then alphabetically
    counts = Counter(t for i in train_idx.tolist() for t in lines[i].split())
    expected = [*SPECIALS, *sorted(counts, key=lambda t: (-counts[t], t))]
    assert d.vocab == expected
    # a word seen only in validation lines is <unk> there; training lines decode back exactly
    for row, i in zip(d.val, val_idx.tolist()):
        assert decode(row.tolist(), d.vocab) == lines[i].replace(f"u{i}", "<unk>")
    for row, i in zip(d.train, train_idx.tolist()):
        assert decode(row.tolist(), d.vocab) == lines[i]
    # rows are <bos> tokens <eos>, padded: 3 words + 2 specials each
    assert d.shape == (5,) and (d.train[:, 0] == 2).all() and (d.train[:, 4] == 3).all()


def test_min_count_max_vocab_and_max_len(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a a a b b c\n" * 10)
    d = load_data(DataConfig(name="text", path=str(path), min_count=15, max_len=4))
    # 9 training lines: a (27) and b (18) kept, c (9) is <unk>; rows cut to 4 tokens, <eos> kept
    assert d.vocab[4:] == ["a", "b"] and d.shape == (4,)
    assert decode(d.train[0].tolist(), d.vocab) == "a a"
    d = load_data(DataConfig(name="text", path=str(path), max_vocab=1, tokenizer="char"))
    # the most frequent character is the space (5 a line, 'a' 3)
    assert d.vocab[4:] == [" "]


def test_a_given_vocabulary_is_used_as_it_is(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("x y\nx z\n" * 5)
    vocab = [*SPECIALS, "z", "x"]
    d = load_data(DataConfig(name="text", path=str(path), vocab=vocab))
    assert d.vocab == vocab and decode(d.train[0].tolist(), vocab) in ("x <unk>", "x z")


def test_tokens_get_a_bos_id_after_the_users_ids(tmp_path):
    a = np.array([[5, 6, 1, 0], [7, 1, 0, 0], [4, 4, 4, 1]] * 4, dtype=np.int32)
    np.save(tmp_path / "a.npy", a)
    d = load_data(DataConfig(name="tokens", path=str(tmp_path / "a.npy"), pad_id=0, vocab_size=10))
    # ids 0..9 are the user's, 10 is the <bos> put in front of every row
    assert d.vocab_size == 11 and d.bos_id == 10 and d.shape == (5,)
    assert (d.train[:, 0] == 10).all() and {tuple(r[1:].tolist()) for r in d.train} <= {tuple(r) for r in a.tolist()}


def test_sentences_depend_on_their_global_cause():
    lines, factors = generate(200, seed=1)
    names = list(TOPICS)
    for line, (topic, ornate, long) in zip(lines, factors.tolist()):
        nouns, verbs, adjs = TOPICS[names[topic]]
        others = {w for n, (ns, vs, js) in TOPICS.items() if n != names[topic] for w in (*ns, *vs, *js)}
        words = line.split()
        # every content word belongs to the sentence's own topic; joins only in long sentences
        assert not others & set(words)
        assert any(w in ("and", "while", "but") for w in words) == bool(long)
        assert (words[0] in ("this", "that", "every")) == bool(ornate)
    assert generate(50, seed=1)[0] == generate(50, seed=1)[0]  # seeded
    assert generate(5, seed=2)[0] != generate(5, seed=3)[0]


def cli_train(tmp_path, data: dict, **model):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "data": data, "model": {"arch": "lstm", "likelihood": "categorical", "hidden": [8], "embedding": 4, **model},
        "epochs": 1, "device": "cpu",
    }))
    return CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "out")])


def one_line(res, *needles):
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "\n" not in text and "Traceback" not in text, text
    for n in needles:
        assert n in text, text


def test_bad_token_data_is_one_line_with_exit_2(tmp_path):
    np.save(tmp_path / "ids.npy", np.array([[1, 2, 12], [3, 0, 0]], dtype=np.int64))
    one_line(cli_train(tmp_path, {"name": "tokens", "path": str(tmp_path / "ids.npy"), "vocab_size": 10}),
             "1 token ids outside [0, 10)", "largest 12")
    np.save(tmp_path / "neg.npy", np.array([[1, -1], [3, 0]], dtype=np.int64))
    one_line(cli_train(tmp_path, {"name": "tokens", "path": str(tmp_path / "neg.npy")}), "smallest -1")
    np.save(tmp_path / "empty.npy", np.zeros((0, 5), dtype=np.int64))
    one_line(cli_train(tmp_path, {"name": "tokens", "path": str(tmp_path / "empty.npy")}), "is empty")
    (tmp_path / "empty.txt").write_text("\n  \n")
    one_line(cli_train(tmp_path, {"name": "text", "path": str(tmp_path / "empty.txt")}), "no non-blank line")
    (tmp_path / "latin.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    one_line(cli_train(tmp_path, {"name": "text", "path": str(tmp_path / "latin.txt")}),
             "is not UTF-8 (byte 3 is 0xe9)", "re-save it as UTF-8")
    one_line(cli_train(tmp_path, {"name": "sentences", "max_len": 1}), "data.max_len: must be at least 2")
    np.save(tmp_path / "f.npy", np.zeros((4, 5), dtype=np.float32))
    one_line(cli_train(tmp_path, {"name": "tokens", "path": str(tmp_path / "f.npy")}), "must be integers")
    assert not (tmp_path / "out").exists()


def test_token_data_need_a_sequence_model_and_a_categorical_likelihood():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"data": {"name": "sentences"}, "model": {"arch": "mlp"}})
    assert "model.arch: 'mlp' reads images" in str(e.value) and "likelihood: categorical" in str(e.value)
    with pytest.raises(ConfigError, match="lstm needs token data"):
        RunConfig.from_dict({"model": {"arch": "lstm"}})
