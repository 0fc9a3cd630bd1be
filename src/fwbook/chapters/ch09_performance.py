"""Chapter 9 (Performance): figures and computed prose from ``fwbook bench`` documents.

Everything here reads the documents the bench suites write (``results/bench/SUITE.json`` for
the published book, or a fresh quick run); nothing is measured or typed in. The measuring lives
in :mod:`fwbook.perf`, which this module does not import: a document is plain JSON.
"""

from __future__ import annotations

import statistics
from typing import Iterable


def machine_caption(document: dict) -> str:
    """'cpu: x86_64, 1 torch thread(s), 2 cores' (+ the load average when recorded)."""
    device = document.get("device", {})
    parts = [f"{device.get('type', '?')}: {device.get('name', '?')}",
             f"{device.get('torch_threads', '?')} torch thread(s)",
             f"{device.get('cpu_count', '?')} cores"]
    load = document.get("settings", {}).get("load_1min")
    if load and load.get("before") is not None:
        parts.append(f"load {load['before']:.1f}")
    return ", ".join(parts)


def _new_axes(size: tuple[float, float], columns: int = 1, **options):
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    return plt.subplots(1, columns, figsize=size, **options)


def plot_speedup(document: dict):
    """Bars: sequences/s of every FW (Eq. 4) training path at each R, × reference on top."""
    rows = document["rows"]
    hidden_sizes = sorted({row["hidden"] for row in rows})
    paths = list(dict.fromkeys(row["path"] for row in rows))
    figure, axis = _new_axes((8.5, 3.8))
    width = 0.8 / len(paths)
    for offset, path in enumerate(paths):
        by_hidden = {r["hidden"]: r for r in rows if r["path"] == path}
        values = [by_hidden[h]["seq_per_s"] if h in by_hidden else 0 for h in hidden_sizes]
        positions = [i + offset * width for i in range(len(hidden_sizes))]
        is_default = any(r.get("default") for r in by_hidden.values())
        bars = axis.bar(positions, values, width,
                        label=f"{path} (train's default)" if is_default else path)
        for bar, hidden in zip(bars, hidden_sizes):
            ratio = by_hidden.get(hidden, {}).get("ratio_to_reference")
            if ratio is not None:
                axis.annotate(f"{ratio:.1f}x", (bar.get_x() + bar.get_width() / 2,
                                                bar.get_height()), ha="center", va="bottom",
                              fontsize=7)
    axis.set_xticks([i + width * (len(paths) - 1) / 2 for i in range(len(hidden_sizes))])
    axis.set_xticklabels([f"R = {h}" for h in hidden_sizes])
    axis.set_ylabel("training sequences / s")
    axis.set_title(f"FW (Eq. 4) training paths\n{machine_caption(document)}", fontsize=9)
    axis.legend(frameon=False, fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def plot_memory_cost(document: dict):
    """Throughput of explicit vs Eq. 4 against H, one panel per sequence length T."""
    rows = document["rows"]
    lengths = sorted({row["seq_len"] for row in rows})
    figure, axes = _new_axes((3.2 * len(lengths), 3.2), len(lengths), sharey=True,
                             squeeze=False)
    for axis, length in zip(axes[0], lengths):
        for memory, label in (("explicit", "explicit A(t): B·H²"),
                              ("efficient", "Eq. 4: B·T·H")):
            points = sorted((r["hidden"], r["seq_per_s"]) for r in rows
                            if r["seq_len"] == length and r["memory"] == memory)
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"T = {length}")
        axis.set_xlabel("hidden units H")
    axes[0][0].set_ylabel("training sequences / s")
    axes[0][0].legend(frameon=False, fontsize=8)
    figure.suptitle(f"memory forms against H and T — {machine_caption(document)}", fontsize=9)
    figure.tight_layout()
    return figure


