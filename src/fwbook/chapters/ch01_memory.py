"""Memories as associative weights, not stored activity (chapter 01).

A Hebbian (outer-product) associative memory is the fast-weight matrix of Ba et al. (2016)
stripped of everything else: patterns ``p`` (D,) of ±1 units are written into a D x D matrix
``M`` and read back by multiplying ``M`` with a cue::

    (Eq. 1)  M(t) = λ M(t-1) + η p(t) p(t)ᵀ                write: one outer product per pattern
    (Eq. 3)  M(t) = η Σ_{τ=1..t} λ^(t-τ) p(τ) p(τ)ᵀ        the same matrix, unrolled
    (Eq. 4)  M(t) c = η Σ_{τ=1..t} λ^(t-τ) p(τ) [p(τ)ᵀ c]  read: attention to the stored patterns

The labels are those of the paper, with the hidden state ``h`` of the network replaced by a
pattern ``p``. Recall is "clean-up" by the sign of ``M c``, one synchronous step (no
iterated Hopfield dynamics), so the results below have simple closed forms that the figures
draw next to the measurements.

Everything is seeded: a private CPU ``torch.Generator`` per experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from fwbook.chapters.plots import use_house_style

PROFILES = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class MemorySettings:
    """Sizes of the chapter 01 experiments for one profile.

    There is no such experiment in the paper: ``paper`` is simply the largest budget.
    """

    dim: int  # D, units per pattern
    trials: int  # independent draws of the stored patterns, averaged
    loads: tuple[int, ...]  # numbers of stored patterns P for the capacity curve
    age_patterns: int  # patterns stored one after another for the age curve
    decays: tuple[float, ...]  # λ values for the age curve
    cue_noise: float = 0.2  # fraction of cue units flipped before recall


def chapter_settings(profile: str = "quick") -> MemorySettings:
    """The experiment sizes for ``profile`` (smoke: < 1 s, quick: seconds, paper: ~ a minute)."""
    if profile == "smoke":
        return MemorySettings(dim=64, trials=4, loads=(1, 4, 8, 16, 32, 64),
                              age_patterns=24, decays=(1.0, 0.9, 0.7))
    if profile == "quick":
        return MemorySettings(dim=200, trials=20, loads=(1, 5, 10, 20, 30, 40, 60, 80, 120, 200),
                              age_patterns=60, decays=(1.0, 0.95, 0.9, 0.7))
    if profile == "paper":
        return MemorySettings(dim=500, trials=50,
                              loads=(1, 10, 25, 50, 75, 100, 150, 200, 300, 500),
                              age_patterns=120, decays=(1.0, 0.98, 0.95, 0.9, 0.7))
    raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")


# ----------------------------------------------------------------------------------------------
# the memory itself


def random_patterns(count: int, dim: int, generator: Optional[torch.Generator] = None,
                    trials: Optional[int] = None) -> torch.Tensor:
    """Random ±1 patterns.

    Args:
        count: P, patterns per memory.
        dim: D, units per pattern.
        generator: CPU generator; the patterns depend only on its state.
        trials: if given, a leading batch dimension of independent memories.
    Returns:
        (P, D) or (trials, P, D) float tensor of ±1.
    """
    shape = (count, dim) if trials is None else (trials, count, dim)
    bits = torch.randint(0, 2, shape, generator=generator)
    return bits.float() * 2 - 1


def store(memory: torch.Tensor, pattern: torch.Tensor, decay: float = 1.0,
          fast_lr: Optional[float] = None) -> torch.Tensor:
    """Write one pattern into the memory.

    Args:
        memory: (..., D, D) the matrix M(t-1).
        pattern: (..., D) the pattern p(t).
        decay: λ.
        fast_lr: η; default 1/D, so a stored pattern recalls itself with gain 1.
    Returns:
        (..., D, D) the matrix M(t).
    """
    dim = pattern.shape[-1]
    eta = 1.0 / dim if fast_lr is None else fast_lr
    outer = pattern.unsqueeze(-1) * pattern.unsqueeze(-2)  # (..., D, D)  p pᵀ
    return decay * memory + eta * outer  # (Eq. 1) M(t) = λ M(t-1) + η p(t) p(t)ᵀ


def store_sequence(patterns: torch.Tensor, decay: float = 1.0,
                   fast_lr: Optional[float] = None) -> torch.Tensor:
    """Write patterns one after another, oldest first, into an empty memory.

    Args:
        patterns: (..., P, D), p(1) .. p(P).
        decay: λ.
        fast_lr: η; default 1/D.
    Returns:
        (..., D, D) the matrix M(P).
    """
    dim = patterns.shape[-1]
    memory = patterns.new_zeros(*patterns.shape[:-2], dim, dim)  # M(0) = 0
    for t in range(patterns.shape[-2]):
        memory = store(memory, patterns[..., t, :], decay, fast_lr)
    return memory


def memory_matrix(patterns: torch.Tensor, decay: float = 1.0,
                  fast_lr: Optional[float] = None) -> torch.Tensor:
    """The same matrix as :func:`store_sequence`, in closed form.

    Args:
        patterns: (..., P, D).
    Returns:
        (..., D, D)  η Σ_τ λ^(P-τ) p(τ) p(τ)ᵀ.
    """
    count, dim = patterns.shape[-2], patterns.shape[-1]
    eta = 1.0 / dim if fast_lr is None else fast_lr
    ages = torch.arange(count - 1, -1, -1, dtype=patterns.dtype)  # P-τ for τ = 1..P
    weights = eta * decay ** ages  # (P,)  η λ^(P-τ)
    # (Eq. 3) M(P) = η Σ_τ λ^(P-τ) p(τ) p(τ)ᵀ
    return torch.einsum("p,...pi,...pj->...ij", weights, patterns, patterns)  # (..., D, D)


def recall(memory: torch.Tensor, cue: torch.Tensor) -> torch.Tensor:
    """Read the memory with a cue: the matrix-vector product M c.

    Args:
        memory: (..., D, D).
        cue: (..., D).
    Returns:
        (..., D) the raw recall, before clean-up.
    """
    return (memory @ cue.unsqueeze(-1)).squeeze(-1)  # (..., D)  M c


def recall_by_attention(patterns: torch.Tensor, cue: torch.Tensor, decay: float = 1.0,
                        fast_lr: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same recall as :func:`recall` without forming M: attention to the stored patterns.

    Args:
        patterns: (..., P, D), p(1) .. p(P).
        cue: (..., D).
    Returns:
        recall (..., D) and the attention weights (..., P) η λ^(P-τ) p(τ)ᵀ c.
    """
    count, dim = patterns.shape[-2], patterns.shape[-1]
    eta = 1.0 / dim if fast_lr is None else fast_lr
    ages = torch.arange(count - 1, -1, -1, dtype=patterns.dtype)  # P-τ
    similarity = (patterns @ cue.unsqueeze(-1)).squeeze(-1)  # (..., P)  p(τ)ᵀ c
    weights = eta * decay ** ages * similarity  # (..., P)  η λ^(P-τ) p(τ)ᵀ c
    # (Eq. 4) M c = η Σ_τ λ^(P-τ) p(τ) [p(τ)ᵀ c]
    return (weights.unsqueeze(-2) @ patterns).squeeze(-2), weights  # (..., D), (..., P)


