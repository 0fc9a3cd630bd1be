"""Training throughput of the plain eager step: the models against each other, and the two
memory forms of the fast weights against H and T.

Sequences per second of one training update (forward, backward, clipping at 5, Adam), every
row of a table timed in interleaved blocks (:func:`fwbook.perf.timing.interleaved_rates`).
"""

from __future__ import annotations

from typing import Iterable

import torch

from fwbook.core.data import associative_retrieval, sequence_length
from fwbook.core.models import ModelConfig
from fwbook.perf.timing import (interleaved_rates, plain_step_of, rate_fields, spread_note,
                                unsteady_mark)

BENCH_HIDDEN = (20, 50, 100)
BENCH_MODELS = (("fast_weights", "efficient"), ("fast_weights", "explicit"), ("lstm", "-"))
COST_HIDDEN = (20, 50, 100, 200)
COST_PAIRS = (4, 9, 19)  # K; T = 2K + 3 = 11, 21, 41 tokens


def throughput_table(hidden_sizes: Iterable[int] = BENCH_HIDDEN, batch_size: int = 128,
                     device: str = "cpu", repeats: int = 5, steps_per_repeat: int = 10,
                     warmup: int = 3, seed: int = 0) -> list[dict]:
    """Training throughput (forward + backward + Adam, the plain eager step) of every
    benchmarked model and R, all rows timed in interleaved blocks.

    Returns:
        rows ``{"model", "memory", "hidden", "seq_per_s", "seq_per_s_min", "seq_per_s_max",
        "spread", "unsteady"}``; ``seq_per_s`` is the median block.
    """
    torch_device = torch.device(device)
    batch = associative_retrieval(batch_size, generator=torch.Generator().manual_seed(seed))
    batch = batch.to(torch_device)
    paths, keys = {}, {}
    for hidden in hidden_sizes:
        for model_name, memory in BENCH_MODELS:
            config = ModelConfig(model=model_name, hidden=hidden,
                                 memory=memory if memory != "-" else "efficient")
            name = f"{model_name}/{memory}/{hidden}"
            paths[name] = plain_step_of(config, batch, torch_device, seed)
            keys[name] = {"model": model_name, "memory": memory, "hidden": hidden}
    for run_one in paths.values():
        for _ in range(warmup):
            run_one()
    stats = interleaved_rates(paths, batch_size, repeats, steps_per_repeat, torch_device)
    return [{**keys[name], **rate_fields(stats[name])} for name in paths]


def format_table(rows: list[dict]) -> str:
    """A text table (min / median / max) with, per R, the ratios Eq. 4 / explicit and
    Eq. 4 / LSTM of the medians."""
    lines = [f"{'R':>4}  {'model':<14}{'memory':<11}{'min':>9}{'median':>9}{'max':>9}  seq/s"]
    by_hidden: dict[int, dict[tuple, float]] = {}
    for row in rows:
        by_hidden.setdefault(row["hidden"], {})[(row["model"], row["memory"])] = row["seq_per_s"]
        low = row.get("seq_per_s_min", row["seq_per_s"])
        high = row.get("seq_per_s_max", row["seq_per_s"])
        lines.append(f"{row['hidden']:>4}  {row['model']:<14}{row['memory']:<11}"
                     f"{low:>9,.0f}{row['seq_per_s']:>9,.0f}{high:>9,.0f} {unsteady_mark(row)}")
    lines.append(spread_note(rows))
    lines.append("")
    lines.append(f"{'R':>4}  {'Eq. 4 / explicit':>17}  {'Eq. 4 / LSTM':>13}")
    for hidden, rates in by_hidden.items():
        efficient = rates.get(("fast_weights", "efficient"))
        explicit = rates.get(("fast_weights", "explicit"))
        lstm = rates.get(("lstm", "-"))
        if efficient and explicit and lstm:
            lines.append(f"{hidden:>4}  {efficient / explicit:>16.2f}x  {efficient / lstm:>12.2f}x")
    return "\n".join(lines)


def memory_cost_table(hidden_sizes: Iterable[int] = COST_HIDDEN,
                      pair_counts: Iterable[int] = COST_PAIRS, batch_size: int = 128,
                      device: str = "cpu", repeats: int = 3, steps_per_repeat: int = 3
                      ) -> list[dict]:
    """Training throughput of the explicit (B·H² per step) and Eq. 4 (B·t·H) forms vs H and T.

    Returns:
        rows ``{"hidden", "seq_len", "memory", "seq_per_s" (+ min, max, spread, unsteady),
        "state_floats_per_step"}`` where the last is the size of the fast memory carried by
        one step, B·H² for the explicit form and B·T·H (at the last step) for Eq. 4.
    """
    torch_device = torch.device(device)
    rows = []
    for num_pairs in pair_counts:
        batch = associative_retrieval(batch_size, num_pairs=num_pairs,
                                      generator=torch.Generator().manual_seed(0)).to(torch_device)
        steps = sequence_length(num_pairs)
        for hidden in hidden_sizes:
            paths = {memory: plain_step_of(ModelConfig(model="fast_weights", hidden=hidden,
                                                       memory=memory), batch, torch_device)
                     for memory in ("explicit", "efficient")}
            for run_one in paths.values():
                run_one()
            stats = interleaved_rates(paths, batch_size, repeats, steps_per_repeat,
                                      torch_device)
            for memory, value in stats.items():
                floats = batch_size * hidden * (hidden if memory == "explicit" else steps)
                rows.append({"hidden": hidden, "seq_len": steps, "memory": memory,
                             **rate_fields(value), "state_floats_per_step": floats})
    return rows


def format_cost(rows: list[dict]) -> str:
    """The cost suite as text: one line per T, H and memory form."""
    lines = [f"T={r['seq_len']:>3} H={r['hidden']:>4} {r['memory']:<10}"
             f"{r['seq_per_s_min']:>9,.0f}{r['seq_per_s']:>9,.0f}"
             f"{r['seq_per_s_max']:>9,.0f} seq/s {unsteady_mark(r)}" for r in rows]
    return "\n".join(lines + [spread_note(rows)])
