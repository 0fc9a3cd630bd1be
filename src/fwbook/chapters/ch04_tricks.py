"""Chapter 04 (the bag of tricks, measured): the ablation grid's figures, table and verdicts.

The grid itself (cells, budgets, what is trained, the seed statistics of a cell and when two
cells are told apart) is :mod:`fwbook.experiments.ablations`; this module turns its records
into the chapter's table, figures and sentences. Every number in the sentences comes from the
records; a cell with one seed is said to have one seed.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from fwbook.chapters.plots import MODEL_COLORS, use_house_style
from fwbook.core.data import PAPER_NUM_PAIRS, value_only_error
from fwbook.experiments.ablations import (ABLATION_CELLS, ABLATION_GROUPS, BASELINE_LABELS,
                                          CELL_LABELS, GROUP_TITLES, TIE_RATIO, ablation_name,
                                          cell_runs, cell_stats, cell_status, clipping_activity,
                                          compare_stats, parse_name, run_status, seed_coverage,
                                          seed_list, seeds_word, stalled_runs)

def coverage_summary(records: dict[str, dict], seeds: Iterable[int]) -> str:
    """One sentence: how many of the asked-for seeds each cell has (from the records)."""
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    coverage = seed_coverage(records, seeds)
    full = [cell for cell, have in coverage.items() if len(have) == len(seeds)]
    partial = {cell: have for cell, have in coverage.items() if 0 < len(have) < len(seeds)}
    absent = [cell for cell, have in coverage.items() if not have]
    text = (f"Seeds asked for: {seed_list(seeds)}. {len(full)} of {len(coverage)} cells have "
            f"all of them")
    if partial:
        text += ("; fewer seeds, shown with the seeds they have: " + ", ".join(
            f"{CELL_LABELS[cell]} (n = {len(have)}: {seeds_word(have)})"
            for cell, have in partial.items()))
    if absent:
        text += "; not run: " + ", ".join(CELL_LABELS[cell] for cell in absent)
    return text + "."


def _failed_text(failed: dict[int, str]) -> str:
    """``{0: "diverged at update 23"}`` -> "seed 0 diverged at update 23"."""
    return ", ".join(f"seed {seed} {status}" for seed, status in failed.items())


def stats_text(stats: dict) -> str:
    """A cell's errors in words: "2.92% ± 0.23% (n = 3; seeds 0, 1, 2: 3.09%, 2.76%, 2.90%)".

    n = 1: "3.09% (n = 1, seed 0)"; no finished run: its status with the seed, or "not run".
    Failed (diverged) seeds are named after the values, "not averaged in".
    """
    if not stats["seeds"]:
        return "not run"
    if stats["n"] == 0:
        return "; ".join(f"{status} (seed {seed})" for seed, status in stats["failed"].items())
    values = stats["values"]
    if stats["n"] == 1:
        text = f"{stats['mean']:.2%} (n = 1, seed {next(iter(values))}"
    else:
        text = (f"{stats['mean']:.2%} ± {stats['std']:.2%} (n = {stats['n']}; "
                f"{seeds_word(list(values))}: "
                + ", ".join(f"{value:.2%}" for value in values.values()))
    if stats["failed"]:
        text += f"; {_failed_text(stats['failed'])}, not averaged in"
    return text + ")"


# A single-seed verdict on the memory (η = 0 against η = 0.5) needs at least this ratio.
STRONG_RATIO = 1.5


def group_summary(records: dict[str, dict], group: str, field: str = "test_error") -> str:
    """One sentence with the measured errors of a group against the baseline, over seeds."""
    if group not in GROUP_TITLES:
        raise ValueError(f"unknown ablation group {group!r}; the groups are "
                         f"{', '.join(ABLATION_GROUPS)}")
    stats = {cell: cell_stats(records, cell, field) for cell in _group_cells(group)}
    parts = []
    for cell in _group_cells(group)[1:]:
        comparison = compare_stats(stats[cell], stats["baseline"], CELL_LABELS[cell])
        parts.append(f"{CELL_LABELS[cell]}: {stats_text(stats[cell])}"
                     + (f", {comparison['text']}" if comparison["text"] else ""))
    what = "test error" if field == "test_error" else "final validation error"
    return (f"{GROUP_TITLES[group]}: baseline ({BASELINE_LABELS[group]}) "
            f"{stats_text(stats['baseline'])} {what}; " + "; ".join(parts) + "."
            + _lowest_text(stats, group))


def _lowest_text(stats: dict[str, dict], group: str) -> str:
    """" Lowest in this group: …", and which settings it cannot be told apart from."""
    measured = {cell: s for cell, s in stats.items() if s["n"] > 0}
    if len(measured) < 2:
        return ""
    winner = min(measured, key=lambda cell: measured[cell]["mean"])
    comparisons = {cell: compare_stats(s, measured[winner], _label(cell, group),
                                       _label(winner, group))
                   for cell, s in measured.items() if cell != winner}
    close = [cell for cell, c in comparisons.items() if c["kind"] in ("overlap", "tie")]
    rules = {c["rule"] for c in comparisons.values()}
    how = {frozenset({"ranges"}): "on every seed",
           frozenset({"one seed"}): f"by the {TIE_RATIO:g}× rule at one seed"}.get(
        frozenset(rules), f"on every seed, or by the {TIE_RATIO:g}× rule where a cell has "
                          f"one seed")
    if not close:
        return f" Lowest in this group: {_label(winner, group)}, below every other setting {how}."
    return (f" Lowest mean in this group: {_label(winner, group)}, not told apart from "
            + ", ".join(_label(cell, group) for cell in close) + ".")


def eta_zero_verdict(records: dict[str, dict], field: str = "test_error") -> str:
    """The chapter's answer to "depth of the inner loop, or the fast memory?", from records.

    Compares the baseline (η = 0.5) with η = 0 (which is exactly an LN-IRNN initialised like
    the fast-weights model, see :func:`fwbook.experiments.ablations.eta_zero_equals_ln_irnn`)
    and with S = 2, 3, over the seeds each cell has (:func:`compare_stats` says when two cells
    differ).
    """
    base = cell_stats(records, "baseline", field)
    off = cell_stats(records, "fast_lr_0", field)
    if base["n"] == 0 or off["n"] == 0:
        return ("The η = 0 comparison needs a finished baseline run and a finished η = 0 run; "
                f"baseline: {stats_text(base)}, η = 0: {stats_text(off)}.")
    what = "test error" if field == "test_error" else "final validation error"
    text = (f"With the memory switched off (η = 0) the {what} is {stats_text(off)}; with it on "
            f"(η = 0.5) {stats_text(base)}. ")
    comparison = compare_stats(off, base, "η = 0", "η = 0.5")
    ratio = comparison["ratio"] if comparison["ratio"] is not None else float("inf")
    memory = (" Since η = 0 leaves the inner loop nothing to do (the network is then an "
              "LN-IRNN with the same layer norm and ReLU per step), this gap is the fast "
              "memory's contribution, not the inner loop's depth.")
    if comparison["rule"] == "ranges":
        if comparison["kind"] == "higher":
            text += (f"Every η = 0 seed ends above every η = 0.5 seed "
                     f"({comparison['note']}); switching the fast memory off multiplies the "
                     f"mean error by {ratio:.1f}." + memory)
        elif comparison["kind"] == "lower":
            text += (f"At this budget switching the fast memory off does not hurt: every η = 0 "
                     f"seed ends below every η = 0.5 seed ({comparison['note']}), and the gain "
                     f"of the full model cannot be credited to the fast memory.")
        else:
            text += (f"The two cannot be told apart at this budget ({comparison['text']}): "
                     f"more seeds or a longer budget would be needed to credit or deny the "
                     f"fast memory.")
    elif off["mean"] > base["mean"] and ratio >= STRONG_RATIO:
        text += (f"Switching the fast memory off multiplies the error by {ratio:.1f} "
                 f"({comparison['note']})." + memory)
    elif off["mean"] > base["mean"]:
        text += (f"Switching the fast memory off raises the error only {ratio:.2f}-fold at this "
                 f"budget: a small gap, too small to settle the question from one seed.")
    else:
        text += (f"At this budget switching the fast memory off does not hurt "
                 f"({comparison['note']}): here the layer-normalised recurrence alone does as "
                 f"well, and the gain of the full model cannot be credited to the fast memory.")
    return text + _depth_text(records, base, field)


def _depth_text(records: dict[str, dict], base: dict, field: str) -> str:
    """The S = 2, 3 cells against S = 1 (the baseline), in words."""
    deeper = {cell: cell_stats(records, cell, field) for cell in ("inner_steps_2",
                                                                  "inner_steps_3")}
    deeper = {cell: stats for cell, stats in deeper.items() if stats["n"] > 0}
    if not deeper:
        return ""
    text = " More inner steps (more depth *with* the memory on): " + "; ".join(
        f"{CELL_LABELS[cell]} {stats_text(stats)}" for cell, stats in deeper.items()) + "."
    comparisons = [compare_stats(stats, base, CELL_LABELS[cell], "S = 1")
                   for cell, stats in deeper.items()]
    kinds = {c["kind"] for c in comparisons}
    how = ("on every seed" if {c["rule"] for c in comparisons} == {"ranges"}
           else f"by the {TIE_RATIO:g}× rule, with only one seed in some cell")
    if kinds == {"higher"}:
        text += (f" Extra depth did not help at this budget: every deeper model ended with a "
                 f"higher error than S = 1, {how}.")
    elif kinds == {"lower"}:
        text += f" Here extra inner steps did lower the error further, {how}."
    elif kinds <= {"tie", "overlap"}:
        text += (" No deeper model is told apart from S = 1: "
                 + "; ".join(f"{CELL_LABELS[cell]}: {c['text']}"
                             for cell, c in zip(deeper, comparisons)) + ".")
    else:
        text += (" The deeper models are not all on one side of S = 1: "
                 + "; ".join(f"{CELL_LABELS[cell]}: {c['text']}"
                             for cell, c in zip(deeper, comparisons)) + ".")
    return text


def layer_norm_verdict(records: dict[str, dict], field: str = "test_error") -> str:
    """What happened to each seed without layer norm, and whether any came near the baseline."""
    off = cell_stats(records, "layer_norm_off", field)
    base = cell_stats(records, "baseline", field)
    if not off["seeds"]:
        return "The run without layer norm has not been run."
    events = ([f"seed {seed} {status}" for seed, status in off["failed"].items()]
              + [f"seed {seed} finished at {value:.2%}" for seed, value in off["values"].items()])
    text = (f"Without layer norm ({len(off['seeds'])} seed{'s' if len(off['seeds']) > 1 else ''}"
            f" run): " + ", ".join(events) + ".")
    comparison = compare_stats(off, base, "LN off")
    far = comparison["kind"] == "higher" and comparison["ratio"] is not None and (
        comparison["ratio"] >= STRONG_RATIO)
    if base["n"] > 0 and (far or (off["failed"] and not off["values"])):
        outcomes = [("diverged", "blow up"), (f"ended far above the baseline "
                                               f"({comparison['text']})",
                                               "do not learn the task at this budget")]
        outcomes = [pair for pair, present in zip(outcomes, (off["failed"], off["values"]))
                    if present]
        text += (f" Every seed without layer norm {' or '.join(o[0] for o in outcomes)}: "
                 f"nothing bounds the fast term $A(t) h_s$, whose size grows with every write "
                 f"(chapter 2), so with the paper's η and λ the runs without it "
                 f"{' or '.join(o[1] for o in outcomes)}. With this recipe (clipping at 5), "
                 f"layer norm is what makes the fast memory trainable, not a refinement.")
    elif comparison["text"]:
        text += f" Against the baseline: {comparison['text']}."
    return text


def stall_summary(records: dict[str, dict], cells: Sequence[str] = ("inner_steps_2",
                                                                     "inner_steps_3"),
                  band: float = 0.02) -> str:
    """Do the runs of ``cells`` stall at the value-only level, seed by seed? From records.

    Also names every other run of the grid that sits at the same level (see
    :func:`stalled_runs` for the criterion).
    """
    stalled = stalled_runs(records, band)
    labels = " and ".join(CELL_LABELS[cell] for cell in cells)
    runs = {(cell, seed): record for cell in cells
            for seed, record in cell_runs(records, cell).items()}
    finished = {key: record for key, record in runs.items()
                if record.get("status") == "completed" and (record.get("curves") or {}).get("step")}
    if not finished:
        return f"No finished run of {labels} to look at."
    level = value_only_error()
    hits = [key for key in finished if ablation_name(*key) in stalled]
    per_cell = "; ".join(
        f"{CELL_LABELS[cell]}: {len([k for k in hits if k[0] == cell])} of "
        f"{len([k for k in finished if k[0] == cell])} ("
        + ", ".join(f"seed {seed} {records[ablation_name(cell, seed)]['test_error']:.2%}"
                    for c, seed in finished if c == cell) + " test error)"
        for cell in cells if any(k[0] == cell for k in finished))
    text = (f"Runs of {labels} whose validation error stayed within {100 * band:g} points of "
            f"{level:.2%} over the second half of training: {per_cell}. ")
    if len(hits) == len(finished):
        text += (f"All {len(finished)} finished run{'s' if len(finished) > 1 else ''} of "
                 f"{labels} stall there. ")
    elif hits:
        left = [key for key in finished if key not in hits]
        text += ("The stall does not hold for every seed: "
                 + ", ".join(f"{CELL_LABELS[cell]} seed {seed}" for cell, seed in left)
                 + " left that level. ")
    else:
        text += "None of them stalls there. "
    failed = {key: run_status(record) for key, record in runs.items() if key not in finished}
    if failed:
        text += ("Not finished: " + ", ".join(f"{CELL_LABELS[cell]} seed {seed} ({status})"
                                              for (cell, seed), status in failed.items()) + ". ")
    others: dict[str, list[int]] = {}
    for name in stalled:
        cell, seed = parse_name(name)
        if cell not in cells:
            others.setdefault(cell, []).append(seed)
    if others:
        text += ("Other runs of the grid at the same level: " + ", ".join(
            f"{CELL_LABELS[cell]} ({seeds_word(sorted(seeds))})"
            for cell, seeds in others.items()) + ". ")
    return text + (f"{level:.2%} is the error of a reader that ignores the query and answers "
                   f"the most frequent digit among the {PAPER_NUM_PAIRS} values "
                   f"(`value_only_error()`, exact): a run at this level behaves like a network "
                   f"that has learnt which digits occur in the sequence, not which key holds "
                   f"which.")


def ablation_table(records: dict[str, dict]) -> "pandas.DataFrame":  # noqa: F821
    """One row per cell of the grid (``ABLATION_CELLS`` order), summarised over its seeds.

    Columns: group, setting, seeds (with a record), n (finished), test error % mean, sd
    (sample), min, max, per seed ("seed: value"), final validation error % mean and sd,
    status (with seeds), and records (the record paths, or run names, behind the row).
    Cells without any record appear with n = 0 and status "not run".
    """
    import pandas as pd

    def percent(value):
        return None if value is None else round(100 * value, 2)

    rows = []
    for group, cell, _ in ABLATION_CELLS:
        test = cell_stats(records, cell, "test_error")
        val = cell_stats(records, cell, "final_val_error")
        runs = cell_runs(records, cell)
        rows.append({
            "group": group, "setting": CELL_LABELS[cell], "seeds": seed_list(test["seeds"]),
            "n": test["n"], "test error % mean": percent(test["mean"]),
            "sd": percent(test["std"]), "min": percent(test["min"]), "max": percent(test["max"]),
            "per seed": ", ".join(f"{seed}: {100 * value:.2f}"
                                  for seed, value in test["values"].items()),
            "final val error % mean": percent(val["mean"]), "val sd": percent(val["std"]),
            "status": cell_status(records, cell) or "not run",
            "records": ", ".join(record.get("path") or ablation_name(cell, seed)
                                 for seed, record in runs.items())})
    return pd.DataFrame(rows)


def _group_cells(group: str) -> list[str]:
    return ["baseline"] + [name for g, name, _ in ABLATION_CELLS if g == group]


def _label(cell: str, group: str) -> str:
    return f"{BASELINE_LABELS[group]} (baseline)" if cell == "baseline" else CELL_LABELS[cell]


def _mean_curve(runs: dict[int, dict], key: str) -> tuple[list, Optional[np.ndarray], int]:
    """(steps, mean over runs of curves[key], n) over the completed runs that share the first
    completed run's steps; (steps, None, 0) when there is none."""
    complete = [record["curves"] for record in runs.values()
                if record.get("status") == "completed" and (record.get("curves") or {}).get(key)]
    if not complete:
        return [], None, 0
    steps = list(complete[0]["step"])
    same = [np.asarray(curves[key], dtype=float) for curves in complete
            if list(curves["step"]) == steps]
    return steps, np.mean(same, axis=0), len(same)


