"""The bag of tricks, measured: the chapter-04 ablation grid and its figures.

Every cell of the grid is the fast-weights model at R = 20 with *one* thing changed from a
common baseline (λ = 0.95, η = 0.5, S = 1, layer norm on, W = 0.05·I, clipping at 5, Adam at
1e-3). ``ablation_configs(profile, seeds)`` returns the grid as named ``TrainConfig``s, ready
for ``fwbook.sweep.run_sweep`` (``python -m fwbook sweep ablations --profile paper --seeds 0``
trains the committed grid)::

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
* paper: full data, 10,000 updates at lr 1e-3, one seed per cell (the whole grid fits in
  about an hour on two busy CPU cores; the baseline is in the low-error regime by then).
  Records live in ``results/ablations/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from .experiments import PROFILE_SETTINGS, check_profile, retrieval_config
from .models import ModelConfig, build_model
from .plots import MODEL_COLORS, use_house_style
from .records import REPO_ROOT, config_hash, load_records
from .train import TrainConfig

RESULTS_DIR = REPO_ROOT / "results" / "ablations"
ABLATION_HIDDEN = 20  # R: the smallest size, where the paper's controls fail

# Training budget of the grid per profile (overrides of fwbook.experiments.PROFILE_SETTINGS).
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
    torch.manual_seed(seed)
    fast = build_model(ModelConfig("fast_weights", hidden, fast_lr=0.0, inner_steps=inner_steps))
    plain = build_model(ModelConfig("ln_irnn", hidden, recurrent_init=0.05))
    with torch.no_grad():
        for param in fast.core.norm.parameters():  # give LN a non-trivial gain and bias
            param.add_(0.1 * torch.randn_like(param))
        plain.input_weight.copy_(fast.input_weight)
        plain.bias.copy_(fast.bias)
        plain.recurrent.copy_(fast.core.recurrent)
        plain.norm.load_state_dict(fast.core.norm.state_dict())
        plain.readout.load_state_dict(fast.readout.state_dict())
        from .data import make_splits
        tokens = make_splits(seed, num_train=64, num_validation=1, num_test=1).train.inputs
        return float((fast(tokens) - plain(tokens)).abs().max())  # tokens (64, 11)


# ---------------------------------------------------------------- reading the grid's records

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


# ---------------------------------------------------------------- tables and figures

def ablation_table(records: dict[str, dict]) -> "pandas.DataFrame":  # noqa: F821
    """One row per run: group, setting, seed, test error (%), final validation error (%),
    status and wall time."""
    import pandas as pd
    rows = []
    for name, record in records.items():
        cell, seed = parse_name(name)
        test = record.get("test_error")
        val = record.get("final_val_error")
        rows.append({"run": name, "group": CELL_GROUP[cell], "setting": CELL_LABELS[cell],
                     "seed": seed,
                     "test error %": None if test is None else round(100 * test, 2),
                     "final val error %": None if val is None else round(100 * val, 2),
                     "status": record.get("status"), "wall s": record.get("wall_s")})
    return pd.DataFrame(rows)


def cell_error(records: dict[str, dict], cell: str, field: str = "test_error"
               ) -> Optional[float]:
    """Mean of ``field`` over the seeds of one cell (None when no finished run has it)."""
    values = [record[field] for name, record in records.items()
              if parse_name(name)[0] == cell and record.get(field) is not None]
    return float(np.mean(values)) if values else None


def _error_text(value: Optional[float], record_status: Optional[str] = None) -> str:
    if value is None:
        return "not run" if record_status is None else record_status
    return f"{value:.2%}"


def cell_status(records: dict[str, dict], cell: str) -> Optional[str]:
    """"diverged at update N" (from the record's message), another status, or None (no run)."""
    import re

    for name, record in records.items():
        if parse_name(name)[0] != cell:
            continue
        status = record.get("status")
        if status == "diverged":
            found = re.search(r"diverged at update (\d+)", record.get("message", ""))
            return f"diverged at update {found.group(1)}" if found else "diverged"
        return status
    return None


# Ratios to the baseline closer to 1 than this are called ties: with one seed per cell, a
# difference that small is not evidence of an effect (more seeds would be needed).
TIE_RATIO = 1.25


def group_summary(records: dict[str, dict], group: str, field: str = "test_error") -> str:
    """One sentence with the measured errors of a group against the baseline, from records."""
    base = cell_error(records, "baseline", field)
    parts = []
    for cell in _group_cells(group)[1:]:
        value = cell_error(records, cell, field)
        text = f"{CELL_LABELS[cell]}: {_error_text(value, cell_status(records, cell))}"
        if value is not None and base is not None and base > 0:
            ratio = value / base
            tie = ", a tie at one seed per cell" if 1 / TIE_RATIO < ratio < TIE_RATIO else ""
            text += f" ({ratio:.1f}× the baseline{tie})"
        parts.append(text)
    what = "test error" if field == "test_error" else "final validation error"
    measured = {cell: cell_error(records, cell, field) for cell in _group_cells(group)}
    measured = {cell: value for cell, value in measured.items() if value is not None}
    best = ""
    if len(measured) > 1:
        winner = min(measured, key=measured.get)
        best = (f" Lowest in this group: {_label(winner, group)}." if winner != "baseline"
                else f" The baseline's {BASELINE_LABELS[group]} is the lowest in this group.")
    return (f"{GROUP_TITLES[group]}: baseline ({BASELINE_LABELS[group]}) "
            f"{_error_text(base, cell_status(records, 'baseline'))} {what}; "
            + "; ".join(parts) + "." + best)


def eta_zero_verdict(records: dict[str, dict], field: str = "test_error") -> str:
    """The chapter's answer to "depth of the inner loop, or the fast memory?", from records.

    Compares the baseline (η = 0.5) with η = 0 (which is exactly an LN-IRNN initialised like
    the fast-weights model, see :func:`eta_zero_equals_ln_irnn`) and with S = 2, 3.
    """
    base = cell_error(records, "baseline", field)
    off = cell_error(records, "fast_lr_0", field)
    if base is None or off is None:
        return ("The η = 0 comparison needs both the baseline and the η = 0 run; "
                f"baseline: {_error_text(base)}, η = 0: {_error_text(off)}.")
    what = "test error" if field == "test_error" else "final validation error"
    text = (f"With the memory switched off (η = 0) the {what} is {off:.2%}; with it on "
            f"(η = 0.5) {base:.2%}. ")
    ratio = off / base if base > 0 else float("inf")
    if off > base and ratio >= 1.5:
        text += (f"Switching the fast memory off multiplies the error by {ratio:.1f}. "
                 f"Since η = 0 leaves the inner loop nothing to do (the network is then an "
                 f"LN-IRNN with the same layer norm and ReLU per step), this gap is the fast "
                 f"memory's contribution, not the inner loop's depth.")
    elif off > base:
        text += (f"Switching the fast memory off raises the error only {ratio:.2f}-fold at this "
                 f"budget: a small gap, too small to settle the question from one seed.")
    else:
        text += ("At this budget switching the fast memory off does not hurt: here the "
                 "layer-normalised recurrence alone does as well, and the gain of the full model "
                 "cannot be credited to the fast memory.")
    deeper = [(cell, cell_error(records, cell, field)) for cell in ("inner_steps_2",
                                                                    "inner_steps_3")]
    deeper = [(cell, value) for cell, value in deeper if value is not None]
    if deeper:
        text += " More inner steps (more depth *with* the memory on): " + ", ".join(
            f"{CELL_LABELS[cell]} {value:.2%}" for cell, value in deeper) + "."
        if all(value > TIE_RATIO * base for _, value in deeper):
            text += (" Extra depth did not help at this budget and seed: every deeper model "
                     "ended with a higher error than S = 1.")
        elif all(value * TIE_RATIO < base for _, value in deeper):
            text += " Here extra inner steps did lower the error further."
    return text


def _group_cells(group: str) -> list[str]:
    return ["baseline"] + [name for g, name, _ in ABLATION_CELLS if g == group]


def _label(cell: str, group: str) -> str:
    return f"{BASELINE_LABELS[group]} (baseline)" if cell == "baseline" else CELL_LABELS[cell]


def plot_ablation_curves(records: dict[str, dict], groups: Sequence[str] = ABLATION_GROUPS,
                         ncols: int = 4, log: bool = True) -> Figure:
    """Validation error against updates, one panel per ablation group, baseline in every panel.

    Args:
        records: ``{run name: record}`` as from :func:`load_ablation_records` or a sweep.
        groups: which groups to draw, from ``ABLATION_GROUPS``.
        log: logarithmic error axis (0.1% .. 100%), so 1% and 5% are told apart.
    """
    use_house_style()
    groups = list(groups)
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False,
                             sharey=True)
    for ax, group in zip(axes.flat, groups):
        cells = _group_cells(group)
        palette = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, max(len(cells) - 1, 1)))
        for index, cell in enumerate(cells):
            color = MODEL_COLORS["fast_weights"] if cell == "baseline" else palette[index - 1]
            for name, record in records.items():
                if parse_name(name)[0] != cell:
                    continue
                curves = record.get("curves", {})
                steps, errors = curves.get("step", []), curves.get("val_error", [])
                if not steps:  # diverged before the first validation: say so in the legend
                    ax.plot([], [], color=color, ls=":",
                            label=f"{_label(cell, group)}: {cell_status(records, cell)}")
                    continue
                label = _label(cell, group) if parse_name(name)[1] == min(
                    parse_name(n)[1] for n in records if parse_name(n)[0] == cell) else None
                shown = 100 * np.asarray(errors, dtype=float)
                if log:
                    shown = np.clip(shown, 0.1, None)  # an error of 0 drawn at the floor
                ax.plot(steps, shown, color=color, label=label,
                        lw=2.2 if cell == "baseline" else 1.5,
                        ls="-" if record.get("status") == "completed" else ":")
        ax.set_title(GROUP_TITLES[group], fontsize=10)
        ax.set_xlabel("updates")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(0.1, 100)
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax.set_ylim(0, 100)
        ax.legend(fontsize=8, loc="upper right" if not log else "lower left")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation error (%)")
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.suptitle("Ablations of the fast-weights model (R = 20): one change at a time",
                 fontweight="bold")
    plt.close(fig)
    return fig


