"""Chapter 8, agents with memory: the figures, tables and computed prose about Catch.

The game and the agents live in :mod:`fwbook.rl.catch` and :mod:`fwbook.rl.agents`; this
module reads their run records (or has a small profile trained) and turns them into what the
notebook shows. Spreads over seeds follow :mod:`fwbook.experiments.stats` (sample standard
deviation, ddof = 1; none for a single seed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

import numpy as np

from fwbook.experiments.stats import format_mean_std, summarize
from fwbook.rl.agents import CORES, RESULTS_DIR, load_records, run_profile
from fwbook.rl.catch import DEFAULT_SIZE, DEFAULT_VISIBLE_STEPS, play_episode_frames

CORE_NAMES = {"fast_weights": "fast weights", "irnn": "IRNN", "lstm": "LSTM"}


def chapter_records(profile: str, seed: int = 0, device: str = "auto") -> tuple[list[dict], str]:
    """The records the chapter shows, and a sentence saying where they came from.

    ``paper`` reads the committed records in ``results/catch`` (checked against the profile's
    configuration) and trains nothing; ``smoke`` and ``quick`` train every core on seeds
    ``seed, seed + 1, seed + 2`` here and now.
    """
    if profile == "paper":
        records = load_records(RESULTS_DIR, "paper")
        commits = sorted({r["commit"][:7] for r in records})
        return records, (
            f"Read {len(records)} committed run records from `results/catch/`; nothing was "
            f"trained. Each record names the commit its run started from ({len(commits)} "
            f"different ones, as other chapters were committed during the runs) and all were "
            f"checked against this profile's configuration.")
    records = run_profile(profile, seeds=(seed, seed + 1, seed + 2), device=device, quiet=True)
    return records, f"Trained {len(records)} runs in this notebook ({profile} profile)."


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


def elapsed_span_s(records: Sequence[dict]) -> float:
    """Seconds from the first run's start to the last run's end (runs may overlap in workers)."""
    ends = [datetime.fromisoformat(r["finished_at"]).timestamp() for r in records]
    starts = [end - r["wall_s"] for end, r in zip(ends, records)]
    return max(ends) - min(starts)


def runs_paragraph(records: Sequence[dict], source: str) -> str:
    """Markdown: where the runs came from, their cores, seeds, budget and wall time."""
    first = records[0]
    seeds = sorted({r["seed"] for r in records})
    wall = sum(r["wall_s"] for r in records)
    return (
        f"{source} Cores: {', '.join(CORES)}; seeds {', '.join(map(str, seeds))}. "
        f"Each run saw {first['curves']['episodes'][-1]:,} training episodes. "
        f"Together the runs took {_duration(wall)} of wall time (sum over runs; "
        f"{first['device']['type']}, {first['device']['torch_threads']} thread per run, "
        f"torch {first['versions']['torch']}); the slowest run took "
        f"{_duration(max(r['wall_s'] for r in records))}, and from the first start to the last "
        f"finish {_duration(elapsed_span_s(records))} passed.")


# --------------------------------------------------------------------------------------------
# Summaries over seeds
# --------------------------------------------------------------------------------------------

def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumulative[idx] - cumulative[lo]) / (idx - lo)


def episodes_to_reach(record: dict, threshold: float, window: int = 4) -> Optional[int]:
    """Episodes until the smoothed training catch rate first reaches ``threshold`` (or None)."""
    rates = smooth(np.asarray(record["curves"]["catch_rate"]), window)
    hits = np.nonzero(rates >= threshold)[0]
    return int(record["curves"]["episodes"][hits[0]]) if len(hits) else None


def summarize_by_core(records: Sequence[dict], threshold: float = 0.8, stable: float = 0.95
                      ) -> list[dict]:
    """One row per core, aggregated over its seeds.

    ``final``, ``auc``, ``reach`` and ``wall_s`` are :func:`fwbook.experiments.stats.summarize`
    results (n, mean, std with ddof = 1, min, max) of: the final greedy catch rate; the mean
    training catch rate over the whole run (area under the learning curve / its length); the
    episodes until the smoothed training catch rate first reached ``threshold``, counting a
    seed that never got there as the whole budget; the wall time per run.
    ``episodes_to_threshold`` lists the per-seed episodes (None where a seed never got there);
    ``worst_after_stable`` is the lowest smoothed training catch rate of any seed after it first
    reached ``stable`` (how steady learning stays; None if no seed got there).
    """
    rows = []
    for core in CORES:
        group = [r for r in records if r["config"]["core"] == core]
        if not group:
            continue
        reach = [episodes_to_reach(r, threshold) for r in group]
        budget = [r["curves"]["episodes"][-1] for r in group]
        after = []
        for r in group:
            rates = smooth(np.asarray(r["curves"]["catch_rate"]), 4)
            hits = np.nonzero(rates >= stable)[0]
            if len(hits):
                after.append(float(rates[hits[0]:].min()))
        rows.append({
            "core": core, "seeds": [r["seed"] for r in group],
            "final": summarize(r["final_greedy_catch_rate"] for r in group),
            "auc": summarize(np.mean(r["curves"]["catch_rate"]) for r in group),
            "reach": summarize(b if e is None else e for e, b in zip(reach, budget)),
            "episodes_to_threshold": reach, "threshold": threshold,
            "stable": stable, "worst_after_stable": min(after) if after else None,
            "wall_s": summarize(r["wall_s"] for r in group),
        })
    return rows


def _episodes(summary: dict) -> str:
    text = f"{summary['mean']:,.0f}"
    return text if summary["std"] is None else f"{text} ± {summary['std']:,.0f}"


def summary_table(rows: Sequence[dict]):
    """The chapter's table (a pandas DataFrame indexed by core) of :func:`summarize_by_core`."""
    import pandas as pd

    threshold = f"{rows[0]['threshold']:.0%}"
    return pd.DataFrame({
        "core": [r["core"] for r in rows],
        "seeds": [len(r["seeds"]) for r in rows],
        f"episodes to {threshold}": [
            "—" if all(e is None for e in r["episodes_to_threshold"]) else
            ("≥ " if None in r["episodes_to_threshold"] else "") + _episodes(r["reach"])
            for r in rows],
        f"episodes to {threshold}, per seed": [
            ", ".join("—" if e is None else f"{e / 1000:.1f}k" for e in r["episodes_to_threshold"])
            for r in rows],
        "mean catch rate over training": [format_mean_std(r["auc"], digits=3) for r in rows],
        "final greedy catch rate": [format_mean_std(r["final"], digits=3) for r in rows],
        "worst after 95%": ["—" if r["worst_after_stable"] is None else
                            f"{r['worst_after_stable']:.2f}" for r in rows],
        "wall time per run (s)": [f"{r['wall_s']['mean']:.1f}" for r in rows],
    }).set_index("core")


