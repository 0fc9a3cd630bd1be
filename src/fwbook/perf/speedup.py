"""The training paths of the fast weights (Eq. 4) against the plain eager reference.

``fwbook bench --suite speedup`` times every path of :data:`SPEEDUP_PATHS` at R = 50 and 100,
batch 128, in interleaved blocks, together with ``torch.mm`` at the step's shape and at 512³,
and prints each path as a multiple of the plain eager reference (:class:`ReferenceEagerCore`),
its gain over the path it builds on, and the fraction of the matmul rate it reaches.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.steps import plain_training_step
from fwbook.perf.timing import interleaved_rates, rate_fields, spread_note, unsteady_mark

SPEEDUP_HIDDEN = (50, 100)
SEEDS_BATCHED = 3  # the seeds of one Table 1 cell


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
    model = build_model(ModelConfig(model="fast_weights", hidden=hidden), seed=seed)
    model.core = ReferenceEagerCore(model.core)
    return model


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
    "compiled_loss": ("torch.compile of forward and autograd backward, foreach clip and Adam "
                      "eager (train's compiled step until clipping and Adam were compiled too)",
                      "eager"),
    "compiled": ("torch.compile of forward and autograd backward, and of clipping and Adam "
                 "(lr as a tensor): train(step='compiled')", "compiled_loss"),
    "fused": ("hand-derived backward of the whole recurrence (fwbook.perf.fused_eq4), "
              "one dW product, foreach clip and Adam, eager", "eager"),
    "fused_bmm": ("the hand-derived backward with the attention as batched matrix products "
                  "(bmm) instead of element-wise products", "fused"),
    "fused_compiled": ("the hand-derived backward handed to torch.compile", "compiled"),
    "compiled_cpp": ("the compiled step with inductor's kernels called from generated C++ "
                     "instead of Python (cpp_wrapper; fwbook.perf.whole_step)", "compiled"),
    "batched_seeds": (f"{SEEDS_BATCHED} seeds as one vmapped model (fwbook.perf.batched), eager; "
                      f"sequences of all seeds counted", "eager"),
    "batched_compiled": (f"{SEEDS_BATCHED} seeds as one vmapped model, forward and backward "
                         f"compiled; sequences of all seeds counted", "compiled"),
}
COMPILED_PATHS = ("compiled_loss", "compiled", "fused_compiled", "compiled_cpp",
                  "batched_compiled")


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
    blocks as the paths. The batched paths train :data:`SEEDS_BATCHED` seeds at once; their
    sequences per second count the sequences of every seed.

    Returns:
        rows ``{"hidden", "path", "idea", "compared_with", "default", "seq_per_s" (+ min, max,
        spread, unsteady), "ratio_to_reference", "gain", "compile_s", "flops_per_update",
        "gflops", "fraction_at_shape", "fraction_of_large"}`` and, in ``matmul``, the rates.
    """
    from fwbook.perf.flops import LARGE, matmul_call, products_for, training_flops
    from fwbook.perf.fused_eq4 import fused_training_step
    from fwbook.core.steps import compiled_training_step
    from fwbook.perf.batched import BatchedSeedsStep
    from fwbook.perf.whole_step import whole_training_step

    torch_device = torch.device(device)
    batch = associative_retrieval(batch_size, generator=torch.Generator().manual_seed(0))
    batch = batch.to(torch_device)
    generator = torch.Generator().manual_seed(1)
    seed_batches = [batch] + [associative_retrieval(batch_size, generator=generator)
                              .to(torch_device) for _ in range(SEEDS_BATCHED - 1)]
    seed_inputs = torch.stack([b.inputs for b in seed_batches])  # (K, B, T)
    seed_targets = torch.stack([b.targets for b in seed_batches])  # (K, B)
    wanted = [p for p in SPEEDUP_PATHS if p in paths and (compiled or p not in COMPILED_PATHS)]
    rows = []
    for hidden in hidden_sizes:
        config = ModelConfig(model="fast_weights", hidden=hidden)
        steps, compile_s = {}, {}
        for name in wanted:
            if name.startswith("batched"):
                step = BatchedSeedsStep([build_model(config, seed=k).to(torch_device)
                                         for k in range(SEEDS_BATCHED)], 5.0,
                                        compile=name == "batched_compiled")
                with (cold_compile_caches() if cold_compile else contextlib.nullcontext()):
                    step(seed_inputs, seed_targets)
                if step.compiled is True:
                    compile_s[name] = round(step.compile_s, 1)
                steps[name] = lambda s=step: s(seed_inputs, seed_targets)
                continue
            if name == "reference":
                model = reference_eager_model(hidden).to(torch_device)
            else:
                model = build_model(config, seed=0).to(torch_device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            if name in ("reference", "eager"):
                steps[name] = (lambda m=model, o=optimizer: plain_training_step(
                    m, o, batch.inputs, batch.targets, 5.0))
                continue
            if name in ("compiled", "compiled_loss"):
                step = compiled_training_step(model, optimizer, 5.0,
                                              compile_update=name == "compiled")
            elif name == "compiled_cpp":
                step = whole_training_step(model, optimizer, 5.0, cpp_wrapper=True)
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
        items = {name: batch_size * (SEEDS_BATCHED if name.startswith("batched") else 1)
                 for name in steps}
        # the matrix kernels, timed in the same interleaved blocks (rates in FLOP/s)
        flops = training_flops("fast_weights", hidden, batch_size)["total"]
        # each call does about one update's FLOPs, so its blocks last about as long as the
        # steps' (a block much shorter than a scheduler time slice escapes the machine's load)
        steps["mm@shape"], items["mm@shape"] = matmul_call(
            batch_size, hidden, hidden, products_for(flops, batch_size, hidden, hidden))
        steps["mm@large"], items["mm@large"] = matmul_call(
            LARGE, LARGE, LARGE, products_for(flops, LARGE, LARGE, LARGE))
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
            f"{r['seq_per_s_max']:>8,.0f}{unsteady_mark(r)} {r['ratio_to_reference']:>5.2f}x "
            f"{gain:>13}  {r['gflops']:>7.2f} {r['fraction_at_shape']:>11.1%} "
            f"{r['fraction_of_large']:>11.1%}"
            + (f"  compile {r['compile_s']} s" if r.get("compile_s") else "")
            + ("  [train's default]" if r.get("default") else ""))
    shapes = sorted({(r["hidden"], r["matmul_gflops_at_shape"]) for r in rows})
    if rows:
        lines.append("torch.mm here: " + ", ".join(
            f"(B x {h}) @ ({h} x {h}) {g:.1f} GFLOP/s" for h, g in shapes)
            + f", 512³ {rows[0]['matmul_gflops_large']:.1f} GFLOP/s")
    lines.append(spread_note(rows))
    return "\n".join(lines)