def plot_ablation_bars(records: dict[str, dict], field: str = "test_error") -> Figure:
    """Final error of every cell as a horizontal bar, baseline marked by a vertical line."""
    use_house_style()
    cells = [name for _, name, _ in ABLATION_CELLS]
    values = [cell_error(records, cell, field) for cell in cells]
    fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(cells) + 1.2))
    y = np.arange(len(cells))
    shown = [np.nan if v is None else 100 * v for v in values]
    colors = [MODEL_COLORS["fast_weights"] if c == "baseline" else
              MODEL_COLORS["ln_irnn"] if c == "fast_lr_0" else "#95a5a6" for c in cells]
    ax.barh(y, shown, color=colors)
    for yi, value, cell in zip(y, shown, cells):
        text = (cell_status(records, cell) or "not run") if np.isnan(value) else f"{value:.2f}%"
        ax.text(0 if np.isnan(value) else value, yi, f" {text}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{CELL_LABELS[c]}" for c in cells])
    ax.invert_yaxis()
    baseline = cell_error(records, "baseline", field)
    if baseline is not None:
        ax.axvline(100 * baseline, color=MODEL_COLORS["fast_weights"], ls="--", lw=1)
    finite = [v for v in shown if not np.isnan(v)]
    ax.set_xlim(0, max(finite + [1.0]) * 1.18)
    what = "test" if field == "test_error" else "final validation"
    ax.set_xlabel(f"{what} error (%)")
    ax.set_title("Each change from the baseline, one at a time", fontsize=11)
    plt.close(fig)
    return fig