def corrupt(patterns: torch.Tensor, flip_fraction: float,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Flip each unit of ±1 patterns independently with probability ``flip_fraction``."""
    if not 0.0 <= flip_fraction <= 0.5:
        raise ValueError(f"flip_fraction must lie in [0, 0.5], got {flip_fraction!r}")
    flips = torch.rand(patterns.shape, generator=generator) < flip_fraction
    return torch.where(flips, -patterns, patterns)


def clean_up(recalled: torch.Tensor) -> torch.Tensor:
    """The sign of the raw recall (ties go to +1): a ±1 pattern again."""
    return torch.where(recalled >= 0, 1.0, -1.0)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over the last axis, (...)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


# ----------------------------------------------------------------------------------------------
# theory: one step of sign clean-up, random ±1 patterns


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def predicted_bits_correct(dim: int, target_weight: float, other_weights: Sequence[float],
                           cue_noise: float) -> float:
    """Probability that a unit of a stored pattern is recalled correctly (one sign step).

    With weights ``w_ν = η λ^(age of ν) D`` (so ``w = 1`` for a fresh pattern and η = 1/D),
    unit i of the raw recall of pattern μ from a cue ``c`` splits into three parts::

        p_i (M c)_i ≈ w_μ (1 - 2f)(D-1)/D     the target, seen through the cue's other units
                    + p_i c_i Σ_ν w_ν / D       the diagonal of M: every p p^T has 1s on it
                    + noise                     crosstalk, variance Σ_{ν≠μ} w_ν² (D-1)/D²

    where ``f`` is the fraction of flipped cue units and ``p_i c_i`` is -1 with probability f.
    The crosstalk is treated as Gaussian.

    Args:
        dim: D.
        target_weight: w_μ, i.e. λ^(age of the target).
        other_weights: w_ν of every other stored pattern.
        cue_noise: f.
    """
    others = np.asarray(list(other_weights), dtype=float)
    signal = target_weight * (1 - 2 * cue_noise) * (dim - 1) / dim
    diagonal = (target_weight + others.sum()) / dim
    spread = math.sqrt(float((others ** 2).sum()) * (dim - 1)) / dim

    def correct(mean: float) -> float:
        if spread == 0:
            return 1.0 if mean > 0 else (0.5 if mean == 0 else 0.0)
        return _normal_cdf(mean / spread)

    return (1 - cue_noise) * correct(signal + diagonal) + cue_noise * correct(signal - diagonal)


# ----------------------------------------------------------------------------------------------
# experiments


def recall_vs_load(dim: int, loads: Sequence[int], trials: int = 10, cue_noise: float = 0.2,
                   seed: int = 0) -> pd.DataFrame:
    """Recall quality as more and more patterns share one memory (λ = 1).

    For each load P: draw ``trials`` memories of P random patterns, cue each stored pattern
    with a copy in which a fraction ``cue_noise`` of the units is flipped, clean up by sign.

    Returns:
        one row per load: ``patterns``, ``load`` (P/D), ``bits_correct`` and ``cosine`` (mean
        over trials and patterns), ``bits_correct_sem`` (standard error over trials),
        ``perfect`` (fraction of patterns recalled without a single wrong unit),
        ``predicted_bits_correct`` (theory), ``cue_bits_correct`` (1 - cue_noise).
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for count in loads:
        patterns = random_patterns(count, dim, generator, trials)  # (trials, P, D)
        memory = memory_matrix(patterns)  # (trials, D, D), Eq. 3 with λ = 1
        cues = corrupt(patterns, cue_noise, generator)  # (trials, P, D)
        raw = cues @ memory.transpose(-1, -2)  # (trials, P, D)  M c for every cue
        recalled = clean_up(raw)
        correct = (recalled == patterns).float().mean(-1)  # (trials, P)
        per_trial = correct.mean(-1)  # (trials,)
        rows.append({
            "patterns": int(count),
            "load": count / dim,
            "bits_correct": float(per_trial.mean()),
            "bits_correct_sem": float(per_trial.std(unbiased=True) / math.sqrt(trials))
            if trials > 1 else 0.0,
            "perfect": float((correct == 1).float().mean()),
            "cosine": float(cosine(raw, patterns).mean()),
            "predicted_bits_correct": predicted_bits_correct(dim, 1.0, [1.0] * (count - 1),
                                                             cue_noise),
            "cue_bits_correct": 1 - cue_noise,
        })
    return pd.DataFrame(rows)


def recall_vs_age(dim: int, num_patterns: int, decays: Sequence[float], trials: int = 10,
                  cue_noise: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Recall quality against the age of a memory, for several decays λ.

    ``num_patterns`` patterns are written one after another (Eq. 1); the pattern written last
    has age 0. Every decay sees the same patterns and the same noisy cues.

    Returns:
        one row per (decay, age): ``decay``, ``age``, ``bits_correct``, ``bits_correct_sem``,
        ``cosine``, ``predicted_bits_correct``.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = random_patterns(num_patterns, dim, generator, trials)  # (trials, P, D)
    cues = corrupt(patterns, cue_noise, generator)  # (trials, P, D)
    ages = np.arange(num_patterns - 1, -1, -1)  # age of p(τ) after P writes: P - τ
    rows = []
    for decay in decays:
        memory = memory_matrix(patterns, decay)  # (trials, D, D), Eq. 3
        raw = cues @ memory.transpose(-1, -2)  # (trials, P, D)  M c for every cue
        correct = (clean_up(raw) == patterns).float().mean(-1)  # (trials, P)
        similarity = cosine(raw, patterns)  # (trials, P)
        weights = float(decay) ** ages  # λ^(age) of every pattern
        for index, age in enumerate(ages):
            per_trial = correct[:, index]
            rows.append({
                "decay": float(decay),
                "age": int(age),
                "bits_correct": float(per_trial.mean()),
                "bits_correct_sem": float(per_trial.std(unbiased=True) / math.sqrt(trials))
                if trials > 1 else 0.0,
                "cosine": float(similarity[:, index].mean()),
                "predicted_bits_correct": predicted_bits_correct(
                    dim, float(weights[index]), np.delete(weights, index), cue_noise),
            })
    return pd.DataFrame(rows).sort_values(["decay", "age"], ascending=[False, True],
                                          ignore_index=True)


def check_attention_form(dim: int = 32, count: int = 6, decay: float = 0.9,
                         seed: int = 0) -> float:
    """Largest absolute difference between M c (Eq. 1 writes) and the Eq. 4 attention form."""
    generator = torch.Generator().manual_seed(seed)
    patterns = random_patterns(count, dim, generator).double()
    cue = random_patterns(1, dim, generator).double()[0]
    by_matrix = recall(store_sequence(patterns, decay), cue)
    by_attention, _ = recall_by_attention(patterns, cue, decay)
    return float((by_matrix - by_attention).abs().max())


# ----------------------------------------------------------------------------------------------
# figures


def plot_pattern_completion(dim_side: int = 10, count: int = 5, decay: float = 1.0,
                            cue_noise: float = 0.2, erase_fraction: float = 0.0,
                            seed: int = 0) -> Figure:
    """Stored patterns, the weight matrix that holds them, and recall from noisy cues.

    Args:
        dim_side: patterns are ``dim_side`` x ``dim_side`` images (D = dim_side²).
        count: P, patterns written (Eq. 1), drawn as columns.
        decay: λ.
        cue_noise: fraction of cue units flipped.
        erase_fraction: fraction of cue units set to 0 (a partial cue).
        seed: seed of the patterns and the cue noise.
    Returns:
        a figure: rows stored / cue / recalled, and M on the right.
    """
    use_house_style()
    dim = dim_side * dim_side
    generator = torch.Generator().manual_seed(seed)
    patterns = random_patterns(count, dim, generator)  # (P, D)
    memory = store_sequence(patterns, decay)  # (D, D)
    cues = corrupt(patterns, cue_noise, generator)  # (P, D)
    if erase_fraction > 0:
        keep = torch.rand(cues.shape, generator=generator) >= erase_fraction
        cues = cues * keep
    recalled = clean_up(cues @ memory.T)  # (P, D)  sign(M c), one row per cue

    fig = plt.figure(figsize=(2.0 * count + 4.2, 6.4))
    grid = fig.add_gridspec(3, count + 2, width_ratios=[1] * count + [0.15, 2.6])
    rows = (("stored p", patterns), ("noisy cue c", cues), ("recalled sign(M c)", recalled))
    for row, (label, images) in enumerate(rows):
        for column in range(count):
            ax = fig.add_subplot(grid[row, column])
            ax.imshow(images[column].reshape(dim_side, dim_side).numpy(), cmap="gray_r",
                      vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(f"pattern {column + 1}", fontsize=10)
            if row == 2:
                wrong = int((images[column] != patterns[column]).sum())
                ax.set_xlabel(f"{wrong} of {dim} wrong", fontsize=9)
            if column == 0:
                ax.set_ylabel(label, fontsize=10)
    ax = fig.add_subplot(grid[:, count + 1])
    limit = float(memory.abs().max())
    image = ax.imshow(memory.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
    ax.set_title(f"weights M ({dim}×{dim})", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{count} patterns held by one weight matrix, none by activity "
                 f"(λ = {decay:g}, {cue_noise:.0%} of cue units flipped)", fontsize=12)
    plt.close(fig)
    return fig


def plot_recall_vs_load(frame: pd.DataFrame, dim: int) -> Figure:
    """Recall quality against the number of stored patterns (output of :func:`recall_vs_load`).

    Left: fraction of units correct after one sign step, measured and predicted. Right:
    fraction of patterns recalled without a single wrong unit.
    """
    use_house_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.9))
    left.errorbar(frame["patterns"], frame["bits_correct"], yerr=frame["bits_correct_sem"],
                  marker="o", lw=1.8, capsize=3, label="measured (mean ± s.e.m.)")
    left.plot(frame["patterns"], frame["predicted_bits_correct"], ls="--", color="0.3",
              label="theory (Gaussian crosstalk)")
    left.axhline(float(frame["cue_bits_correct"].iloc[0]), color="0.6", lw=1, ls=":",
                 label="units correct in the cue")
    left.set_ylim(0.5, 1.02)
    left.set_ylabel("fraction of units correct")
    left.set_title("Units recalled correctly")
    left.legend(fontsize=8, loc="lower left")
    right.plot(frame["patterns"], frame["perfect"], marker="s", lw=1.6, color="C1")
    right.set_ylim(-0.02, 1.02)
    right.set_ylabel("fraction of patterns")
    right.set_title("Patterns recalled perfectly")
    for ax in (left, right):
        ax.set_xlabel(f"patterns stored in one {dim}×{dim} matrix (λ = 1)")
    fig.suptitle("Capacity: recall degrades as more patterns share the same weights",
                 fontsize=12)
    plt.close(fig)
    return fig


def plot_recall_vs_age(frame: pd.DataFrame, dim: int) -> Figure:
    """Fraction of units recalled correctly against the age of the memory, one line per λ."""
    use_house_style()
    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    palette = plt.get_cmap("viridis")
    decays = sorted(frame["decay"].unique(), reverse=True)
    for index, decay in enumerate(decays):
        part = frame[frame["decay"] == decay]
        color = palette(index / max(1, len(decays) - 1) * 0.85)
        ax.plot(part["age"], part["bits_correct"], marker="o", ms=3, lw=1.6, color=color,
                label=f"λ = {decay:g}")
        ax.plot(part["age"], part["predicted_bits_correct"], ls="--", lw=1, color=color)
    patterns = int(frame["age"].max()) + 1
    ax.set_xlabel("age of the memory (patterns written after it)")
    ax.set_ylabel("fraction of units recalled correctly")
    ax.set_ylim(0.4, 1.02)
    ax.set_title(f"Decay favours the recent past ({patterns} patterns, D = {dim})")
    ax.legend(fontsize=8, title="solid: measured\ndashed: theory", title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plt.close(fig)
    return fig
