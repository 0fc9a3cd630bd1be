"""The associative memory of chapter 01: the three forms agree, recall behaves as predicted."""

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure

from fwbook.chapters import ch01_memory as am


def test_store_sequence_matches_closed_form_and_attention():
    generator = torch.Generator().manual_seed(1)
    patterns = am.random_patterns(7, 16, generator).double()  # (P, D)
    cue = am.random_patterns(1, 16, generator).double()[0]
    for decay in (1.0, 0.9, 0.5):
        iterative = am.store_sequence(patterns, decay, fast_lr=0.3)  # Eq. 1 writes
        closed = am.memory_matrix(patterns, decay, fast_lr=0.3)  # Eq. 3
        torch.testing.assert_close(iterative, closed)
        by_attention, weights = am.recall_by_attention(patterns, cue, decay, fast_lr=0.3)  # Eq. 4
        torch.testing.assert_close(am.recall(iterative, cue), by_attention)
        assert weights.shape == (7,)
    assert am.check_attention_form() < 1e-12


def test_store_is_one_outer_product_with_decay():
    memory = torch.ones(3, 3)
    pattern = torch.tensor([1.0, -1.0, 1.0])
    expected = 0.5 * memory + 2.0 * torch.outer(pattern, pattern)
    torch.testing.assert_close(am.store(memory, pattern, decay=0.5, fast_lr=2.0), expected)
    # default η = 1/D: a single stored ±1 pattern recalls itself exactly
    single = am.store(torch.zeros(3, 3), pattern)
    torch.testing.assert_close(am.recall(single, pattern), pattern)


def test_batched_memories_are_independent():
    generator = torch.Generator().manual_seed(0)
    patterns = am.random_patterns(4, 10, generator, trials=3)  # (3, 4, 10)
    batched = am.store_sequence(patterns, 0.8)
    for index in range(3):
        torch.testing.assert_close(batched[index], am.store_sequence(patterns[index], 0.8))


def test_corrupt_and_clean_up():
    generator = torch.Generator().manual_seed(0)
    patterns = am.random_patterns(50, 200, generator)
    flipped = (am.corrupt(patterns, 0.2, generator) != patterns).float().mean()
    assert 0.17 < float(flipped) < 0.23
    assert torch.equal(am.clean_up(torch.tensor([-0.1, 0.0, 2.0])), torch.tensor([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="flip_fraction"):
        am.corrupt(patterns, 0.7)


def test_recall_vs_load_matches_theory_and_degrades():
    frame = am.recall_vs_load(dim=100, loads=(1, 10, 50, 100), trials=6, seed=0)
    assert list(frame["patterns"]) == [1, 10, 50, 100]
    assert frame["bits_correct"].iloc[0] == 1.0
    assert frame["bits_correct"].is_monotonic_decreasing
    assert (frame["bits_correct"] - frame["predicted_bits_correct"]).abs().max() < 0.03
    assert frame["perfect"].iloc[-1] < frame["perfect"].iloc[0]


def test_recall_vs_age_favours_recent_memories_with_decay():
    frame = am.recall_vs_age(dim=100, num_patterns=30, decays=(1.0, 0.8), trials=6, seed=0)
    assert set(frame["decay"]) == {1.0, 0.8}
    decayed = frame[frame["decay"] == 0.8].set_index("age")["bits_correct"]
    assert decayed[0] > 0.99 and decayed[29] < 0.65
    flat = frame[frame["decay"] == 1.0]["bits_correct"]
    assert flat.max() - flat.min() < 0.1  # no decay: every age is recalled about equally
    error = (frame["bits_correct"] - frame["predicted_bits_correct"]).abs()
    assert error.mean() < 0.025 and error.max() < 0.1  # 600 units per point: noise ~0.02


def test_same_seed_same_numbers():
    first = am.recall_vs_age(dim=32, num_patterns=5, decays=(0.9,), trials=2, seed=3)
    second = am.recall_vs_age(dim=32, num_patterns=5, decays=(0.9,), trials=2, seed=3)
    assert first.equals(second)


@pytest.mark.parametrize("profile", am.PROFILES)
def test_chapter_settings(profile):
    settings = am.chapter_settings(profile)
    assert settings.dim > 0 and settings.trials > 0 and 1.0 in settings.decays
    with pytest.raises(ValueError, match="profile"):
        am.chapter_settings("huge")


def test_figures():
    matplotlib.use("Agg")
    settings = am.chapter_settings("smoke")
    load = am.recall_vs_load(settings.dim, settings.loads, settings.trials)
    age = am.recall_vs_age(settings.dim, settings.age_patterns, settings.decays, settings.trials)
    figures = [am.plot_pattern_completion(dim_side=6, count=3),
               am.plot_recall_vs_load(load, settings.dim),
               am.plot_recall_vs_age(age, settings.dim)]
    for figure in figures:
        assert isinstance(figure, Figure) and figure.axes
    assert len(figures[0].axes) == 3 * 3 + 2  # 3 rows of 3 patterns, M and its colour bar
    assert len(figures[2].axes[0].lines) == 2 * len(settings.decays)
