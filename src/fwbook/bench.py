"""Throughput benchmarks: training sequences per second (forward + backward + Adam).

Every figure in one table is measured in the same process, so ratios between rows are
meaningful even on a noisy machine; each number is the median over several timed repeats.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Iterable

import torch

from .data import associative_retrieval
from .models import ModelConfig, build_model
from .records import device_description, write_json_atomic
from .train import plain_training_step, resolve_device

BENCH_HIDDEN = (20, 50, 100)
BENCH_MODELS = (("fast_weights", "efficient"), ("fast_weights", "explicit"), ("lstm", "-"))


def training_throughput(model_name: str, hidden: int, memory: str = "efficient",
                        batch_size: int = 128, device: str = "cpu", warmup: int = 5,
                        repeats: int = 5, steps_per_repeat: int = 20, seed: int = 0) -> float:
    """Median training throughput in sequences per second for one model.

    Args:
        model_name: one of ``fwbook.models.MODEL_NAMES``.
        hidden: R.
        memory: "efficient" or "explicit" (fast weights only).
        batch_size: sequences per update.
        device: a torch device string.
        warmup: untimed updates first.
        repeats: timed blocks; the median block is reported.
        steps_per_repeat: updates per timed block.
    """
    torch_device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    batch = associative_retrieval(batch_size, generator=generator).to(torch_device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = ModelConfig(model=model_name, hidden=hidden,
                             memory=memory if model_name == "fast_weights" else "efficient")
        model = build_model(config).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(count: int) -> None:
        for _ in range(count):
            plain_training_step(model, optimizer, batch.inputs, batch.targets, 5.0)
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)

    run(warmup)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps_per_repeat)
        rates.append(steps_per_repeat * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def throughput_table(hidden_sizes: Iterable[int] = BENCH_HIDDEN, batch_size: int = 128,
                     device: str = "cpu", repeats: int = 5, steps_per_repeat: int = 20
                     ) -> list[dict]:
    """Rows ``{"model", "memory", "hidden", "seq_per_s"}`` for every benchmarked model and R."""
    rows = []
    for hidden in hidden_sizes:
        for model_name, memory in BENCH_MODELS:
            rate = training_throughput(model_name, hidden, memory if memory != "-" else "efficient",
                                       batch_size, device, repeats=repeats,
                                       steps_per_repeat=steps_per_repeat)
            rows.append({"model": model_name, "memory": memory, "hidden": hidden,
                         "seq_per_s": round(rate, 1)})
    return rows


def format_table(rows: list[dict]) -> str:
    """A text table with, per R, the ratios Eq. 4 / explicit and Eq. 4 / LSTM."""
    lines = [f"{'R':>4}  {'model':<14}{'memory':<11}{'seq/s':>10}"]
    by_hidden: dict[int, dict[tuple, float]] = {}
    for row in rows:
        by_hidden.setdefault(row["hidden"], {})[(row["model"], row["memory"])] = row["seq_per_s"]
        lines.append(f"{row['hidden']:>4}  {row['model']:<14}{row['memory']:<11}"
                     f"{row['seq_per_s']:>10,.0f}")
    lines.append("")
    lines.append(f"{'R':>4}  {'Eq. 4 / explicit':>17}  {'Eq. 4 / LSTM':>13}")
    for hidden, rates in by_hidden.items():
        efficient = rates.get(("fast_weights", "efficient"))
        explicit = rates.get(("fast_weights", "explicit"))
        lstm = rates.get(("lstm", "-"))
        if efficient and explicit and lstm:
            lines.append(f"{hidden:>4}  {efficient / explicit:>16.2f}x  {efficient / lstm:>12.2f}x")
    return "\n".join(lines)


def run_bench(hidden_sizes=BENCH_HIDDEN, batch_size=128, device="auto", repeats=5,
              steps_per_repeat=20, json_path=None, threads=None) -> list[dict]:
    """Measure, print the table, optionally write JSON. Returns the rows."""
    torch_device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    rows = throughput_table(hidden_sizes, batch_size, str(torch_device), repeats, steps_per_repeat)
    described = device_description(torch_device)
    print(f"training throughput, batch {batch_size}, forward + backward + Adam, "
          f"median of {repeats} blocks of {steps_per_repeat} updates")
    print(f"device: {described['type']} ({described['name']}), torch threads: "
          f"{described['torch_threads']}")
    print(format_table(rows))
    if json_path is not None:
        write_json_atomic(Path(json_path), rows)
    return rows