def plot_grad_norms(records: dict[str, dict], cells: Sequence[str] = ("baseline", "clipping_off",
                                                                       "lr_3e-3")) -> Figure:
    """Mean gradient norm (before clipping) per evaluation interval, log scale."""
    use_house_style()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    palette = plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(cells)))
    for color, cell in zip(palette, cells):
        for name, record in records.items():
            if parse_name(name)[0] != cell:
                continue
            curves = record.get("curves", {})
            if not curves.get("step"):
                continue
            ax.plot(curves["step"], curves["grad_norm"], label=f"{CELL_LABELS[cell]} "
                    f"(seed {parse_name(name)[1]})",
                    color=MODEL_COLORS["fast_weights"] if cell == "baseline" else color)
    ax.axhline(5.0, color="k", ls=":", lw=1, label="clip threshold (5)")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("updates")
    ax.set_ylabel("gradient norm (mean per interval)")
    ax.set_title("Gradient norm before clipping", fontsize=11)
    ax.legend(fontsize=8)
    plt.close(fig)
    return fig


def clipping_activity(record: dict, threshold: float = 5.0) -> dict:
    """How often the interval-mean gradient norm of a run was above the clipping threshold.

    Returns ``{"above": n, "intervals": m, "last_above": update or None, "max": largest}``.
    """
    curves = record.get("curves") or {}
    steps, norms = curves.get("step", []), curves.get("grad_norm", [])
    above = [step for step, norm in zip(steps, norms) if norm > threshold]
    return {"above": len(above), "intervals": len(norms),
            "last_above": above[-1] if above else None, "max": max(norms) if norms else None}