def plot_ablation_curves(records: dict[str, dict], groups: Sequence[str] = ABLATION_GROUPS,
                         ncols: int = 4, log: bool = True) -> Figure:
    """Validation error against updates, one panel per ablation group, baseline in every panel.

    Every seed is a thin line, the mean over a cell's completed seeds a thick one (the legend
    gives n); a dotted line is a run that diverged (never averaged in).

    Args:
        records: ``{run name: record}`` as from
            :func:`fwbook.experiments.ablations.load_ablation_records` or a sweep.
        groups: which groups to draw, from ``ABLATION_GROUPS``.
        log: logarithmic error axis (0.1% .. 100%), so 1% and 5% are told apart.
    """
    use_house_style()
    groups = list(groups)
    unknown = [group for group in groups if group not in GROUP_TITLES]
    if unknown:
        raise ValueError(f"unknown ablation group(s) {unknown}; the groups are "
                         f"{', '.join(ABLATION_GROUPS)}")
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False,
                             sharey=True)

    def shown(errors):
        values = 100 * np.asarray(errors, dtype=float)
        return np.clip(values, 0.1, None) if log else values  # an error of 0 at the floor

    for ax, group in zip(axes.flat, groups):
        cells = _group_cells(group)
        palette = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, max(len(cells) - 1, 1)))
        for index, cell in enumerate(cells):
            color = MODEL_COLORS["fast_weights"] if cell == "baseline" else palette[index - 1]
            runs = cell_runs(records, cell)
            for seed, record in runs.items():
                curves = record.get("curves") or {}
                if record.get("status") != "completed":
                    ax.plot(curves.get("step") or [], shown(curves.get("val_error") or []),
                            color=color, ls=":", lw=1.0,
                            label=f"{_label(cell, group)}, seed {seed}: {run_status(record)}")
                elif curves.get("step"):
                    ax.plot(curves["step"], shown(curves["val_error"]), color=color, lw=0.7,
                            alpha=0.45)
            steps, mean, n = _mean_curve(runs, "val_error")
            if n:
                ax.plot(steps, shown(mean), color=color, lw=2.4 if cell == "baseline" else 1.7,
                        label=f"{_label(cell, group)} (n = {n})")
        ax.set_title(GROUP_TITLES[group], fontsize=10)
        ax.set_xlabel("updates")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(0.1, 100)
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="upper right" if not log else "lower left")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation error (%)")
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.suptitle("Ablations of the fast-weights model (R = 20), one change at a time: "
                 "thin lines single seeds, thick the mean over n seeds", fontweight="bold")
    plt.close(fig)
    return fig


