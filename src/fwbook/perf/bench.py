"""``fwbook bench``: the suites, what each prints, and the documents they write.

Every suite times the rows it compares in interleaved blocks (:mod:`fwbook.perf.timing`) in one
process, so the ratios between rows are meaningful on a shared machine; each prints min /
median / max and flags rows whose spread is too wide to trust. The suites live beside this
module: :mod:`~fwbook.perf.throughput` (throughput, cost), :mod:`~fwbook.perf.speedup`,
:mod:`~fwbook.perf.flops`, :mod:`~fwbook.perf.sweep_throughput`,
:mod:`~fwbook.perf.time_to_accuracy` and :mod:`~fwbook.perf.backend_bench` (backends).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import torch

from fwbook.core.records import REPO_ROOT, provenance, write_json_atomic
from fwbook.core.train import resolve_device
from fwbook.perf.timing import choose_threads, load_average, spread_note, threads_line

SUITES = ("throughput", "speedup", "flops", "cost", "sweep", "tta", "backends")
# timed blocks per row: many short ones for throughput (a burst of load then moves a few of
# 15 blocks of every row, and the median less), 5 for the others
DEFAULT_REPEATS = {"throughput": 15}
# what `--suite all` runs: every suite but the backends, which times whole `fwbook sweep`
# commands (minutes per sweep) and is asked for by name
DEFAULT_ALL = SUITES[:-1]


def bench_document(suite: str, rows, device: str, settings: dict) -> dict:
    """A committed benchmark result: the rows plus provenance (commit, versions, device)."""
    return {"suite": suite, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": settings, **provenance(torch.device(device)),
            "timing": "medians of interleaved timed blocks within one process; ratios are "
                      "the meaningful figures on a shared machine",
            "rows": rows}


def hardware_label(document: dict) -> str:
    """'cpu: x86_64, 1 torch thread(s), 2 cores' - the line every printout starts with."""
    device = document.get("device", {})
    return (f"{device.get('type', '?')}: {device.get('name', '?')}, "
            f"{device.get('torch_threads', '?')} torch thread(s), "
            f"{device.get('cpu_count', '?')} cores")


def _throughput(device, sizes, block, options):
    from fwbook.perf.throughput import BENCH_HIDDEN, format_table, throughput_table

    # short blocks (DEFAULT_REPEATS): 5 blocks of 10 updates moved the ratios between rows
    # by 19-40% from one rerun to the next at a load of 11-14 (results/bench/repeat/blocks10)
    rows = throughput_table(sizes(BENCH_HIDDEN), options["batch_size"], device,
                            options["repeats"], block(3))
    return rows, format_table(rows), {}


def _speedup(device, sizes, block, options):
    from fwbook.perf.speedup import SPEEDUP_HIDDEN, format_speedup, speedup_table

    rows = speedup_table(sizes(SPEEDUP_HIDDEN), options["batch_size"], device,
                         options["repeats"], block(10),
                         compiled=options["compiled"] and not options["quick"],
                         cold_compile=options["cold_compile"])
    cache = "cold (caches off)" if options["cold_compile"] else "warm (on-disk caches)"
    return rows, format_speedup(rows), {"compile_cache": cache}


def _flops(device, sizes, block, options):
    from fwbook.perf.flops import flops_table, format_flops

    models = ("fast_weights", "lstm") if options["quick"] else None
    rows = flops_table(models, sizes((20, 50, 100)), options["batch_size"], device,
                       options["repeats"], block(5))
    return rows, format_flops(rows), {}


def _cost(device, sizes, block, options):
    from fwbook.perf.throughput import COST_HIDDEN, COST_PAIRS, format_cost, memory_cost_table

    hidden_sizes, pairs = ((8, 16), (1, 2)) if options["quick"] else (COST_HIDDEN, COST_PAIRS)
    rows = memory_cost_table(hidden_sizes, pairs, options["batch_size"], device,
                             options["repeats"], 1 if options["quick"] else 3)
    return rows, format_cost(rows), {}


def _sweep(device, sizes, block, options):
    from fwbook.perf.sweep_throughput import BENCH_HIDDEN, grid_hours, sweep_throughput
    from fwbook.perf.timing import unsteady_mark

    models, hidden_sizes = ((("fast_weights", "lstm"), (8,)) if options["quick"]
                            else (("irnn", "lstm", "alstm", "fast_weights"), BENCH_HIDDEN))
    rows = sweep_throughput(models, hidden_sizes, 3, options["batch_size"], device,
                            options["repeats"], 1 if options["quick"] else 4)
    grid = grid_hours(rows)
    text = "\n".join(f"{r['model']:<13}R={r['hidden']:>4} one by one "
                     f"{r['single_models_per_hour']:>7.1f}/h  batched "
                     f"{r['batched_models_per_hour']:>7.1f}/h ({r['batched_speedup']:.2f}x)"
                     f" {unsteady_mark(r)}" for r in rows)
    text += (f"\nprojected grid (paper profile, evaluation excluded): {grid['single_hours']} h "
             f"one by one, {grid['batched_hours']} h batched (one process)\n" + spread_note(rows))
    return rows, text, {"grid": grid}


def _tta(device, sizes, block, options):
    from fwbook.perf.time_to_accuracy import time_to_accuracy

    if options["quick"]:
        rows = [time_to_accuracy(8, (0.9, 0.5), 20, 10, device=device, num_validation=200)]
    else:
        rows = [time_to_accuracy(20, (0.05, 0.02), 40_000, 500, device=device)]
    text = "\n".join(f"R={r['hidden']} {r['step']} step: " + ", ".join(
        f"<= {t['val_error']:.0%} after {t['updates']} updates / {t['wall_s']} s"
        if t["updates"] else f"<= {t['val_error']:.0%} not reached in {r['max_updates']}"
        for t in r["thresholds"]) for r in rows)
    return rows, text + "\n(one run from scratch: nothing to interleave)", {}


MEASURE = {"throughput": _throughput, "speedup": _speedup, "flops": _flops, "cost": _cost,
           "sweep": _sweep, "tta": _tta}


def _backends(quick: bool, repeats: int) -> tuple[dict, str]:
    """The backends suite: whole ``fwbook sweep`` commands, local against Ray, ABBA."""
    from fwbook.perf.backend_bench import measure_backends, summary

    document = (measure_backends(runs=1, rounds=1, workers=1, profile="smoke") if quick
                else measure_backends(rounds=max(2, repeats // 2)))
    return document, "\n".join(summary(document))


def run_suite(suite: str, device: str = "auto", output_dir=None, quick: bool = False,
              threads: int | None = None, repeats: int | None = None, compiled: bool = True,
              hidden: Iterable[int] | None = None, batch_size: int = 128,
              steps_per_repeat: int | None = None, json_path=None,
              thread_choice: dict | None = None, cold_compile: bool = True) -> dict:
    """Measure one suite, print a summary and (with ``output_dir``) write ``{suite}.json``.

    ``quick`` shrinks every suite to seconds (tests, smoke checks); the committed results under
    ``results/bench`` come from full runs. ``threads``: torch CPU threads; None measures which
    count is fastest here (:func:`~fwbook.perf.timing.choose_threads`; ``thread_choice``
    passes one made before). ``repeats``: timed blocks per row (None: the suite's, 15 short
    blocks for throughput, 5 for the others). ``hidden``, ``batch_size`` and ``steps_per_repeat`` override the
    suite's sizes (throughput, speedup and flops). ``json_path``: also write the suite's rows,
    as printed, there (the backends suite: its sweeps). ``cold_compile=False`` lets the
    speedup suite's compiles use inductor's on-disk caches. The machine's 1-minute load
    average before and after is kept in the document's settings.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}; got {suite!r}")
    repeats = repeats or DEFAULT_REPEATS.get(suite, 5)
    torch_device = resolve_device(device)
    choice = thread_choice or choose_threads(threads, torch_device, quick)
    torch.set_num_threads(choice["chosen"])
    name = str(torch_device)
    load_before = load_average()
    if suite == "backends":
        document, text = _backends(quick, repeats)
        rows = document["sweeps"]
    else:
        options = {"quick": quick, "repeats": repeats, "batch_size": batch_size,
                   "compiled": compiled, "cold_compile": cold_compile}

        def sizes(default, tiny=(8,)):
            return tuple(hidden) if hidden else (tiny if quick else default)

        def block(default):
            return steps_per_repeat or (2 if quick else default)

        rows, text, extra = MEASURE[suite](name, sizes, block, options)
        settings = {"quick": quick, "repeats": repeats, "batch_size": batch_size,
                    "threads": choice, **extra,
                    "load_1min": {"before": load_before, "after": load_average()}}
        document = bench_document(suite, rows, name, settings)
    print(f"{suite} — device: {hardware_label(document)}; load average (1 min) "
          f"{load_before} before, {load_average()} after")
    print(threads_line(choice))
    print(text)
    if output_dir is not None:
        write_json_atomic(Path(output_dir) / f"{suite}.json", document)
    if json_path is not None:
        write_json_atomic(Path(json_path), rows)
    return document


def json_paths(json_path, suites) -> dict:
    """Where ``--json PATH`` puts each suite's rows: PATH itself for one suite, else one file
    per suite beside it, ``STEM.SUITE.json``."""
    json_path = Path(json_path)
    if len(suites) == 1:
        return {suites[0]: json_path}
    return {suite: json_path.with_name(f"{json_path.stem}.{suite}{json_path.suffix or '.json'}")
            for suite in suites}


def load_bench(suite: str, directory=None) -> dict | None:
    """The committed result of ``suite`` (``results/bench/{suite}.json``), or None."""
    path = Path(directory or REPO_ROOT / "results" / "bench") / f"{suite}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())