def plot_time_to_accuracy(document: dict):
    """Validation error against wall seconds for FW R = 20, thresholds marked."""
    figure, axis = _new_axes((6, 3.5))
    for result in document["rows"]:
        curve = result["curve"]
        axis.plot(curve["wall_s"], [100 * e for e in curve["val_error"]],
                  label=f"{result['step']} step")
        for mark in result["thresholds"]:
            if mark["wall_s"] is not None:
                axis.axvline(mark["wall_s"], linestyle=":", linewidth=0.8, color="grey")
    for mark in document["rows"][0]["thresholds"]:
        axis.axhline(100 * mark["val_error"], linestyle="--", linewidth=0.8, color="grey")
    axis.set_yscale("log")
    axis.set_xlabel("wall seconds from scratch")
    axis.set_ylabel("validation error (%)")
    axis.set_title(f"FW R = {document['rows'][0]['hidden']}: time to accuracy\n"
                   f"{machine_caption(document)}", fontsize=9)
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def plot_sweep(document: dict):
    """Models trained per hour (paper profile) per Table 1 cell, one by one and batched."""
    rows = document["rows"]
    figure, axis = _new_axes((max(6, 0.6 * len(rows)), 3.5))
    positions = range(len(rows))
    axis.bar([p - 0.2 for p in positions], [r["single_models_per_hour"] for r in rows], 0.4,
             label="one by one")
    axis.bar([p + 0.2 for p in positions], [r["batched_models_per_hour"] for r in rows], 0.4,
             label=f"{rows[0]['seeds']} seeds batched")
    steps = document["settings"]["grid"]["steps"]
    axis.set_xticks(list(positions))
    axis.set_xticklabels([f"{r['model']}\nR={r['hidden']}" for r in rows], fontsize=7)
    axis.set_ylabel(f"models / hour ({steps:,} updates each)")
    axis.set_title(f"Table 1 sweep throughput — {machine_caption(document)}", fontsize=9)
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def speedup_summary(document: dict) -> list[str]:
    """One sentence per R: every path as a multiple of the plain eager reference (and its
    GFLOP/s and fraction of the matmul rate at its shape), naming ``train``'s default."""
    lines = []
    for hidden in sorted({row["hidden"] for row in document["rows"]}):
        rows = {r["path"]: r for r in document["rows"] if r["hidden"] == hidden}
        parts = []
        for path, row in rows.items():
            if path == "reference":
                continue
            text = f"{path} path {row['ratio_to_reference']:.2f}x"
            if row.get("fraction_at_shape") is not None:
                text += (f", {row['gflops']:.1f} GFLOP/s = "
                         f"{row['fraction_at_shape']:.0%} of torch.mm at its shape")
            if row.get("compile_s"):
                text += f" (compile {row['compile_s']:.0f} s)"
            if row.get("default"):
                text += " [train's default]"
            parts.append(text)
        lines.append(f"R = {hidden}, as multiples of the plain eager reference "
                     f"({rows['reference']['seq_per_s']:,.0f} sequences/s):\n  "
                     + ",\n  ".join(parts))
    return lines


def ideas_summary(document: dict) -> list[str]:
    """What each idea of the speedup suite gained over the path it builds on, per R:
    'fused: hand-derived backward ... Against eager: 0.94x at R = 50, ...: did not pay.'"""
    lines = []
    for path in dict.fromkeys(row["path"] for row in document["rows"]):
        rows = sorted((r for r in document["rows"] if r["path"] == path and r.get("gain")),
                      key=lambda r: r["hidden"])
        if not rows:
            continue
        gains = ", ".join(f"{r['gain']:.2f}x at R = {r['hidden']}"
                          + (" (!)" if r.get("unsteady") else "") for r in rows)
        # beyond ±5% in every row counts; anything nearer 1 is within this machine's noise
        verdict = ("paid" if all(r["gain"] > 1.05 for r in rows) else
                   "did not pay" if all(r["gain"] < 0.95 for r in rows) else
                   "no clear gain (within the noise)")
        lines.append(f"{path}: {rows[0]['idea']}.\n  Against {rows[0]['compared_with']}: "
                     f"{gains}: {verdict}.")
    return lines


def target_summary(document: dict, target: float = 4.0) -> list[str]:
    """The speed target, per R: ``train``'s default step as a multiple of the plain eager
    reference (with its fraction of the measured matmul rate), the fastest step of one run,
    and the fastest path of all (batched seeds included), against ``target``."""
    load = document.get("settings", {}).get("load_1min", {})
    lines = []
    for hidden in sorted({row["hidden"] for row in document["rows"]}):
        rows = [r for r in document["rows"] if r["hidden"] == hidden]

        def described(row):
            return (f"{row['path']} {row['ratio_to_reference']:.2f}x the reference "
                    f"({row['fraction_at_shape']:.0%} of torch.mm at its shape"
                    + (", unsteady" if row.get("unsteady") else "") + ")")

        default = next((r for r in rows if r.get("default")), None)
        single = max((r for r in rows if not r["path"].startswith("batched")),
                     key=lambda r: r["ratio_to_reference"])
        fastest = max(rows, key=lambda r: r["ratio_to_reference"])
        text = f"R = {hidden}: train's default step: " + (described(default) if default
                                                            else "not measured")
        reached = default is not None and default["ratio_to_reference"] >= target
        text += f" - {'meets' if reached else 'short of'} the {target:g}x target"
        if single is not default:
            text += f"; fastest step of one run: {described(single)}"
        if fastest is not single:
            text += f"; fastest of all: {described(fastest)}"
        lines.append(text + ".")
    if load.get("before") is not None:
        lines.append(f"(load average over 1 min: {load['before']:.1f} at the start, "
                     f"{load['after']:.1f} at the end, on "
                     f"{document.get('device', {}).get('cpu_count', '?')} cores)")
    return lines


