"""``sentences``: generated English-like sentences whose words depend on a global latent cause.

Offline and seeded (from ``split_seed``), like ``shapes``. Each sentence draws three
ground-truth factors once, and every word follows from them and a small grammar:

* ``topic`` (4, uniform): which nouns, verbs and adjectives it uses (:data:`TOPICS`);
* ``style`` (2): ``plain`` ("the cat sees a dog") or ``ornate`` (demonstratives, adverbs and
  more adjectives: "this quiet cat gladly sees every dog");
* ``length`` (2): ``short`` (one clause) or ``long`` (two or three clauses joined by
  "and" / "while" / "but").

A clause is ``DET [ADJ] NOUN [ADV] VERB DET [ADJ] NOUN``. So the data are what an LSTM
language model learns well on its own: after the first content word it can tell the topic,
after the determiner the style, and the rest follows. That is the setting of Bowman et al.
(2016) where a z-conditioned LSTM decoder can ignore z (posterior collapse) at a cost of at
most the entropy of the global cause, log 4 + log 2 + log 2 ≈ 2.8 nats per sentence early on,
while a model that puts the cause in z does better. ``size`` sentences are generated for the
training file and ``size // 10`` for the test split; the rest is the rule of ``text`` data
(:mod:`vae_search.data.tokens`; ``tokenizer: char`` gives character-level sentences).
"""

from __future__ import annotations

import torch

from vae_search.config import DataConfig
from vae_search.data.splits import DataSplits, derive_seed
from vae_search.data.tokens import line_splits

FACTOR_NAMES = ("topic", "style", "length")

TOPICS = {
    "animals": (
        ["cat", "dog", "horse", "bird", "fox", "rabbit"],
        ["sees", "chases", "follows", "feeds", "hears"],
        ["small", "quiet", "wild", "brown"],
    ),
    "food": (
        ["cook", "baker", "soup", "bread", "cake", "chef"],
        ["bakes", "tastes", "serves", "cuts", "mixes"],
        ["warm", "sweet", "fresh", "salty"],
    ),
    "space": (
        ["pilot", "rocket", "planet", "star", "moon", "probe"],
        ["orbits", "reaches", "scans", "launches", "circles"],
        ["distant", "bright", "cold", "silent"],
    ),
    "music": (
        ["singer", "drummer", "song", "choir", "band", "piano"],
        ["plays", "sings", "tunes", "records", "hums"],
        ["loud", "gentle", "slow", "happy"],
    ),
}
PLAIN_DET, ORNATE_DET = ["the", "a"], ["this", "that", "every"]
ADVERBS = ["gladly", "often", "rarely", "quickly"]
JOINS = ["and", "while", "but"]


def _pick(words: list[str], g: torch.Generator) -> str:
    return words[int(torch.randint(len(words), (1,), generator=g))]


def _clause(topic: str, ornate: bool, g: torch.Generator) -> list[str]:
    nouns, verbs, adjs = TOPICS[topic]
    dets = ORNATE_DET if ornate else PLAIN_DET
    p_adj = 0.7 if ornate else 0.2

    def phrase() -> list[str]:
        adj = [_pick(adjs, g)] if float(torch.rand((), generator=g)) < p_adj else []
        return [_pick(dets, g), *adj, _pick(nouns, g)]

    adv = [_pick(ADVERBS, g)] if ornate and float(torch.rand((), generator=g)) < 0.5 else []
    return [*phrase(), *adv, _pick(verbs, g), *phrase()]


def generate(n: int, seed: int) -> tuple[list[str], torch.Tensor]:
    """``n`` sentences and their factors (n, 3): topic index, style (1 ornate), length (1 long)."""
    g = torch.Generator().manual_seed(seed)
    names = list(TOPICS)
    lines, factors = [], torch.zeros(n, 3, dtype=torch.int64)
    for i in range(n):
        topic = int(torch.randint(len(names), (1,), generator=g))
        ornate = int(torch.randint(2, (1,), generator=g))
        long = int(torch.randint(2, (1,), generator=g))
        clauses = 1 + long * int(torch.randint(1, 3, (1,), generator=g))
        words = _clause(names[topic], bool(ornate), g)
        for _ in range(clauses - 1):
            words += [_pick(JOINS, g), *_clause(names[topic], bool(ornate), g)]
        lines.append(" ".join(words))
        factors[i] = torch.tensor([topic, ornate, long])
    return lines, factors


def load_sentences(cfg: DataConfig) -> DataSplits:
    """Generate ``cfg.size`` sentences (and ``size // 10`` test ones) and encode them."""
    lines, factors = generate(cfg.size, derive_seed(cfg.split_seed, "sentences"))
    test, _ = generate(max(1, cfg.size // 10), derive_seed(cfg.split_seed, "sentences-test"))
    return line_splits(cfg, lines, test, factors=factors, factor_names=FACTOR_NAMES)
