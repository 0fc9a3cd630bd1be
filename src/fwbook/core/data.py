"""Associative retrieval (Ba et al. 2016, Section 4.1).

A sequence lists K key-value pairs, then ``??``, then a query key; the target is the
value stored with that key::

    c9k8j3f1??c  ->  9

Keys are K *distinct* letters a-z, values are digits 0-9 drawn *with replacement*, and the
query is one of the K keys. With K = 4 a sequence has 2K + 3 = 11 tokens over a vocabulary of
26 + 10 + 1 = 37 symbols.

Everything is generated from a seed with a private ``torch.Generator`` on the CPU, so the same
seed gives the same splits on every machine and device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
QUERY_MARK = "?"
VOCABULARY = LETTERS + DIGITS + QUERY_MARK  # 37 symbols: a-z are 0-25, 0-9 are 26-35, ? is 36
VOCAB_SIZE = len(VOCABULARY)
SYMBOL_INDEX = {symbol: index for index, symbol in enumerate(VOCABULARY)}

PAPER_NUM_PAIRS = 4  # K, inferred from the paper's example strings (see PAPER.md)
PAPER_SPLIT_SIZES = (100_000, 10_000, 20_000)  # train / validation / test


def sequence_length(num_pairs: int = PAPER_NUM_PAIRS) -> int:
    """Tokens in one input sequence: K pairs, ``??`` and the query key."""
    return 2 * num_pairs + 3


def _check_num_pairs(num_pairs: int) -> None:
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or not 1 <= num_pairs <= 26:
        raise ValueError(
            f"num_pairs (K) must be an integer from 1 to 26 (keys are distinct letters a-z), "
            f"got {num_pairs!r}"
        )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer (1 or more), got {value!r}")


def encode(text: str) -> torch.Tensor:
    """Turn a string such as ``"c9k8j3f1??c"`` into a tensor of symbol indices.

    Args:
        text: characters from a-z, 0-9 and ``?``.
    Returns:
        int64 tensor of shape (len(text),).
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty string over a-z, 0-9 and '?', got {text!r}")
    foreign = sorted({ch for ch in text if ch not in SYMBOL_INDEX})
    if foreign:
        raise ValueError(
            f"text {text!r} contains symbol(s) {''.join(foreign)!r} outside the vocabulary; "
            f"allowed symbols are a-z, 0-9 and '?'"
        )
    return torch.tensor([SYMBOL_INDEX[ch] for ch in text], dtype=torch.long)


def decode(indices: torch.Tensor) -> str | list[str]:
    """Inverse of :func:`encode`.

    Args:
        indices: int tensor of shape (T,) or (B, T), or a scalar for a single symbol.
    Returns:
        a string for a 0-d or 1-d tensor, a list of strings for a 2-d tensor.
    """
    indices = torch.as_tensor(indices)
    if indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= VOCAB_SIZE):
        raise ValueError(
            f"indices must lie in 0..{VOCAB_SIZE - 1} (the {VOCAB_SIZE}-symbol vocabulary), "
            f"got values from {int(indices.min())} to {int(indices.max())}"
        )
    if indices.dim() == 0:
        return VOCABULARY[int(indices)]
    if indices.dim() == 1:
        return "".join(VOCABULARY[i] for i in indices.tolist())
    if indices.dim() == 2:
        return ["".join(VOCABULARY[i] for i in row) for row in indices.tolist()]
    raise ValueError(f"indices must have 0, 1 or 2 dimensions, got shape {tuple(indices.shape)}")