def row_key(row: dict) -> tuple:
    """What names a row of any suite: its model, memory, path, R and T, where present."""
    return tuple(row.get(field) for field in ("model", "memory", "path", "hidden", "seq_len"))


def rerun_spread(documents: Iterable[dict], field: str = "seq_per_s") -> list[dict]:
    """How far the medians of the same row moved between reruns of one suite, as rates and
    as ratios within each run.

    A row's ratio is its median over the median of the first row with the same R in the same
    run (the Eq. 4 row of the throughput suite, the reference of the speedup suite): a load
    that slows a whole run moves the rates but not the ratios.

    Args:
        documents: two or more documents of one suite (reruns of ``fwbook bench``).
        field: the row's median to compare.
    Returns:
        one ``{"key", "medians", "spread", "ratios", "ratio_spread", "unsteady_in"}`` per row
        present in every rerun; a spread is (max - min) / min over the reruns,
        ``unsteady_in`` how many reruns flagged the row; ``ratio_spread`` is None for the
        first row of each R (the one the others are divided by).
    """
    documents = list(documents)
    by_run = [{row_key(row): row for row in document["rows"]} for document in documents]
    keys = [key for key in by_run[0] if all(key in run for run in by_run)]
    first_of_hidden = {}
    for key in keys:
        first_of_hidden.setdefault(by_run[0][key].get("hidden"), key)

    def spread(values):
        return round((max(values) - min(values)) / min(values), 3)

    result = []
    for key in keys:
        medians = [run[key][field] for run in by_run]
        base = first_of_hidden[by_run[0][key].get("hidden")]
        ratios = [run[key][field] / run[base][field] for run in by_run]
        result.append({"key": key, "medians": medians, "spread": spread(medians),
                       "ratios": [round(r, 3) for r in ratios],
                       "ratio_spread": spread(ratios) if key != base else None,
                       "unsteady_in": sum(bool(run[key].get("unsteady")) for run in by_run)})
    return result


def rerun_summary(documents: Iterable[dict], limit: float = 0.15) -> list[str]:
    """The lines the chapter prints for reruns: each row's medians and their spread, the
    spread of its ratio within each run, and the verdict against ``limit`` (per-row medians
    within 15% of each other), with the load average at the start of each run."""
    documents = list(documents)
    spreads = rerun_spread(documents)
    loads = [document.get("settings", {}).get("load_1min", {}).get("before")
             for document in documents]
    lines = [f"{len(documents)} reruns; load average (1 min) at their start: "
             + ", ".join("?" if load is None else f"{load:.1f}" for load in loads),
             f"  {'row':<28} {'medians':>{9 * len(documents)}}   spread   ratio spread"]
    for item in spreads:
        name = " ".join(str(part) for part in item["key"] if part not in (None, "-"))
        lines.append(f"  {name:<28} " + " ".join(f"{m:>8,.0f}" for m in item["medians"])
                     + f"   {item['spread']:>6.0%}   "
                     + (f"{item['ratio_spread']:>6.0%}" if item["ratio_spread"] is not None
                        else f"{'base':>6}")
                     + (f"  (flagged unsteady in {item['unsteady_in']})"
                        if item["unsteady_in"] else ""))
    for name, field in (("medians", "spread"), ("ratios", "ratio_spread")):
        values = [item[field] for item in spreads if item[field] is not None]
        within = sum(value <= limit for value in values)
        lines.append(f"{name}: {within} of {len(values)} rows within {limit:.0%} across the "
                     f"reruns (widest {max(values):.0%}, median {statistics.median(values):.0%})")
    return lines