def plot_ablation_bars(records: dict[str, dict], field: str = "test_error") -> Figure:
    """Error of every cell: the mean over its finished seeds as a bar, each seed as a dot;
    the baseline's mean is the dashed line. Diverged seeds are named, not drawn."""
    use_house_style()
    cells = [name for _, name, _ in ABLATION_CELLS]
    stats = [cell_stats(records, cell, field) for cell in cells]
    fig, ax = plt.subplots(figsize=(7.5, 0.4 * len(cells) + 1.2))
    y = np.arange(len(cells))
    means = [np.nan if s["mean"] is None else 100 * s["mean"] for s in stats]
    colors = [MODEL_COLORS["fast_weights"] if c == "baseline" else
              MODEL_COLORS["ln_irnn"] if c == "fast_lr_0" else "#95a5a6" for c in cells]
    ax.barh(y, means, color=colors, alpha=0.8)
    largest = [1.0]
    for yi, s in zip(y, stats):
        dots = [100 * value for value in s["values"].values()]
        ax.plot(dots, [yi] * len(dots), "o", color="k", ms=3.5, zorder=3,
                label="each seed" if dots and len(largest) == 1 else None)
        largest += dots
        if s["n"]:
            text = (f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}%" if s["n"] > 1
                    else f"{100 * s['mean']:.2f}%")
        else:
            text = stats_text(s)
        ax.text(max(dots) if dots else 0, yi, f"  {text}", va="center", fontsize=7.5)
    ax.set_yticks(y, [f"{CELL_LABELS[c]} (n = {s['n']}"
                      + "".join(f", seed {seed} {status.split(' at ')[0]}"
                                for seed, status in s["failed"].items()) + ")"
                      for c, s in zip(cells, stats)])
    ax.invert_yaxis()
    baseline = stats[0]["mean"]
    if baseline is not None:
        ax.axvline(100 * baseline, color=MODEL_COLORS["fast_weights"], ls="--", lw=1,
                   label="baseline mean")
    ax.set_xlim(0, max(largest) * 1.35)
    what = "test" if field == "test_error" else "final validation"
    ax.set_xlabel(f"{what} error (%)")
    ax.set_title("Mean ± sd over n seeds (bars), each seed (dots)", fontsize=10)
    if any(s["n"] for s in stats):
        ax.legend(fontsize=8, loc="lower right")
    plt.close(fig)
    return fig


