"""Throughput benchmarks: training sequences per second (forward + backward + Adam).

Every figure in one table is measured in the same process, so ratios between rows are
meaningful even on a noisy machine; each number is the median over several timed repeats.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Iterable

import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.records import device_description, write_json_atomic
from fwbook.core.train import plain_training_step, resolve_device

BENCH_HIDDEN = (20, 50, 100)
BENCH_MODELS = (("fast_weights", "efficient"), ("fast_weights", "explicit"), ("lstm", "-"))


# A row whose fastest timed block is this much faster than its slowest, relative to its median
# ((max - min) / median), is flagged: the load of the machine changed too much while it ran.
SPREAD_LIMIT = 0.3


def interleaved_rates(step_functions: dict, items_per_call: int, repeats: int,
                      calls_per_repeat: int, device: torch.device | str = "cpu") -> dict:
    """Time several step functions in interleaved blocks; min / median / max rate of each.

    Block r of every function runs before block r + 1 of any, so a burst of load on a shared
    machine lands on all rows alike instead of on one.

    Args:
        step_functions: name -> a callable doing one update.
        items_per_call: what one call counts for (sequences per update; 1 for updates;
            FLOPs for a matrix product), or a dict of it per name.
        repeats: timed blocks per function.
        calls_per_repeat: calls per timed block.
    Returns:
        name -> ``{"min", "median", "max", "spread", "unsteady"}`` in items per second;
        ``spread`` = (max - min) / median, ``unsteady`` = spread > :data:`SPREAD_LIMIT`.
    """
    device = torch.device(device)
    if not isinstance(items_per_call, dict):
        items_per_call = {name: items_per_call for name in step_functions}
    rates: dict[str, list[float]] = {name: [] for name in step_functions}
    for _ in range(repeats):
        for name, run_one in step_functions.items():
            start = time.perf_counter()
            for _ in range(calls_per_repeat):
                run_one()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[name].append(calls_per_repeat * items_per_call[name]
                               / (time.perf_counter() - start))
    result = {}
    for name, values in rates.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median
        result[name] = {"min": min(values), "median": median, "max": max(values),
                        "spread": round(spread, 3), "unsteady": spread > SPREAD_LIMIT}
    return result


def rate_fields(stats: dict, unit: str = "seq_per_s", digits: int = 1) -> dict:
    """Row fields for one timed row: ``{unit}`` (the median), ``{unit}_min``, ``{unit}_max``,
    ``spread`` and ``unsteady``."""
    return {unit: round(stats["median"], digits), f"{unit}_min": round(stats["min"], digits),
            f"{unit}_max": round(stats["max"], digits), "spread": stats["spread"],
            "unsteady": stats["unsteady"]}


def spread_note(rows: list[dict]) -> str:
    """The line under a table: how the rows were timed and which ones are unsteady."""
    unsteady = [row for row in rows if row.get("unsteady")]
    text = (f"min / median / max over interleaved timed blocks; '!' marks a row whose spread "
            f"(max - min) / median exceeds {SPREAD_LIMIT:.0%}: the machine's load changed "
            f"while it ran, do not trust its median")
    if unsteady:
        text += f" ({len(unsteady)} of {len(rows)} rows)"
    return text


def _mark(row: dict) -> str:
    return "!" if row.get("unsteady") else " "


def _seeded_model(config: ModelConfig, seed: int, device: torch.device):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config).to(device)


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
            model = _seeded_model(config, seed, torch_device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            name = f"{model_name}/{memory}/{hidden}"
            paths[name] = (lambda m=model, o=optimizer: plain_training_step(
                m, o, batch.inputs, batch.targets, 5.0))
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
                     f"{low:>9,.0f}{row['seq_per_s']:>9,.0f}{high:>9,.0f} {_mark(row)}")
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


# ------------------------------------- torch threads ----------------------------------------

def measure_threads(device: str = "cpu", candidates: Iterable[int] | None = None,
                    hidden: int = 100, repeats: int = 4, steps_per_repeat: int = 3) -> dict:
    """Which torch thread count trains fastest here: FW Eq. 4 at R = ``hidden``, the plain
    step, timed in interleaved blocks under each count (1 .. the cores, by default).

    Returns:
        ``{"chosen", "how": "measured", "seq_per_s": {threads: median}, "spread": {...}}``;
        ``chosen`` is the count with the highest median.
    """
    import os

    torch_device = torch.device(device)
    cores = os.cpu_count() or 1
    candidates = sorted(set(candidates or range(1, min(cores, 2) + 1)))
    previous = torch.get_num_threads()
    batch = associative_retrieval(128, generator=torch.Generator().manual_seed(0))
    model = _seeded_model(ModelConfig(hidden=hidden), 0, torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def under(threads):
        def run_one():
            torch.set_num_threads(threads)
            plain_training_step(model, optimizer, batch.inputs, batch.targets, 5.0)
        return run_one

    paths = {threads: under(threads) for threads in candidates}
    try:
        for run_one in paths.values():
            run_one()
        stats = interleaved_rates(paths, 128, repeats, steps_per_repeat, torch_device)
    finally:
        torch.set_num_threads(previous)
    chosen = max(stats, key=lambda threads: stats[threads]["median"])
    return {"chosen": chosen, "how": "measured", "hidden": hidden,
            "seq_per_s": {str(t): round(s["median"], 1) for t, s in stats.items()},
            "spread": {str(t): s["spread"] for t, s in stats.items()}}


def choose_threads(threads: int | None, device: torch.device, quick: bool = False) -> dict:
    """Set torch's CPU thread count: ``threads`` when given, else the best measured one
    (:func:`measure_threads`; 1 on a 1-core machine and on a GPU, where it matters little;
    ``quick``: measured at R = 8 in a moment). Returns what was chosen and how, for the
    printout and the JSON."""
    import os

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


def run_bench(hidden_sizes=BENCH_HIDDEN, batch_size=128, device="auto", repeats=5,
              steps_per_repeat=10, json_path=None, threads=None) -> list[dict]:
    """The throughput suite as ``fwbook bench`` runs it: measure, print, optionally write
    the rows as JSON. Returns the rows."""
    document = run_suite("throughput", device, threads=threads, repeats=repeats,
                         hidden=hidden_sizes, batch_size=batch_size,
                         steps_per_repeat=steps_per_repeat)
    if json_path is not None:
        write_json_atomic(Path(json_path), document["rows"])
    return document["rows"]


# --------------------------------------------------------------------------------------------
# The plain eager reference, the fast paths, time to accuracy, sweep throughput, memory cost
# --------------------------------------------------------------------------------------------

SPEEDUP_HIDDEN = (50, 100)
COST_HIDDEN = (20, 50, 100, 200)
COST_PAIRS = (4, 9, 19)  # K; T = 2K + 3 = 11, 21, 41 tokens


class ReferenceEagerCore(torch.nn.Module):
    """A plain eager Eq. 4 recurrence, kept as the fixed yardstick of the speed targets.

    This is the first implementation of ``FastWeightsCore`` (one ``drive[:, t]`` slice, one
    ``torch.cat`` of the past and batched matrix-vector products per step), frozen here so
    that "x times faster than plain eager" is measured against the same code in every run.
    It has ``FastWeightsCore``'s parameters, so it can load a fast-weights model's weights.
    """

    def __init__(self, core) -> None:
        super().__init__()
        self.hidden, self.decay, self.fast_lr = core.hidden, core.decay, core.fast_lr
        self.inner_steps = core.inner_steps
        self.recurrent = core.recurrent
        self.norm = core.norm

    def forward(self, drive: torch.Tensor, record: bool = False):
        batch, steps, _ = drive.shape
        h = drive.new_zeros(batch, self.hidden)  # (B, H)
        past = drive.new_zeros(batch, 0, self.hidden)  # (B, t, H)
        outputs = []
        for t in range(steps):
            slow = h @ self.recurrent.T + drive[:, t]  # (B, H)
            hs = torch.relu(slow)
            exponents = torch.arange(past.shape[1] - 1, -1, -1, dtype=h.dtype)
            decay_weights = torch.pow(torch.as_tensor(self.decay, dtype=h.dtype), exponents)
            for _ in range(self.inner_steps):
                similarity = torch.bmm(past, hs.unsqueeze(2)).squeeze(2)  # (B, t)
                weights = self.fast_lr * decay_weights * similarity  # (B, t)
                fast = torch.bmm(weights.unsqueeze(1), past).squeeze(1)  # (B, H)  Eq. 4
                hs = torch.relu(self.norm(slow + fast))
            h = hs
            past = torch.cat([past, h.unsqueeze(1)], 1)
            outputs.append(h)
        return torch.stack(outputs, 1), None


def reference_eager_model(hidden: int, seed: int = 0):
    """A fast-weights model (Eq. 4) whose recurrence is :class:`ReferenceEagerCore`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(ModelConfig(model="fast_weights", hidden=hidden))
    model.core = ReferenceEagerCore(model.core)
    return model