def parse_query(text: str) -> tuple[torch.Tensor, str]:
    """Check a reader-typed query such as ``"c9k8j3f1??c"`` and return its tokens and answer.

    Returns:
        (tokens of shape (T,), the value stored under the query key).
    """
    tokens = encode(text)
    if len(text) < 5 or len(text) % 2 == 0 or text[-3:-1] != "??":
        raise ValueError(
            f"a query must look like 'c9k8j3f1??c': letter-digit pairs, then '??', then one of "
            f"the keys; got {text!r}"
        )
    pairs = text[:-3]
    keys, values = pairs[0::2], pairs[1::2]
    if not all(k in LETTERS for k in keys) or not all(v in DIGITS for v in values):
        raise ValueError(f"pairs must be a letter followed by a digit, got {pairs!r}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"keys must be distinct letters, got {keys!r}")
    query = text[-1]
    if query not in keys:
        raise ValueError(f"the query key {query!r} must be one of the stored keys {keys!r}")
    return tokens, values[keys.index(query)]


@dataclass(frozen=True)
class RetrievalSplit:
    """One split: ``inputs`` (N, 2K+3) int64 token indices, ``targets`` (N,) int64 indices."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def strings(self, count: int | None = None) -> list[str]:
        """The first ``count`` sequences as ``"c9k8j3f1??c->9"`` strings."""
        rows = self.inputs[:count]
        texts = decode(rows)
        answers = decode(self.targets[: rows.shape[0]])
        return [f"{text}->{answer}" for text, answer in zip(texts, answers)]

    def to(self, device: torch.device | str) -> "RetrievalSplit":
        return RetrievalSplit(self.inputs.to(device), self.targets.to(device))


def associative_retrieval(num_sequences: int, num_pairs: int = PAPER_NUM_PAIRS,
                          generator: torch.Generator | None = None) -> RetrievalSplit:
    """Draw ``num_sequences`` associative-retrieval sequences.

    Args:
        num_sequences: N, the number of sequences.
        num_pairs: K, the number of key-value pairs (1..26).
        generator: a CPU ``torch.Generator``; the results depend only on its state.
    Returns:
        a :class:`RetrievalSplit` with inputs (N, 2K+3) and targets (N,).
    """
    _check_count("num_sequences", num_sequences)
    _check_num_pairs(num_pairs)
    n, k = num_sequences, num_pairs
    # distinct keys: the first K letters of a random permutation of a-z, per sequence
    keys = torch.rand(n, len(LETTERS), generator=generator).argsort(dim=1)[:, :k]  # (N, K)
    values = torch.randint(0, 10, (n, k), generator=generator) + len(LETTERS)  # (N, K), with replacement
    slot = torch.randint(0, k, (n,), generator=generator)  # (N,) which pair is asked for
    rows = torch.arange(n)
    inputs = torch.empty(n, sequence_length(k), dtype=torch.long)
    inputs[:, 0 : 2 * k : 2] = keys
    inputs[:, 1 : 2 * k : 2] = values
    inputs[:, 2 * k] = SYMBOL_INDEX[QUERY_MARK]
    inputs[:, 2 * k + 1] = SYMBOL_INDEX[QUERY_MARK]
    inputs[:, 2 * k + 2] = keys[rows, slot]
    targets = values[rows, slot]
    return RetrievalSplit(inputs, targets)


def value_only_error(num_pairs: int = PAPER_NUM_PAIRS, num_values: int = len(DIGITS)) -> float:
    """Expected error (fraction) of a reader that ignores the query key and answers the most
    frequent value of the sequence.

    Values are ``num_pairs`` draws with replacement from ``num_values`` digits and the query asks
    for one of the pairs uniformly, so the answer is right with probability
    (count of the most frequent value) / num_pairs. Computed exactly by enumerating all
    num_values ** num_pairs value tuples (at most 2,000,000 of them). Chapters 4 and 5 use it
    as the level a model sits at when it has learnt which digits occur but not which key holds
    which (61.65% for the paper's K = 4).
    """
    for label, value in (("num_pairs", num_pairs), ("num_values", num_values)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if num_values ** num_pairs > 2_000_000:
        raise ValueError(f"num_values ** num_pairs = {num_values ** num_pairs:,} tuples is too "
                         f"many to enumerate (at most 2,000,000)")
    tuples = np.indices((num_values,) * num_pairs).reshape(num_pairs, -1).T  # (V^K, K)
    counts = (tuples[:, :, None] == np.arange(num_values)).sum(axis=1)  # (V^K, V)
    return float(1 - counts.max(axis=1).mean() / num_pairs)


@dataclass(frozen=True)
class RetrievalData:
    """The three splits of one seeded data set."""

    train: RetrievalSplit
    validation: RetrievalSplit
    test: RetrievalSplit
    num_pairs: int
    seed: int


def make_splits(seed: int = 0, num_pairs: int = PAPER_NUM_PAIRS, num_train: int = PAPER_SPLIT_SIZES[0],
                num_validation: int = PAPER_SPLIT_SIZES[1], num_test: int = PAPER_SPLIT_SIZES[2]
                ) -> RetrievalData:
    """Seeded train / validation / test splits (100,000 / 10,000 / 20,000 by default).

    Each split has its own generator derived from ``seed``, so changing the size of one split
    never changes the others, and the same seed gives identical tensors on every machine.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_num_pairs(num_pairs)
    for name, value in (("num_train", num_train), ("num_validation", num_validation),
                        ("num_test", num_test)):
        _check_count(name, value)
    splits = []
    for offset, size in enumerate((num_train, num_validation, num_test)):
        generator = torch.Generator().manual_seed(seed * 1_000 + offset)
        splits.append(associative_retrieval(size, num_pairs, generator))
    return RetrievalData(*splits, num_pairs=num_pairs, seed=seed)