def plot_grad_norms(records: dict[str, dict], cells: Sequence[str] = ("baseline", "clipping_off",
                                                                       "lr_3e-3")) -> Figure:
    """Mean gradient norm (before clipping) per evaluation interval, log scale: every seed thin,
    the mean over a cell's completed seeds thick (legend gives n)."""
    use_house_style()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    palette = plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(cells)))
    for color, cell in zip(palette, cells):
        color = MODEL_COLORS["fast_weights"] if cell == "baseline" else color
        runs = cell_runs(records, cell)
        for record in runs.values():
            curves = record.get("curves") or {}
            if curves.get("step") and curves.get("grad_norm"):
                ax.plot(curves["step"], curves["grad_norm"], color=color, lw=0.7, alpha=0.45)
        steps, mean, n = _mean_curve(runs, "grad_norm")
        if n:
            ax.plot(steps, mean, color=color, lw=1.8, label=f"{CELL_LABELS[cell]} (n = {n})")
    ax.axhline(5.0, color="k", ls=":", lw=1, label="clip threshold (5)")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("updates")
    ax.set_ylabel("gradient norm (mean per interval)")
    ax.set_title("Gradient norm before clipping (thin: seeds, thick: mean)", fontsize=11)
    ax.legend(fontsize=8)
    plt.close(fig)
    return fig


