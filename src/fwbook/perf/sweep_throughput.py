"""Sweep throughput: updates per second of the Table 1 grid, seeds one by one against seeds
batched as one model (:mod:`fwbook.perf.batched`), and the projected hours of the grid."""

from __future__ import annotations

from typing import Iterable

import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import build_model
from fwbook.core.steps import plain_training_step
from fwbook.experiments.grids import PROFILE_SETTINGS, retrieval_config
from fwbook.perf.batched import StackedModels, clip_per_model
from fwbook.perf.timing import interleaved_rates

BENCH_HIDDEN = (20, 50, 100)


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
            singles = [build_model(config.model, seed=config.seed).to(torch_device)
                       for config in configs]
            optimizers = [torch.optim.Adam(model.parameters(), lr=1e-3) for model in singles]
            stacked = StackedModels([build_model(c.model).to(torch_device) for c in configs],
                                    configs[0])
            parameters = list(stacked.params.values())
            optimizer = torch.optim.Adam(parameters, lr=1e-3)

            def single_update():
                for model, opt, x, y in zip(singles, optimizers, inputs, targets):
                    plain_training_step(model, opt, x, y, 5.0)

            def batched_update():
                optimizer.zero_grad(set_to_none=True)
                stacked.losses(stacked.params, stacked.buffers, inputs, targets).sum().backward()
                clip_per_model(parameters, seeds, 5.0)
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
                "clock": stats["single"]["clock"],
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
    steps = steps or PROFILE_SETTINGS["paper"]["steps"]
    single = sum(steps / row["single_updates_per_s"] for row in rows) / 3600
    batched = sum(steps / row["batched_updates_per_s"] for row in rows) / 3600
    return {"single_hours": round(single, 2), "batched_hours": round(batched, 2),
            "steps": steps}
