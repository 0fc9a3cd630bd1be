"""How every benchmark times: interleaved blocks, min / median / max, unsteady rows flagged,
and the torch thread count measured rather than guessed.

On a machine shared with other work a burst of load lands on whatever runs at that moment.
:func:`interleaved_rates` therefore runs block r of every compared function before block r + 1
of any, so a burst weighs on all rows alike and the ratios between rows stay meaningful.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Iterable

import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.steps import plain_training_step

# A row whose fastest timed block is this much faster than its slowest, relative to its median
# ((max - min) / median), is flagged: the load of the machine changed too much while it ran.
SPREAD_LIMIT = 0.3


def interleaved_rates(step_functions: dict, items_per_call: int | dict, repeats: int,
                      calls_per_repeat: int, device: torch.device | str = "cpu",
                      wall_clock: bool = False) -> dict:
    """Time several step functions in interleaved blocks; min / median / max rate of each.

    Block r of every function runs before block r + 1 of any, so a burst of load on a shared
    machine lands on all rows alike instead of on one.

    Args:
        step_functions: name -> a callable doing one update.
        items_per_call: what one call counts for (sequences per update; 1 for updates;
            FLOPs for a matrix product), or a dict of it per name.
        repeats: timed blocks per function.
        calls_per_repeat: calls per timed block.
        wall_clock: time with the wall clock whatever :func:`timing_clock` would choose (to
            compare thread counts, which the CPU time of one thread cannot).
    Returns:
        name -> ``{"min", "median", "max", "spread", "unsteady"}`` in items per second;
        ``spread`` = (max - min) / median, ``unsteady`` = spread > :data:`SPREAD_LIMIT`.
    """
    device = torch.device(device)
    clock_name, clock = ("wall", time.perf_counter) if wall_clock else timing_clock(device)
    if not isinstance(items_per_call, dict):
        items_per_call = {name: items_per_call for name in step_functions}
    rates: dict[str, list[float]] = {name: [] for name in step_functions}
    for _ in range(repeats):
        for name, run_one in step_functions.items():
            start = clock()
            for _ in range(calls_per_repeat):
                run_one()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[name].append(calls_per_repeat * items_per_call[name] / (clock() - start))
    result = {}
    for name, values in rates.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median
        result[name] = {"min": min(values), "median": median, "max": max(values),
                        "spread": round(spread, 3), "unsteady": spread > SPREAD_LIMIT,
                        "clock": clock_name}
    return result


def timing_clock(device: torch.device) -> tuple[str, Callable[[], float]]:
    """The clock a timed block is read with: ``("thread_cpu", time.thread_time)`` when torch
    computes on the CPU in this one thread, else ``("wall", time.perf_counter)``.

    With one torch thread all of an update's arithmetic runs in the timing thread, so its CPU
    time is the time the update took on a core; unlike the wall clock, it does not count the
    moments another process held the core, which on a shared 2-core machine made reruns
    disagree by 40-120% (results/bench/repeat/). With more threads, or on a GPU, the work
    leaves this thread and only the wall clock sees it.
    """
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return "thread_cpu", time.thread_time
    return "wall", time.perf_counter


def rate_fields(stats: dict, unit: str = "seq_per_s", digits: int = 1) -> dict:
    """Row fields for one timed row: ``{unit}`` (the median), ``{unit}_min``, ``{unit}_max``,
    ``spread`` and ``unsteady``."""
    return {unit: round(stats["median"], digits), f"{unit}_min": round(stats["min"], digits),
            f"{unit}_max": round(stats["max"], digits), "spread": stats["spread"],
            "unsteady": stats["unsteady"], "clock": stats.get("clock", "wall")}


def spread_note(rows: list[dict]) -> str:
    """The line under a table: how the rows were timed and which ones are unsteady."""
    unsteady = [row for row in rows if row.get("unsteady")]
    clocks = sorted({row["clock"] for row in rows if row.get("clock")})
    timed = {"thread_cpu": "the timing thread's CPU time (1 torch thread: a core taken by "
                           "another process is not counted)", "wall": "the wall clock"}
    text = (f"timed by {' and '.join(timed[c] for c in clocks) or 'the wall clock'}; "
            f"min / median / max over interleaved timed blocks; '!' marks a row whose spread "
            f"(max - min) / median exceeds {SPREAD_LIMIT:.0%}: the machine's load changed "
            f"while it ran, do not trust its median")
    if unsteady:
        text += f" ({len(unsteady)} of {len(rows)} rows)"
    return text


def unsteady_mark(row: dict) -> str:
    """'!' after a row whose spread is too wide to trust, else a space."""
    return "!" if row.get("unsteady") else " "


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS does not give one)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def plain_step_of(config: ModelConfig, batch, device: torch.device, seed: int = 0):
    """A callable doing one plain eager update (Adam, clipping at 5) of a seeded model."""
    model = build_model(config, seed=seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return lambda: plain_training_step(model, optimizer, batch.inputs, batch.targets, 5.0)


# ------------------------------------- torch threads ----------------------------------------

def measure_threads(device: str = "cpu", candidates: Iterable[int] | None = None,
                    hidden: int = 100, repeats: int = 4, steps_per_repeat: int = 3) -> dict:
    """Which torch thread count trains fastest here: FW Eq. 4 at R = ``hidden``, the plain
    step, timed in interleaved blocks under each count (1 .. the cores, by default).

    Returns:
        ``{"chosen", "how": "measured", "seq_per_s": {threads: median}, "spread": {...}}``;
        ``chosen`` by :func:`pick_threads`.
    """
    torch_device = torch.device(device)
    cores = os.cpu_count() or 1
    candidates = sorted(set(candidates or range(1, min(cores, 2) + 1)))
    previous = torch.get_num_threads()
    batch = associative_retrieval(128, generator=torch.Generator().manual_seed(0))
    step = plain_step_of(ModelConfig(hidden=hidden), batch.to(torch_device), torch_device)

    def under(threads):
        def run_one():
            torch.set_num_threads(threads)
            step()
        return run_one

    paths = {threads: under(threads) for threads in candidates}
    try:
        for run_one in paths.values():
            run_one()
        stats = interleaved_rates(paths, 128, repeats, steps_per_repeat, torch_device,
                                  wall_clock=True)
    finally:
        torch.set_num_threads(previous)
    chosen = pick_threads({threads: value["median"] for threads, value in stats.items()})
    return {"chosen": chosen, "how": "measured", "hidden": hidden,
            "seq_per_s": {str(t): round(s["median"], 1) for t, s in stats.items()},
            "spread": {str(t): s["spread"] for t, s in stats.items()}}


# More threads are chosen only when they train this much faster than fewer: a narrower win is
# within the noise of a shared machine (1 thread 14,906 against 2 threads 15,165 seq/s chose 2
# once, and the run was then timed with the wall clock, all of its rows unsteady), while one
# thread keeps every update in the timing thread, whose CPU clock other processes do not move.
THREADS_MARGIN = 0.15


def pick_threads(medians: dict[int, float], margin: float = THREADS_MARGIN) -> int:
    """The thread count to use from measured medians (seq/s by count): the fewest threads
    unless a larger count is faster than every smaller one by more than ``margin``."""
    chosen = min(medians)
    for threads in sorted(medians):
        if medians[threads] > medians[chosen] * (1 + margin):
            chosen = threads
    return chosen


def choose_threads(threads: int | None, device: torch.device, quick: bool = False) -> dict:
    """Set torch's CPU thread count: ``threads`` when given, else the best measured one
    (:func:`measure_threads`; 1 on a 1-core machine and on a GPU, where it matters little;
    ``quick``: measured at R = 8 in a moment). Returns what was chosen and how, for the
    printout and the JSON."""
    if threads:
        choice = {"chosen": threads, "how": "asked for (--threads)"}
    elif device.type != "cpu" or (os.cpu_count() or 1) < 2:
        choice = {"chosen": 1, "how": "one core" if device.type == "cpu" else "GPU run"}
    elif quick:
        choice = measure_threads(str(device), hidden=8, repeats=1, steps_per_repeat=1)
    else:
        choice = measure_threads(str(device))
    torch.set_num_threads(choice["chosen"])
    return choice


def threads_line(choice: dict) -> str:
    """'torch threads: 1 (measured: 1 thread 20,000 seq/s, 2 threads 15,000 seq/s)'."""
    text = f"torch threads: {choice['chosen']} ({choice['how']}"
    if choice.get("seq_per_s"):
        text += ": " + ", ".join(f"{t} thread{'s' if t != '1' else ''} {rate:,.0f} seq/s"
                                 for t, rate in choice["seq_per_s"].items())
        text += f", FW Eq. 4 R = {choice.get('hidden', 100)}, plain step"
    return text + ")"