def clipping_summary(records: dict[str, dict], cell: str = "baseline", threshold: float = 5.0
                     ) -> str:
    """Seed by seed, how often a cell's interval-mean gradient norm exceeded the threshold."""
    runs = {seed: record for seed, record in cell_runs(records, cell).items()
            if (record.get("curves") or {}).get("grad_norm")}
    if not runs:
        return f"No run of {CELL_LABELS[cell]} has a gradient-norm curve."
    parts, lasts, ends = [], [], []
    for seed, record in runs.items():
        activity = clipping_activity(record, threshold)
        end = record["curves"]["step"][-1]
        ends.append(end)
        part = (f"seed {seed}: " if len(runs) > 1 else "") + (
            f"{activity['above']} of {activity['intervals']} intervals")
        if activity["above"]:
            lasts.append(activity["last_above"])
            part += f" (the last ending at update {activity['last_above']:,} of {end:,})"
        parts.append(part)
    who = f"In the {CELL_LABELS[cell]} ({seeds_word(list(runs))})"
    if not lasts:
        return (f"{who} the interval-mean gradient norm never exceeds the threshold "
                f"({threshold:g}).")
    text = (f"{who} the interval-mean gradient norm is above the threshold ({threshold:g}) in "
            + "; ".join(parts) + ".")
    if len(lasts) == len(runs) and all(last <= end / 2 for last, end in zip(lasts, ends)):
        text += " Clipping acts above all in the first half of training."
    return text
