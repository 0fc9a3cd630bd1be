"""Associative retrieval: the task exactly as PAPER.md states it."""

import pytest
import torch

from fwbook.core.data import (LETTERS, VOCAB_SIZE, associative_retrieval, decode, encode, make_splits,
                         parse_query, sequence_length)


def test_vocabulary_and_length_match_the_paper():
    assert VOCAB_SIZE == 37
    assert sequence_length(4) == 11
    assert decode(encode("c9k8j3f1??c")) == "c9k8j3f1??c"
    assert encode("a0?").tolist() == [0, 26, 36]


def test_decode_batches_and_scalars():
    batch = torch.stack([encode("c9k8j3f1??c"), encode("j0a5s5z2??a")])
    assert decode(batch) == ["c9k8j3f1??c", "j0a5s5z2??a"]
    assert decode(torch.tensor(27)) == "1"


def test_sequences_follow_the_rules():
    split = associative_retrieval(5_000, generator=torch.Generator().manual_seed(3))
    assert split.inputs.shape == (5_000, 11) and split.targets.shape == (5_000,)
    for text, target in zip(decode(split.inputs[:500]), decode(split.targets[:500])):
        keys, values = text[0:8:2], text[1:8:2]
        assert all(k in LETTERS for k in keys) and len(set(keys)) == 4  # distinct letter keys
        assert all(v.isdigit() for v in values)
        assert text[8:10] == "??" and text[10] in keys
        assert target == values[keys.index(text[10])]
    # values are drawn with replacement: repeated values must occur
    values = split.inputs[:, 1:8:2]
    repeats = sum(len(set(row.tolist())) < 4 for row in values)
    assert repeats > 1_000


def test_splits_default_sizes_and_seeded_identity():
    data = make_splits(seed=0)
    assert (len(data.train), len(data.validation), len(data.test)) == (100_000, 10_000, 20_000)
    again = make_splits(seed=0)
    assert torch.equal(data.train.inputs, again.train.inputs)
    assert torch.equal(data.test.targets, again.test.targets)
    other = make_splits(seed=1, num_train=100, num_validation=10, num_test=10)
    assert not torch.equal(other.train.inputs, data.train.inputs[:100])
    # pinned strings: the same seed gives these sequences on every machine
    assert data.train.strings(3) == ['m5c6d3s7??s->7', 'j1r5b6s9??j->1', 'z2f8s4g3??g->3']


def test_split_sizes_are_independent_of_each_other():
    small = make_splits(seed=0, num_train=50, num_validation=10, num_test=10)
    big = make_splits(seed=0, num_train=70, num_validation=10, num_test=10)
    assert torch.equal(small.test.inputs, big.test.inputs)


def test_other_numbers_of_pairs():
    data = make_splits(seed=0, num_pairs=8, num_train=20, num_validation=5, num_test=5)
    assert data.train.inputs.shape == (20, 19)
    assert make_splits(seed=0, num_pairs=26, num_train=3, num_validation=1,
                       num_test=1).train.inputs.shape == (3, 55)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_pairs=0), "num_pairs (K) must be an integer from 1 to 26"),
    (dict(num_pairs=27), "num_pairs (K) must be an integer from 1 to 26"),
    (dict(num_train=0), "num_train must be a positive integer"),
    (dict(num_test=-5), "num_test must be a positive integer"),
    (dict(seed=-1), "seed must be a non-negative integer"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError) as error:
        make_splits(**kwargs)
    assert message in str(error.value)


def test_foreign_symbol_is_named():
    with pytest.raises(ValueError, match=r"symbol\(s\) '!A' outside the vocabulary; allowed "
                                         r"symbols are a-z, 0-9 and '\?'"):
        encode("cA9!")
    with pytest.raises(ValueError, match="indices must lie in 0..36"):
        decode(torch.tensor([3, 40]))


def test_parse_query_checks_reader_input():
    tokens, answer = parse_query("c9k8j3f1??c")
    assert answer == "9" and tokens.shape == (11,)
    with pytest.raises(ValueError, match="must be one of the stored keys"):
        parse_query("c9k8j3f1??z")
    with pytest.raises(ValueError, match="keys must be distinct"):
        parse_query("c9c8j3f1??c")
