"""The bag of tricks as a grid of runs: chapter 04's ablations, what is trained, its statistics.

Every cell of the grid is the fast-weights model at R = 20 with *one* thing changed from a
common baseline (λ = 0.95, η = 0.5, S = 1, layer norm on, W = 0.05·I, clipping at 5, Adam at
1e-3). ``ablation_configs(profile, seeds)`` returns the grid as named ``TrainConfig``s, ready
for ``fwbook.experiments.sweep.run_sweep`` (``python -m fwbook sweep ablations --profile paper``
trains the committed grid, seeds 0, 1 and 2 by default)::

    ablation_configs("paper")["ablation_fast_lr_0_seed0"]   # η = 0: inner loop kept, memory off

A note on η = 0. With η = 0 the fast term A(t) h_s(t+1) is zero, so every inner step computes
the same f(LN[W h(t) + C x(t)]): the network *is* an LN-IRNN (with W initialised to 0.05·I).
The inner loop adds no depth of its own when the memory is off, so the η = 0 cell measures
exactly what the fast memory contributes on top of "an extra LN and ReLU per step".
:func:`eta_zero_equals_ln_irnn` checks this numerically.

The budgets (per profile, see ``ABLATION_BUDGETS``):

* smoke: the smoke profile's tiny data and 60 updates (tests only);
* quick: full training set, 1,500 updates, smaller validation and test sets (the whole grid in
  a few minutes on 2 CPU cores); curves are early-training curves, not final errors;
* paper: full data, 10,000 updates at lr 1e-3, seeds ``PAPER_SEEDS`` (0, 1, 2) per cell (the
  baseline is in the low-error regime by then). Records live in ``results/ablations/``.

Every summary is over the seeds a cell actually has (:func:`cell_stats`, on
:func:`fwbook.experiments.stats.summarize`): mean, sample standard deviation (ddof = 1), min and
max of the finished seeds, with diverged seeds counted and named, never averaged in. Two cells
are called different only when their seed ranges do not overlap; where a cell has a single
seed, a ratio of means within ``TIE_RATIO`` is called a tie, and the text says it is one seed
(:func:`compare_stats`). The figures, tables and verdicts in words are chapter 04's
(:mod:`fwbook.chapters.ch04_tricks`); nothing here imports a plotting library.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import torch

from fwbook.core.data import PAPER_NUM_PAIRS, make_splits, value_only_error
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.records import REPO_ROOT, config_hash, load_records
from fwbook.core.train import TrainConfig
from fwbook.experiments.grids import PROFILE_SETTINGS, check_profile, retrieval_config
from fwbook.experiments.stats import summarize

RESULTS_DIR = REPO_ROOT / "results" / "ablations"
ABLATION_HIDDEN = 20  # R: the smallest size, where the paper's controls fail
PAPER_SEEDS: tuple[int, ...] = (0, 1, 2)  # seeds of every cell in the paper profile

# Training budget of the grid per profile (overrides of fwbook.experiments.grids.PROFILE_SETTINGS).
ABLATION_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(PROFILE_SETTINGS["smoke"], lr=1e-3),
    "quick": dict(num_train=100_000, num_validation=2_000, num_test=5_000, steps=1_500,
                  eval_every=250, lr=1e-3),
    "paper": dict(num_train=100_000, num_validation=10_000, num_test=20_000, steps=10_000,
                  eval_every=500, lr=1e-3),
}

# One group per question of chapter 04: (group, cell name, overrides of the baseline).
# The baseline cell belongs to every group (it is the reference each change is read against).
ABLATION_CELLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("baseline", "baseline", {}),
    ("layer_norm", "layer_norm_off", dict(layer_norm=False)),
    ("identity_init", "identity_init_off", dict(recurrent_init=0.0)),
    ("inner_steps", "inner_steps_2", dict(inner_steps=2)),
    ("inner_steps", "inner_steps_3", dict(inner_steps=3)),
    ("decay", "decay_0.5", dict(decay=0.5)),
    ("decay", "decay_1.0", dict(decay=1.0)),
    ("fast_lr", "fast_lr_0", dict(fast_lr=0.0)),
    ("fast_lr", "fast_lr_0.1", dict(fast_lr=0.1)),
    ("fast_lr", "fast_lr_1.0", dict(fast_lr=1.0)),
    ("clipping", "clipping_off", dict(clip_norm=None)),
    ("lr", "lr_1e-4", dict(lr=1e-4)),
    ("lr", "lr_3e-4", dict(lr=3e-4)),
    ("lr", "lr_3e-3", dict(lr=3e-3)),
)
ABLATION_GROUPS = ("layer_norm", "identity_init", "inner_steps", "decay", "fast_lr", "clipping",
                   "lr")
GROUP_TITLES = {
    "layer_norm": "Layer norm in the inner loop",
    "identity_init": "W initialised to 0.05·I, or to 0",
    "inner_steps": "Inner steps S",
    "decay": "Decay λ",
    "fast_lr": "Fast learning rate η (η = 0: memory off)",
    "clipping": "Gradient clipping (global norm 5)",
    "lr": "Adam learning rate",
}
# What the baseline is, in the words each group's legend uses.
BASELINE_LABELS = {
    "layer_norm": "LN on", "identity_init": "W = 0.05·I", "inner_steps": "S = 1",
    "decay": "λ = 0.95", "fast_lr": "η = 0.5", "clipping": "clip at 5", "lr": "lr = 1e-3",
}
CELL_LABELS = {
    "baseline": "baseline", "layer_norm_off": "LN off", "identity_init_off": "W = 0",
    "inner_steps_2": "S = 2", "inner_steps_3": "S = 3", "decay_0.5": "λ = 0.5",
    "decay_1.0": "λ = 1.0", "fast_lr_0": "η = 0 (memory off)", "fast_lr_0.1": "η = 0.1",
    "fast_lr_1.0": "η = 1.0", "clipping_off": "no clipping", "lr_1e-4": "lr = 1e-4",
    "lr_3e-4": "lr = 3e-4", "lr_3e-3": "lr = 3e-3",
}
CELL_GROUP = {name: group for group, name, _ in ABLATION_CELLS}


def ablation_name(cell: str, seed: int) -> str:
    """The run name of one cell and seed, e.g. ``ablation_layer_norm_off_seed0``."""
    return f"ablation_{cell}_seed{seed}"


def ablation_configs(profile: str, seeds: Iterable[int] = (0,)) -> dict[str, TrainConfig]:
    """The chapter-04 grid: one ``TrainConfig`` per (cell, seed).

    Args:
        profile: smoke, quick or paper (sets the budget, ``ABLATION_BUDGETS``).
        seeds: initialisation / data-order seeds; the data set is the same for all.
    Returns:
        ``{"ablation_<cell>_seed<s>": TrainConfig}``, in the order of ``ABLATION_CELLS``.
    """
    check_profile(profile)
    seeds = tuple(seeds)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    configs = {}
    for seed in seeds:
        for _, cell, overrides in ABLATION_CELLS:
            settings = {**ABLATION_BUDGETS[profile], **overrides}
            configs[ablation_name(cell, seed)] = retrieval_config(
                "fast_weights", ABLATION_HIDDEN, profile, seed, **settings)
    return configs


def parse_name(name: str) -> tuple[str, int]:
    """``"ablation_decay_0.5_seed3"`` -> ``("decay_0.5", 3)``."""
    if not name.startswith("ablation_") or "_seed" not in name:
        raise ValueError(f"not an ablation run name: {name!r}")
    cell, seed = name[len("ablation_"):].rsplit("_seed", 1)
    return cell, int(seed)


def eta_zero_equals_ln_irnn(hidden: int = ABLATION_HIDDEN, seed: int = 0, inner_steps: int = 3
                            ) -> float:
    """Max |difference| of logits between fast weights with η = 0 and an LN-IRNN.

    Both get the same weights (the LN-IRNN copies the fast-weights model's C, b, W, LN and
    read-out). A result at float rounding level shows that η = 0 turns the model into an
    LN-IRNN, whatever S is.
    """
    # seeded draws (the same numbers as ever), without touching the caller's random state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fast = build_model(ModelConfig("fast_weights", hidden, fast_lr=0.0,
                                       inner_steps=inner_steps))
        plain = build_model(ModelConfig("ln_irnn", hidden, recurrent_init=0.05))
        with torch.no_grad():
            for param in fast.core.norm.parameters():  # give LN a non-trivial gain and bias
                param.add_(0.1 * torch.randn_like(param))
            plain.input_weight.copy_(fast.input_weight)
            plain.bias.copy_(fast.bias)
            plain.recurrent.copy_(fast.core.recurrent)
            plain.norm.load_state_dict(fast.core.norm.state_dict())
            plain.readout.load_state_dict(fast.readout.state_dict())
            tokens = make_splits(seed, num_train=64, num_validation=1, num_test=1).train.inputs
            return float((fast(tokens) - plain(tokens)).abs().max())  # tokens (64, 11)


def load_ablation_records(profile: str, directory: str | os.PathLike = RESULTS_DIR,
                          seeds: Iterable[int] = (0,)) -> dict[str, dict]:
    """Committed records of the grid that match ``ablation_configs(profile, seeds)`` exactly.

    Returns ``{name: record}``; names with no matching record are left out (a record made
    with another configuration is never used silently).
    """
    wanted = ablation_configs(profile, seeds)
    hashes = {config_hash(config.to_dict()): name for name, config in wanted.items()}
    found = {}
    if Path(directory).exists():
        for record in load_records(directory):
            name = hashes.get(record.get("config_hash"))
            if name is not None:
                found[name] = record
    return {name: found[name] for name in wanted if name in found}


def profile_seeds(profile: str, seed: int = 0) -> tuple[int, ...]:
    """The seeds chapter 04 shows for a profile.

    paper: ``PAPER_SEEDS`` (read from the committed records); smoke and quick: ``(seed,)``
    (the notebook trains that one seed of the grid itself).
    """
    check_profile(profile)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return PAPER_SEEDS if profile == "paper" else (seed,)


def cell_runs(records: dict[str, dict], cell: str) -> dict[int, dict]:
    """``{seed: record}`` of one cell, in seed order (empty when the cell was not run)."""
    if cell not in CELL_GROUP:
        raise ValueError(f"unknown ablation cell {cell!r}; the cells are "
                         f"{', '.join(CELL_GROUP)}")
    runs = {}
    for name, record in records.items():
        name_cell, seed = parse_name(name)
        if name_cell == cell:
            runs[seed] = record
    return dict(sorted(runs.items()))


def seed_coverage(records: dict[str, dict], seeds: Iterable[int]) -> dict[str, list[int]]:
    """``{cell: [seeds of ``seeds`` that have a record]}`` for every cell of the grid."""
    seeds = tuple(seeds)
    return {cell: [seed for seed in cell_runs(records, cell) if seed in seeds]
            for _, cell, _ in ABLATION_CELLS}


def run_status(record: dict) -> str:
    """"completed", "diverged at update N" (from the record's message), or another status."""
    status = record.get("status") or "unknown status"
    if status == "diverged":
        found = re.search(r"diverged at update (\d+)", record.get("message") or "")
        return f"diverged at update {found.group(1)}" if found else "diverged"
    return status


FIELDS = ("test_error", "final_val_error")


def cell_stats(records: dict[str, dict], cell: str, field: str = "test_error") -> dict:
    """One cell summarised over its seeds; errors are fractions (0.03 = 3%).

    Returns a dict with
        ``seeds``: the seeds with a record (sorted); ``values``: ``{seed: error}`` of the runs
        that have ``field`` (finished runs); ``n``: how many values; ``mean``, ``std`` (sample
        standard deviation, ddof = 1; None for n < 2), ``min``, ``max`` (None for n = 0);
        ``failed``: ``{seed: status}`` of runs without ``field`` (diverged ones), which are
        counted and named but never averaged in.
    """
    if field not in FIELDS:
        raise ValueError(f"field must be one of {', '.join(FIELDS)}, got {field!r}")
    runs = cell_runs(records, cell)
    values = {seed: float(record[field]) for seed, record in runs.items()
              if record.get(field) is not None}
    failed = {seed: run_status(record) for seed, record in runs.items() if seed not in values}
    return {"cell": cell, "field": field, "seeds": list(runs), "values": values,
            "failed": failed, **summarize(values.values())}  # n, mean, std (ddof = 1), min, max


def cell_status(records: dict[str, dict], cell: str) -> Optional[str]:
    """The runs' statuses with their seeds, e.g. "diverged at update 23 (seed 0); completed
    (seeds 1, 2)"; just "completed" when every run completed; None when the cell was not run."""
    by_status: dict[str, list[int]] = {}
    for seed, record in cell_runs(records, cell).items():
        by_status.setdefault(run_status(record), []).append(seed)
    if not by_status:
        return None
    if list(by_status) == ["completed"]:
        return "completed"
    return "; ".join(f"{status} ({seeds_word(seeds)})" for status, seeds in by_status.items())


def seed_list(seeds: Iterable[int]) -> str:
    return ", ".join(str(seed) for seed in seeds)


def seeds_word(seeds: Sequence[int]) -> str:
    return f"seed{'s' if len(seeds) != 1 else ''} {seed_list(seeds)}"


# With one seed in a cell (smoke and quick profiles, or a paper cell whose other seeds are not
# run yet) a ratio of means closer to 1 than this is called a tie: one seed cannot show an
# effect that small. With several seeds in both cells, ranges are compared instead.
TIE_RATIO = 1.25


def compare_stats(stats: dict, reference: dict, name: str = "this setting",
                  reference_name: str = "the baseline") -> dict:
    """Is one cell's error different from a reference cell's, given their seeds?

    With n ≥ 2 finished seeds in both, the two are called different only when their seed
    ranges (min–max) do not overlap. With one seed in either, the ratio of means decides,
    with ``TIE_RATIO`` as the tie margin, and the text says that it is one seed.

    Returns ``{"kind": "higher" | "lower" | "overlap" | "tie" | None, "rule": "ranges" |
    "one seed" | None, "ratio": mean / reference mean or None, "text": words, "note": the
    seed ranges, or which cell has one seed}``; kind None (and empty texts) when either cell
    has no finished run.
    """
    if stats["n"] == 0 or reference["n"] == 0:
        return {"kind": None, "rule": None, "ratio": None, "text": "", "note": ""}
    mean, ref = stats["mean"], reference["mean"]
    ratio = mean / ref if ref > 0 else None
    mean_word = "'s mean" if reference["n"] > 1 else "'s error"
    times = (f"{ratio:.1f}× {reference_name}{mean_word}" if ratio is not None
             else f"{reference_name}'s error is 0")
    if stats["n"] >= 2 and reference["n"] >= 2:
        ranges = (f"{stats['min']:.2%}–{stats['max']:.2%} against "
                  f"{reference['min']:.2%}–{reference['max']:.2%}")
        if stats["min"] > reference["max"]:
            kind, words = "higher", f"higher on every seed ({ranges})"
        elif stats["max"] < reference["min"]:
            kind, words = "lower", f"lower on every seed ({ranges})"
        else:
            kind = "overlap"
            words = (f"but the seed ranges overlap ({ranges}, n = {stats['n']} and "
                     f"{reference['n']}): not told apart")
        return {"kind": kind, "rule": "ranges", "ratio": ratio, "text": f"{times}, {words}",
                "note": ranges}
    if ratio is None:
        kind = "tie" if mean == 0 else "higher"
    elif 1 / TIE_RATIO < ratio < TIE_RATIO:
        kind = "tie"
    else:
        kind = "higher" if ratio > 1 else "lower"
    single = [who for who, s in ((name, stats), (reference_name, reference)) if s["n"] == 1]
    seeds = ("one seed per cell" if len(single) == 2 else f"only one seed of {single[0]}")
    tie = f"a tie by the {TIE_RATIO:g}× rule, " if kind == "tie" else ""
    return {"kind": kind, "rule": "one seed", "ratio": ratio, "text": f"{times}, {tie}{seeds}",
            "note": seeds}


def compare_cells(records: dict[str, dict], cell: str, reference: str = "baseline",
                  field: str = "test_error") -> dict:
    """:func:`compare_stats` of two cells of the grid, by name (see there for the result)."""
    return compare_stats(cell_stats(records, cell, field), cell_stats(records, reference, field),
                         CELL_LABELS[cell], "the baseline" if reference == "baseline"
                         else CELL_LABELS[reference])


def stalled_runs(records: dict[str, dict], band: float = 0.02) -> dict[str, dict]:
    """Finished runs that sat at the value-only level for the second half of training.

    A run is stalled when every validation error after half its updates lies within ``band``
    (fraction: 0.02 = 2 percentage points) of :func:`value_only_error` for its number of pairs.

    Returns ``{name: {"level": value-only error, "low": min, "high": max of those validation
    errors, "from_step": first update of the second half}}``, in the order of ``records``.
    """
    if not 0 < band < 1:
        raise ValueError(f"band must be a fraction between 0 and 1, got {band!r}")
    found = {}
    for name, record in records.items():
        curves = record.get("curves") or {}
        steps, errors = curves.get("step") or [], curves.get("val_error") or []
        if record.get("status") != "completed" or not steps:
            continue
        level = value_only_error((record.get("config") or {}).get("num_pairs", PAPER_NUM_PAIRS))
        late = [error for step, error in zip(steps, errors) if step > steps[-1] / 2]
        late = late or [errors[-1]]
        if all(abs(error - level) <= band for error in late):
            found[name] = {"level": level, "low": min(late), "high": max(late),
                           "from_step": next(s for s in steps if s > steps[-1] / 2)
                           if len(steps) > 1 else steps[-1]}
    return found


def clipping_activity(record: dict, threshold: float = 5.0) -> dict:
    """How often the interval-mean gradient norm of a run was above the clipping threshold.

    Returns ``{"above": n, "intervals": m, "last_above": update or None, "max": largest}``.
    """
    curves = record.get("curves") or {}
    steps, norms = curves.get("step", []), curves.get("grad_norm", [])
    above = [step for step, norm in zip(steps, norms) if norm > threshold]
    return {"above": len(above), "intervals": len(norms),
            "last_above": above[-1] if above else None, "max": max(norms) if norms else None}