def _median_rates(step_functions: dict, batch_size: int, repeats: int, steps_per_repeat: int,
                  device: torch.device) -> dict[str, float]:
    """Median rate of each step function, timed in interleaved blocks."""
    stats = interleaved_rates(step_functions, batch_size, repeats, steps_per_repeat, device)
    return {name: value["median"] for name, value in stats.items()}


@contextlib.contextmanager
def cold_compile_caches():
    """Switch off inductor's FX-graph and AOTAutograd caches, so a compile inside is timed as
    on a machine that never compiled the graph (with them, a repeat compile takes seconds)."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    with inductor_config.patch(fx_graph_cache=False), \
            functorch_config.patch(enable_autograd_cache=False):
        yield


# The training paths of FW (Eq. 4) the speedup suite times: what each tries, and the path it
# is compared with ("gain" in the rows is its median over that path's).
SPEEDUP_PATHS = {
    "reference": ("the plain eager Eq. 4 recurrence, autograd backward (the yardstick)", None),
    "eager": ("the package's Eq. 4 forward (η λ^k once, element-wise attention, h(0) = 0 "
              "skipped), autograd backward: train(step='eager')", "reference"),
    "compiled": ("torch.compile of forward and autograd backward, foreach clip and Adam: "
                 "train(step='compiled')", "eager"),
    "fused": ("hand-derived backward of the whole recurrence (fwbook.perf.fused_eq4), "
              "one dW product, foreach clip and Adam, eager", "eager"),
    "fused_bmm": ("the hand-derived backward with the attention as batched matrix products "
                  "(bmm) instead of element-wise products", "fused"),
    "fused_compiled": ("the hand-derived backward handed to torch.compile", "compiled"),
}
COMPILED_PATHS = ("compiled", "fused_compiled")


def speedup_table(hidden_sizes: Iterable[int] = SPEEDUP_HIDDEN, batch_size: int = 128,
                  device: str = "cpu", repeats: int = 5, steps_per_repeat: int = 10,
                  compiled: bool = True, warmup: int = 3,
                  paths: Iterable[str] = tuple(SPEEDUP_PATHS),
                  cold_compile: bool = True) -> list[dict]:
    """The training paths of FW Eq. 4 (:data:`SPEEDUP_PATHS`) against the plain eager
    reference, in one process, and how close each comes to this machine's matrix kernels.

    Blocks of all paths alternate, so machine load hits them alike. ``default`` marks the path
    ``train`` picks by itself (``step="auto"``) for a run of the paper profile. ``compile_s``
    of a compiled path is a cold compile (inductor's caches off). ``gflops`` is the analytic
    FLOPs of one update (:func:`fwbook.perf.flops.training_flops`) times updates per second;
    ``fraction_at_shape`` divides it by ``torch.mm``'s rate at the step's (B x H) @ (H x H)
    product, ``fraction_of_large`` by its rate at 512³, both timed in the same interleaved
    blocks as the paths.

    Returns:
        rows ``{"hidden", "path", "idea", "compared_with", "default", "seq_per_s" (+ min, max,
        spread, unsteady), "ratio_to_reference", "gain", "compile_s", "flops_per_update",
        "gflops", "fraction_at_shape", "fraction_of_large"}`` and, in ``matmul``, the rates.
    """
    from fwbook.perf.flops import LARGE, matmul_call, training_flops
    from fwbook.perf.fused_eq4 import fused_training_step
    from fwbook.core.steps import compiled_training_step

    torch_device = torch.device(device)
    batch = associative_retrieval(batch_size, generator=torch.Generator().manual_seed(0))
    batch = batch.to(torch_device)
    wanted = [p for p in SPEEDUP_PATHS if p in paths and (compiled or p not in COMPILED_PATHS)]
    rows = []
    for hidden in hidden_sizes:
        config = ModelConfig(model="fast_weights", hidden=hidden)
        steps, compile_s = {}, {}
        for name in wanted:
            if name == "reference":
                model = reference_eager_model(hidden).to(torch_device)
            else:
                model = _seeded_model(config, 0, torch_device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            if name in ("reference", "eager"):
                steps[name] = (lambda m=model, o=optimizer: plain_training_step(
                    m, o, batch.inputs, batch.targets, 5.0))
                continue
            if name == "compiled":
                step = compiled_training_step(model, optimizer, 5.0)
            else:
                step = fused_training_step(model, optimizer, 5.0,
                                           compile=name == "fused_compiled",
                                           bmm=name == "fused_bmm")
            with (cold_compile_caches() if cold_compile else contextlib.nullcontext()):
                step(batch.inputs, batch.targets)  # compiles (cold: as on a new machine)
            if name in COMPILED_PATHS:
                if not step.compiled:  # compiling failed here: nothing to time
                    continue
                compile_s[name] = round(step.compile_s, 1)
            steps[name] = lambda s=step: s(batch.inputs, batch.targets)
        items = {name: batch_size for name in steps}
        # the matrix kernels, timed in the same interleaved blocks (rates in FLOP/s)
        flops = training_flops("fast_weights", hidden, batch_size)["total"]
        # each call does about one update's FLOPs, so its blocks last about as long as the
        # steps' (a block much shorter than a scheduler time slice escapes the machine's load)
        steps["mm@shape"], items["mm@shape"] = matmul_call(
            batch_size, hidden, hidden, _products(flops, batch_size, hidden, hidden))
        steps["mm@large"], items["mm@large"] = matmul_call(
            LARGE, LARGE, LARGE, _products(flops, LARGE, LARGE, LARGE))
        for run_one in steps.values():
            for _ in range(warmup):
                run_one()
        stats = interleaved_rates(steps, items, repeats, steps_per_repeat, torch_device)
        at_shape = {"gflops": round(stats.pop("mm@shape")["median"] / 1e9, 2)}
        large = {"gflops": round(stats.pop("mm@large")["median"] / 1e9, 2)}
        default_path = default_training_path("fast_weights", torch_device)
        if default_path not in stats:  # compiling failed here: train falls back to eager
            default_path = "eager"
        reference_rate = stats["reference"]["median"] if "reference" in stats else None
        for name, value in stats.items():
            gflops = flops * value["median"] / batch_size / 1e9
            base = SPEEDUP_PATHS[name][1]
            rows.append({
                "hidden": hidden, "path": name, "idea": SPEEDUP_PATHS[name][0],
                "compared_with": base, "default": name == default_path,
                **rate_fields(value),
                "ratio_to_reference": (round(value["median"] / reference_rate, 3)
                                       if reference_rate else None),
                "gain": (round(value["median"] / stats[base]["median"], 3)
                         if base in stats else None),
                "compile_s": compile_s.get(name),
                "flops_per_update": flops, "gflops": round(gflops, 2),
                "matmul_gflops_at_shape": at_shape["gflops"],
                "fraction_at_shape": round(gflops / at_shape["gflops"], 3),
                "matmul_gflops_large": large["gflops"],
                "fraction_of_large": round(gflops / large["gflops"], 3)})
    return rows


def _products(flops: float, m: int, k: int, n: int) -> int:
    """How many (m x k) @ (k x n) products make about ``flops`` FLOPs (at least one)."""
    return max(1, round(flops / (2 * m * k * n)))


def default_training_path(model: str, device: torch.device) -> str:
    """The step ``train(step="auto")`` runs for a paper-profile run of ``model`` on ``device``."""
    from fwbook.experiments.grids import PROFILE_SETTINGS
    from fwbook.core.steps import choose_training_step

    path, _ = choose_training_step("auto", model, PROFILE_SETTINGS["paper"]["steps"], device)
    return path


def format_speedup(rows: list[dict]) -> str:
    """One line per R and path: min / median / max seq/s, × reference, gain over the path it
    builds on, achieved GFLOP/s and its fraction of the measured matmul rates."""
    lines = [f"{'R':>4} {'path':<15}{'min':>8}{'median':>8}{'max':>8}  {'x ref':>6} "
             f"{'gain':>13}  {'GFLOP/s':>7} {'of mm@shape':>11} {'of mm 512³':>11}"]
    for r in rows:
        gain = f"{r['gain']:.2f}x {r['compared_with']}" if r.get("gain") else ""
        lines.append(
            f"{r['hidden']:>4} {r['path']:<15}{r['seq_per_s_min']:>8,.0f}{r['seq_per_s']:>8,.0f}"
            f"{r['seq_per_s_max']:>8,.0f}{_mark(r)} {r['ratio_to_reference']:>5.2f}x "
            f"{gain:>13}  {r['gflops']:>7.2f} {r['fraction_at_shape']:>11.1%} "
            f"{r['fraction_of_large']:>11.1%}"
            + (f"  compile {r['compile_s']} s" if r.get("compile_s") else "")
            + ("  [train's default]" if r.get("default") else ""))
    shapes = sorted({(r["hidden"], r["matmul_gflops_at_shape"]) for r in rows})
    if rows:
        lines.append("torch.mm here: " + ", ".join(
            f"(128 x {h}) @ ({h} x {h}) {g:.1f} GFLOP/s" for h, g in shapes)
            + f", 512³ {rows[0]['matmul_gflops_large']:.1f} GFLOP/s")
    lines.append(spread_note(rows))
    return "\n".join(lines)


def time_to_accuracy(hidden: int = 20, thresholds: tuple[float, ...] = (0.05, 0.02),
                     max_updates: int = 60_000, eval_every: int = 250, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     step: str = "auto", num_validation: int = 10_000) -> dict:
    """Updates and wall seconds for FW (Eq. 4) from scratch to each validation-error threshold.

    One run of ``fwbook.core.train.train`` (K = 4, 100,000 training sequences, Adam, clipping
    at 5), stopped by its ``on_evaluation`` hook once the last threshold is reached, or after
    ``max_updates``. Wall seconds count training and the validation passes (every
    ``eval_every`` updates) from the first update, compile time included and also given
    apart. ``step`` is ``train``'s training step ("auto" decides as ``train`` does for a run of
    ``max_updates`` updates).

    Returns:
        ``{"hidden", "step", "compile_s", "thresholds": [{"val_error", "updates",
        "wall_s"} ...], "curve": {"step", "val_error", "wall_s"}}``; a threshold never reached
        has ``updates`` and ``wall_s`` None.
    """
    from fwbook.core.train import TrainConfig, train

    config = TrainConfig(model=ModelConfig(model="fast_weights", hidden=hidden), num_pairs=4,
                         num_train=100_000, num_validation=num_validation, num_test=1,
                         data_seed=0, seed=seed, lr=lr, batch_size=batch_size,
                         steps=max_updates, clip_norm=5.0, eval_every=eval_every)
    remaining = sorted(thresholds, reverse=True)
    reached: dict[float, tuple[int, float]] = {}
    curve = {"step": [], "val_error": [], "wall_s": []}

    def note(point) -> bool:
        curve["step"].append(point.step)
        curve["val_error"].append(point.val_error)
        curve["wall_s"].append(round(point.elapsed_s, 2))
        while remaining and point.val_error <= remaining[0]:
            reached[remaining.pop(0)] = (point.step, point.elapsed_s)
        return not remaining  # every threshold reached: stop

    record = train(config, device=device, quiet=True, step=step, on_evaluation=note)
    compile_s = record["training_step"].get("compile_s")
    return {"hidden": hidden, "step": record["training_step"]["path"], "eval_every": eval_every,
            "lr": lr, "batch_size": batch_size, "max_updates": max_updates,
            "compile_s": round(compile_s, 1) if compile_s is not None else None,
            "thresholds": [{"val_error": threshold,
                            "updates": reached[threshold][0] if threshold in reached else None,
                            "wall_s": round(reached[threshold][1], 1) if threshold in reached
                            else None} for threshold in sorted(thresholds, reverse=True)],
            "curve": curve}


def sweep_throughput(models: Iterable[str] = ("irnn", "lstm", "alstm", "fast_weights"),
                     hidden_sizes: Iterable[int] = BENCH_HIDDEN, seeds: int = 3,
                     batch_size: int = 128, device: str = "cpu", repeats: int = 3,
                     steps_per_repeat: int = 5, paper_steps: int | None = None) -> list[dict]:
    """Updates per second of the Table 1 grid: seeds one by one against seeds batched.

    For every (model, R) it times ``seeds`` plain models stepped one after another and the
    same seeds as one batched model (:mod:`fwbook.perf.batched`), interleaved, and projects the
    wall time of the paper profile (``paper_steps`` updates per run, evaluation excluded).

    Returns:
        rows ``{"model", "hidden", "seeds", "single_updates_per_s", "batched_updates_per_s",
        "batched_speedup", "single_models_per_hour", "batched_models_per_hour"}`` where an
        "update" is one update of every seed and models/hour is for ``paper_steps``.
    """
    from fwbook.perf.batched import _StackedModels
    from fwbook.experiments.grids import PROFILE_SETTINGS, retrieval_config

    paper_steps = paper_steps or PROFILE_SETTINGS["paper"]["steps"]
    torch_device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    batches = [associative_retrieval(batch_size, generator=generator).to(torch_device)
               for _ in range(seeds)]
    inputs = torch.stack([b.inputs for b in batches])  # (K, B, T)
    targets = torch.stack([b.targets for b in batches])  # (K, B)
    rows = []
    for model_name in models:
        for hidden in hidden_sizes:
            configs = [retrieval_config(model_name, hidden, "paper", seed=s) for s in range(seeds)]
            singles = []
            for config in configs:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(config.seed)
                    model = build_model(config.model).to(torch_device)
                singles.append((model, torch.optim.Adam(model.parameters(), lr=1e-3)))
            stacked = _StackedModels([build_model(c.model).to(torch_device) for c in configs],
                                     configs[0])
            parameters = list(stacked.params.values())
            optimizer = torch.optim.Adam(parameters, lr=1e-3)

            def single_update():
                for (model, opt), x, y in zip(singles, inputs, targets):
                    plain_training_step(model, opt, x, y, 5.0)

            def batched_update():
                from fwbook.perf.batched import _clip_per_model
                optimizer.zero_grad(set_to_none=True)
                stacked.losses(stacked.params, stacked.buffers, inputs, targets).sum().backward()
                _clip_per_model(parameters, seeds, 5.0)
                optimizer.step()

            single_update()
            batched_update()
            stats = interleaved_rates({"single": single_update, "batched": batched_update}, 1,
                                      repeats, steps_per_repeat, torch_device)
            rates = {name: value["median"] for name, value in stats.items()}
            rows.append({
                "model": model_name, "hidden": hidden, "seeds": seeds,
                "single_updates_per_s": round(rates["single"], 2),
                "batched_updates_per_s": round(rates["batched"], 2),
                "single_min_max": [round(stats["single"]["min"], 2),
                                   round(stats["single"]["max"], 2)],
                "batched_min_max": [round(stats["batched"]["min"], 2),
                                    round(stats["batched"]["max"], 2)],
                "spread": max(stats["single"]["spread"], stats["batched"]["spread"]),
                "unsteady": stats["single"]["unsteady"] or stats["batched"]["unsteady"],
                "batched_speedup": round(rates["batched"] / rates["single"], 3),
                "single_models_per_hour": round(3600 * rates["single"] * seeds / paper_steps, 2),
                "batched_models_per_hour": round(3600 * rates["batched"] * seeds / paper_steps, 2),
            })
    return rows


def grid_hours(rows: list[dict], steps: int | None = None) -> dict[str, float]:
    """Projected hours for the whole grid in ``rows`` (one process), one by one and batched.

    ``steps``: updates per run; default the paper profile's. Each row's rates are updates of
    all its seeds per second, so a cell takes ``steps / rate`` seconds.
    """
    from fwbook.experiments.grids import PROFILE_SETTINGS

    steps = steps or PROFILE_SETTINGS["paper"]["steps"]
    single = sum(steps / row["single_updates_per_s"] for row in rows) / 3600
    batched = sum(steps / row["batched_updates_per_s"] for row in rows) / 3600
    return {"single_hours": round(single, 2), "batched_hours": round(batched, 2),
            "steps": steps}


def memory_cost_table(hidden_sizes: Iterable[int] = COST_HIDDEN,
                      pair_counts: Iterable[int] = COST_PAIRS, batch_size: int = 128,
                      device: str = "cpu", repeats: int = 3, steps_per_repeat: int = 3
                      ) -> list[dict]:
    """Training throughput of the explicit (B·H² per step) and Eq. 4 (B·t·H) forms vs H and T.

    Returns:
        rows ``{"hidden", "seq_len", "memory", "seq_per_s", "state_floats_per_step"}`` where the
        last is the size of the fast memory carried by one step, B·H² for the explicit form and
        B·T·H (at the last step) for Eq. 4.
    """
    from fwbook.core.data import sequence_length

    torch_device = torch.device(device)
    rows = []
    for num_pairs in pair_counts:
        batch = associative_retrieval(batch_size, num_pairs=num_pairs,
                                      generator=torch.Generator().manual_seed(0)).to(torch_device)
        steps = sequence_length(num_pairs)
        for hidden in hidden_sizes:
            paths = {}
            for memory in ("explicit", "efficient"):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model = build_model(ModelConfig(model="fast_weights", hidden=hidden,
                                                    memory=memory)).to(torch_device)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                paths[memory] = (lambda m=model, o=optimizer: plain_training_step(
                    m, o, batch.inputs, batch.targets, 5.0))
                paths[memory]()
            stats = interleaved_rates(paths, batch_size, repeats, steps_per_repeat,
                                      torch_device)
            for memory, value in stats.items():
                floats = batch_size * hidden * (hidden if memory == "explicit" else steps)
                rows.append({"hidden": hidden, "seq_len": steps, "memory": memory,
                             **rate_fields(value), "state_floats_per_step": floats})
    return rows


def flops_table(models: Iterable[str] | None = None,
                hidden_sizes: Iterable[int] = BENCH_HIDDEN, batch_size: int = 128,
                device: str = "cpu", repeats: int = 5, steps_per_repeat: int = 5,
                warmup: int = 2) -> list[dict]:
    """How far each model's training step is from what this machine's matrix kernels reach.

    For every model and R: the analytic FLOPs of one update (:func:`fwbook.perf.flops.training_flops`),
    the plain eager step's rate (all rows timed in interleaved blocks), the GFLOP/s that makes,
    and its fraction of ``torch.mm``'s rate at the model's recurrent product (B x H) @ (H x G)
    (G = H, 4H for the LSTM, 4.5H for the A-LSTM) and at 512³, timed in the same
    interleaved blocks as the steps.

    Returns:
        rows ``{"model", "hidden", "flops_per_update", "matmul_share", "seq_per_s" (+ min,
        max, spread, unsteady), "gflops", "mm_shape", "matmul_gflops_at_shape",
        "fraction_at_shape", "matmul_gflops_large", "fraction_of_large"}``.
    """
    from fwbook.perf.flops import FLOP_MODELS, LARGE, matmul_call, training_flops

    models = tuple(models or FLOP_MODELS)
    torch_device = torch.device(device)
    batch = associative_retrieval(batch_size, generator=torch.Generator().manual_seed(0))
    batch = batch.to(torch_device)
    paths, keys = {}, {}
    for hidden in hidden_sizes:
        for model_name in models:
            model = _seeded_model(ModelConfig(model=model_name, hidden=hidden), 0, torch_device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            name = f"{model_name}/{hidden}"
            paths[name] = (lambda m=model, o=optimizer: plain_training_step(
                m, o, batch.inputs, batch.targets, 5.0))
            keys[name] = (model_name, hidden)
    width = {"lstm": 4.0, "alstm": 4.5}
    shapes = sorted({(batch_size, h, int(width.get(m, 1.0) * h)) for m, h in keys.values()})
    items = {name: batch_size for name in paths}
    # the matrix kernels, in the same interleaved blocks (FLOP/s), each call about one
    # update's FLOPs so that its blocks last about as long as the steps'
    update_flops = {h: training_flops("fast_weights", h, batch_size)["total"]
                    for _, h in keys.values()}
    for shape in shapes:
        paths[f"mm{shape}"], items[f"mm{shape}"] = matmul_call(
            *shape, _products(update_flops[shape[1]], *shape))
    paths["mm@large"], items["mm@large"] = matmul_call(
        LARGE, LARGE, LARGE, _products(max(update_flops.values()), LARGE, LARGE, LARGE))
    for run_one in paths.values():
        for _ in range(warmup):
            run_one()
    stats = interleaved_rates(paths, items, repeats, steps_per_repeat, torch_device)
    rates = {shape: {"gflops": round(stats.pop(f"mm{shape}")["median"] / 1e9, 2)}
             for shape in shapes}
    large = {"gflops": round(stats.pop("mm@large")["median"] / 1e9, 2)}
    rows = []
    for name, (model_name, hidden) in keys.items():
        counts = training_flops(model_name, hidden, batch_size)
        shape = (batch_size, hidden, int(width.get(model_name, 1.0) * hidden))
        gflops = counts["total"] * stats[name]["median"] / batch_size / 1e9
        rows.append({"model": model_name, "hidden": hidden,
                     "flops_per_update": counts["total"],
                     "matmul_share": round(counts["matmul"] / counts["total"], 3),
                     **rate_fields(stats[name]), "gflops": round(gflops, 2),
                     "mm_shape": list(shape),
                     "matmul_gflops_at_shape": rates[shape]["gflops"],
                     "fraction_at_shape": round(gflops / rates[shape]["gflops"], 3),
                     "matmul_gflops_large": large["gflops"],
                     "fraction_of_large": round(gflops / large["gflops"], 3)})
    return rows


def format_flops(rows: list[dict]) -> str:
    """The flops suite as text: work per update, rate, achieved GFLOP/s and fractions."""
    lines = [f"{'model':<13}{'R':>4} {'MFLOP/upd':>10} {'mm share':>8} {'seq/s':>8} "
             f"{'GFLOP/s':>8} {'mm@shape':>9} {'fraction':>8} {'of 512³':>8}"]
    for r in rows:
        lines.append(f"{r['model']:<13}{r['hidden']:>4} {r['flops_per_update'] / 1e6:>10.1f} "
                     f"{r['matmul_share']:>8.0%} {r['seq_per_s']:>8,.0f}{_mark(r)}"
                     f"{r['gflops']:>7.2f} {r['matmul_gflops_at_shape']:>9.1f} "
                     f"{r['fraction_at_shape']:>8.1%} {r['fraction_of_large']:>8.1%}")
    if rows:
        lines.append(f"plain eager training step (forward, backward, clip, Adam), batch 128; "
                     f"torch.mm at 512³: {rows[0]['matmul_gflops_large']:.1f} GFLOP/s; "
                     f"mm@shape: (B x H) @ (H x G), the model's recurrent product")
    lines.append(spread_note(rows))
    return "\n".join(lines)


def bench_document(suite: str, rows, device: str, settings: dict) -> dict:
    """A committed benchmark result: the rows plus provenance (commit, versions, device)."""
    from datetime import datetime, timezone

    from fwbook.core.records import provenance

    return {"suite": suite, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": settings, **provenance(torch.device(device)),
            "timing": "medians of interleaved timed blocks within one process; ratios are "
                      "the meaningful figures on a shared machine",
            "rows": rows}


def hardware_label(document: dict) -> str:
    """'cpu: x86_64, 1 torch thread(s), 2 cores' - the caption every figure carries."""
    device = document.get("device", {})
    return (f"{device.get('type', '?')}: {device.get('name', '?')}, "
            f"{device.get('torch_threads', '?')} torch thread(s), "
            f"{device.get('cpu_count', '?')} cores")


# ----------------------------------------- figures ------------------------------------------

def plot_speedup(document: dict):
    """Bars: sequences/s of the reference, default and compiled paths at each R."""
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    rows = document["rows"]
    hidden_sizes = sorted({row["hidden"] for row in rows})
    paths = [p for p in SPEEDUP_PATHS if any(r["path"] == p for r in rows)]
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(paths)
    for offset, path in enumerate(paths):
        values = [next((r["seq_per_s"] for r in rows if r["hidden"] == h and r["path"] == path), 0)
                  for h in hidden_sizes]
        positions = [i + offset * width for i in range(len(hidden_sizes))]
        is_default = any(r.get("default") for r in rows if r["path"] == path)
        bars = axis.bar(positions, values, width,
                        label=f"{path} (train's default)" if is_default else path)
        for bar, hidden in zip(bars, hidden_sizes):
            ratio = next((r["ratio_to_reference"] for r in rows
                          if r["hidden"] == hidden and r["path"] == path), None)
            if ratio is not None:
                axis.annotate(f"{ratio:.2f}x", (bar.get_x() + bar.get_width() / 2,
                                                bar.get_height()), ha="center", va="bottom",
                              fontsize=8)
    axis.set_xticks([i + width * (len(paths) - 1) / 2 for i in range(len(hidden_sizes))])
    axis.set_xticklabels([f"R = {h}" for h in hidden_sizes])
    axis.set_ylabel("training sequences / s")
    axis.set_title(f"FW (Eq. 4) training paths\n{hardware_label(document)}", fontsize=9)
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def plot_memory_cost(document: dict):
    """Throughput of explicit vs Eq. 4 against H, one panel per sequence length T."""
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    rows = document["rows"]
    lengths = sorted({row["seq_len"] for row in rows})
    figure, axes = plt.subplots(1, len(lengths), figsize=(3.2 * len(lengths), 3.2), sharey=True,
                                squeeze=False)
    for axis, length in zip(axes[0], lengths):
        for memory, label in (("explicit", "explicit A(t): B·H²"), ("efficient", "Eq. 4: B·T·H")):
            points = sorted((r["hidden"], r["seq_per_s"]) for r in rows
                            if r["seq_len"] == length and r["memory"] == memory)
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"T = {length}")
        axis.set_xlabel("hidden units H")
    axes[0][0].set_ylabel("training sequences / s")
    axes[0][0].legend(frameon=False, fontsize=8)
    figure.suptitle(f"memory forms against H and T — {hardware_label(document)}", fontsize=9)
    figure.tight_layout()
    return figure


def plot_time_to_accuracy(document: dict):
    """Validation error against wall seconds for FW R = 20, thresholds marked."""
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    figure, axis = plt.subplots(figsize=(6, 3.5))
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
                   f"{hardware_label(document)}", fontsize=9)
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def plot_sweep(document: dict):
    """Models trained per hour (paper profile) per Table 1 cell, one by one and batched."""
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    rows = document["rows"]
    labels = [f"{r['model']}\nR={r['hidden']}" for r in rows]
    figure, axis = plt.subplots(figsize=(max(6, 0.6 * len(rows)), 3.5))
    positions = range(len(rows))
    axis.bar([p - 0.2 for p in positions], [r["single_models_per_hour"] for r in rows], 0.4,
             label="one by one")
    axis.bar([p + 0.2 for p in positions], [r["batched_models_per_hour"] for r in rows], 0.4,
             label=f"{rows[0]['seeds']} seeds batched")
    steps = document["settings"]["grid"]["steps"]
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, fontsize=7)
    axis.set_ylabel(f"models / hour ({steps:,} updates each)")
    axis.set_title(f"Table 1 sweep throughput — {hardware_label(document)}", fontsize=9)
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


SUITES = ("throughput", "speedup", "flops", "cost", "sweep", "tta")


def run_suite(suite: str, device: str = "auto", output_dir=None, quick: bool = False,
              threads: int | None = None, repeats: int = 5, compiled: bool = True,
              hidden: Iterable[int] | None = None, batch_size: int = 128,
              steps_per_repeat: int | None = None, json_path=None,
              thread_choice: dict | None = None, cold_compile: bool = True) -> dict:
    """Measure one suite, print a summary and (with ``output_dir``) write ``{suite}.json``.

    ``quick`` shrinks every suite to seconds (tests, smoke checks); the committed results under
    ``results/bench`` come from full runs. ``threads``: torch CPU threads; None measures which
    count is fastest here (:func:`choose_threads`; ``thread_choice`` passes one made before).
    ``hidden``, ``batch_size`` and ``steps_per_repeat`` override the suite's sizes (throughput,
    speedup and flops). ``json_path``: also write the suite's rows, as printed, there.
    ``cold_compile=False`` lets the speedup suite's compiles use inductor's on-disk caches.
    """
    torch_device = resolve_device(device)
    choice = thread_choice or choose_threads(threads, torch_device, quick)
    torch.set_num_threads(choice["chosen"])
    name = str(torch_device)
    settings: dict = {"quick": quick, "repeats": repeats, "batch_size": batch_size,
                      "threads": choice}

    def sizes(default, tiny=(8,)):
        return tuple(hidden) if hidden else (tiny if quick else default)

    def block(default):
        return steps_per_repeat or (2 if quick else default)

    if suite == "throughput":
        rows = throughput_table(sizes(BENCH_HIDDEN), batch_size, name, repeats, block(10))
        text = format_table(rows)
    elif suite == "speedup":
        rows = speedup_table(sizes(SPEEDUP_HIDDEN), batch_size, name, repeats, block(10),
                             compiled=compiled and not quick, cold_compile=cold_compile)
        settings["compile_cache"] = "cold (caches off)" if cold_compile else "warm (on-disk caches)"
        text = format_speedup(rows)
    elif suite == "flops":
        models = ("fast_weights", "lstm") if quick else None
        rows = flops_table(models, sizes(BENCH_HIDDEN), batch_size, name, repeats, block(5))
        text = format_flops(rows)
    elif suite == "cost":
        hidden_sizes, pairs = ((8, 16), (1, 2)) if quick else (COST_HIDDEN, COST_PAIRS)
        rows = memory_cost_table(hidden_sizes, pairs, batch_size, name, repeats,
                                 1 if quick else 3)
        text = "\n".join(f"T={r['seq_len']:>3} H={r['hidden']:>4} {r['memory']:<10}"
                         f"{r['seq_per_s_min']:>9,.0f}{r['seq_per_s']:>9,.0f}"
                         f"{r['seq_per_s_max']:>9,.0f} seq/s {_mark(r)}" for r in rows)
        text += "\n" + spread_note(rows)
    elif suite == "sweep":
        models, hidden_sizes = ((("fast_weights", "lstm"), (8,)) if quick
                                else (("irnn", "lstm", "alstm", "fast_weights"), BENCH_HIDDEN))
        rows = sweep_throughput(models, hidden_sizes, 3, batch_size, name, repeats,
                                1 if quick else 4)
        settings["grid"] = grid_hours(rows)
        text = "\n".join(f"{r['model']:<13}R={r['hidden']:>4} one by one "
                         f"{r['single_models_per_hour']:>7.1f}/h  batched "
                         f"{r['batched_models_per_hour']:>7.1f}/h ({r['batched_speedup']:.2f}x)"
                         f" {_mark(r)}" for r in rows)
        text += (f"\nprojected grid (paper profile, evaluation excluded): "
                 f"{settings['grid']['single_hours']} h one by one, "
                 f"{settings['grid']['batched_hours']} h batched (one process)\n"
                 + spread_note(rows))
    elif suite == "tta":
        if quick:
            rows = [time_to_accuracy(8, (0.9, 0.5), 20, 10, device=name, num_validation=200)]
        else:
            rows = [time_to_accuracy(20, (0.05, 0.02), 40_000, 500, device=name)]
        text = "\n".join(f"R={r['hidden']} {r['step']} step: " + ", ".join(
            f"<= {t['val_error']:.0%} after {t['updates']} updates / {t['wall_s']} s"
            if t["updates"] else f"<= {t['val_error']:.0%} not reached in {r['max_updates']}"
            for t in r["thresholds"]) for r in rows)
        text += "\n(one run from scratch: nothing to interleave)"
    else:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}; got {suite!r}")
    document = bench_document(suite, rows, name, settings)
    print(f"{suite} — device: {hardware_label(document)}")
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
    import json

    from fwbook.core.records import REPO_ROOT

    path = Path(directory or REPO_ROOT / "results" / "bench") / f"{suite}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def speedup_summary(document: dict) -> list[str]:
    """One sentence per R: every path as a multiple of the plain eager path (and, where
    measured, its GFLOP/s and fraction of the matmul rate), naming ``train``'s default."""
    lines = []
    for hidden in sorted({row["hidden"] for row in document["rows"]}):
        rows = {r["path"]: r for r in document["rows"] if r["hidden"] == hidden}
        parts = []
        for path in [p for p in SPEEDUP_PATHS if p != "reference"]:
            if path not in rows:
                continue
            text = f"{path} path {rows[path]['ratio_to_reference']:.2f}x"
            if rows[path].get("fraction_at_shape") is not None:
                text += (f", {rows[path]['gflops']:.1f} GFLOP/s = "
                         f"{rows[path]['fraction_at_shape']:.0%} of torch.mm at its shape")
            if rows[path].get("compile_s"):
                text += f" (compile {rows[path]['compile_s']:.0f} s)"
            if rows[path].get("default"):
                text += " [train's default]"
            parts.append(text)
        lines.append(f"R = {hidden}, as multiples of the plain eager reference "
                     f"({rows['reference']['seq_per_s']:,.0f} sequences/s):\n  "
                     + ",\n  ".join(parts))
    return lines


def ideas_summary(document: dict) -> list[str]:
    """What each idea of the speedup suite gained over the path it builds on, per R:
    'fused (hand-derived backward ...): 1.20x eager at R = 50, 1.15x at R = 100'."""
    lines = []
    for path, (idea, base) in SPEEDUP_PATHS.items():
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
        lines.append(f"{path}: {idea}.\n  Against {base}: {gains}: {verdict}.")
    return lines