def _compare(fast: float, other: float, noise: Optional[float], higher_is_better: bool) -> str:
    """"clear" only when the margin exceeds the spread over seeds (never without one)."""
    margin = (fast - other) if higher_is_better else (other - fast)
    if margin == 0:
        return "tie"
    if margin < 0:
        return "against"
    return "clear" if noise is not None and margin > noise else "within noise"


def _noise(*summaries: dict) -> Optional[float]:
    spreads = [s["std"] for s in summaries]
    return None if None in spreads else max(spreads)


def learning_speed_verdict(rows: Sequence[dict]) -> str:
    """A short paragraph, computed from :func:`summarize_by_core` rows: do fast weights learn
    fastest?

    Two measures of speed, each against the *better* of the other cores on that measure:
    episodes until the training catch rate first reaches the threshold (fewer is faster) and
    the mean training catch rate over the whole run (higher is faster). A margin counts as
    clear only when it is larger than the spread (standard deviation) over seeds of either
    core; a smaller positive margin, or one with a single seed, is "within noise".
    """
    by_core = {row["core"]: row for row in rows}
    if "fast_weights" not in by_core or len(by_core) < 2:
        return "Not enough cores to compare."
    fast = by_core["fast_weights"]
    others = [row for row in rows if row["core"] != "fast_weights"]
    quickest = min(others, key=lambda row: row["reach"]["mean"])
    highest = max(others, key=lambda row: row["auc"]["mean"])
    reach = _compare(fast["reach"]["mean"], quickest["reach"]["mean"],
                     _noise(fast["reach"], quickest["reach"]), higher_is_better=False)
    area = _compare(fast["auc"]["mean"], highest["auc"]["mean"],
                    _noise(fast["auc"], highest["auc"]), higher_is_better=True)
    outcomes = (reach, area)
    favour = sum(o in ("clear", "within noise") for o in outcomes)
    against = outcomes.count("against")
    if outcomes == ("clear", "clear"):
        head = "Yes."
    elif "clear" in outcomes and not against:
        head = "Yes, but not by a clear margin on every measure."
    elif favour and not against:
        head = "Not clearly: fast weights are ahead, but within the spread over seeds."
    elif not favour:
        head = "No."
    else:
        head = "Partly: the two measures disagree."
    threshold = f"{fast['threshold']:.0%}"
    if all(e is None for row in rows for e in row["episodes_to_threshold"]):
        reach_text = f"No run reached a training catch rate of {threshold} within its budget."
    else:
        reach_text = (
            f"Episodes until the training catch rate first reached {threshold} (a run that "
            f"never did counts as its whole budget): {_episodes(fast['reach'])} for fast "
            f"weights against {_episodes(quickest['reach'])} for the "
            f"{CORE_NAMES[quickest['core']]}, the quicker control ({reach}).")
    return (
        f"{head} {reach_text} Mean training catch rate over the run: "
        f"{format_mean_std(fast['auc'], digits=3)} against "
        f"{format_mean_std(highest['auc'], digits=3)} for the {CORE_NAMES[highest['core']]} "
        f"({area}). (Mean ± standard deviation over seeds.)")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def plot_episode(size: int = DEFAULT_SIZE, visible_steps: int = DEFAULT_VISIBLE_STEPS,
                 ball_column: int = 1, every: int = 1):
    """Figure: the frames the agent sees (top) against the true state (bottom, grey = the
    ball the agent can no longer see).

    Returns: the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    observed, full, reward = play_episode_frames(size, visible_steps, ball_column)
    frames = list(range(0, len(observed), every))
    fig, axes = plt.subplots(2, len(frames), figsize=(1.1 * len(frames) + 0.6, 2.9),
                             squeeze=False)
    cmap = ListedColormap(["#f4f4f4", "#9aa5b1", "#222222"])  # empty, hidden ball, drawn
    for col, t in enumerate(frames):
        for row, (images, name) in enumerate(((observed, "agent sees"), (full, "true state"))):
            ax = axes[row, col]
            ax.imshow(images[t], cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(f"t={t}" + (" (ball)" if t < visible_steps else ""), fontsize=8)
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
    outcome = "catch (+1)" if reward > 0 else "miss (-1)"
    fig.suptitle(f"Catch {size}x{size}, ball visible in the first {visible_steps} frames: "
                 f"{outcome}", fontsize=10)
    return fig


def plot_learning_curves(records: Sequence[dict], metric: str = "catch_rate",
                         window: int = 4, ax=None):
    """Learning curves per core: mean over seeds (line) and min-max over seeds (band).

    Args:
        records: run records from :func:`fwbook.rl.agents.train` / ``load_records``.
        metric: "catch_rate" or "mean_return".
        window: points of trailing moving average applied to each seed before aggregating.
    Returns:
        the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import MODEL_COLORS, MODEL_LABELS, use_house_style

    use_house_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for core in CORES:
        group = [r for r in records if r["config"]["core"] == core]
        if not group:
            continue
        episodes = np.asarray(group[0]["curves"]["episodes"])
        curves = np.stack([smooth(np.asarray(r["curves"][metric]), window) for r in group])
        color = MODEL_COLORS[core]
        ax.plot(episodes, curves.mean(0), color=color, lw=2,
                label=f"{MODEL_LABELS[core]} ({len(group)} seeds)")
        ax.fill_between(episodes, curves.min(0), curves.max(0), color=color, alpha=0.2, lw=0)
    config = records[0]["config"]
    ax.set_xlabel("training episodes")
    ax.set_ylabel("catch rate" if metric == "catch_rate" else "mean return")
    if metric == "catch_rate":
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_title(f"Catch {config['size']}x{config['size']}, ball visible for "
                 f"{config['visible_steps']} frames")
    ax.legend(loc="best", frameon=True)
    return ax
