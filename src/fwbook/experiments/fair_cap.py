"""The fair-controls protocol's cap on updates: what it did to the runs, and the cap check.

The protocol (:mod:`fwbook.experiments.fair`) stops every run at one cap on updates. Its own
rule asks for a cap at which the validation curves have flattened; :func:`cap_pressure` says
from the records how far the cap falls short of that. The **cap check** asks whether the verdict
at R = 20 hangs on the cap: the claim's model at the claim's R trained again with
``CAP_CHECK["factor"]`` times the cap (same patience and minimum), at the learning rate its cell
chose, every seed (``fwbook sweep fair-cap``; records in ``results/fair_cap``, never in the
protocol's table). Every control was stopped by the same cap, and a larger one can only lower
the validation error a run keeps; so fast weights still behind the best control with twice the
updates mean the verdict does not hang on the cap.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Iterable, Optional

from fwbook.core.records import REPO_ROOT
from fwbook.core.train import TrainConfig
from fwbook.experiments.fair import (FAIR_BUDGET, FAIR_DIR, FAIR_INPUT_EMBEDDING, FAIR_SEEDS,
                                     cell_runs, cell_selection, fair_verdict, lr_label,
                                     named_record, still_improving)
from fwbook.experiments.grids import check_profile, retrieval_config
from fwbook.experiments.stats import summarize

# The cap check: the claim's model at the claim's R given CAP_CHECK["factor"] times the cap (the
# same patience and minimum), at its cell's chosen learning rate, every seed. Its records go to
# CAP_CHECK_DIR, beside the protocol's, never into its table (see cap_check_configs).
CAP_CHECK = dict(model="fast_weights", hidden=20, factor=2)
CAP_CHECK_DIR = REPO_ROOT / "results" / "fair_cap"


def last_window_drop(record: dict, window: int) -> Optional[float]:
    """How far a run's lowest validation error fell over its last ``window`` updates (one
    patience): the lowest before them minus the lowest of the run, in error-rate points (0.0
    when it did not improve; None for a run shorter than ``window``)."""
    curves = record["curves"]
    end = record.get("steps_done") or curves["step"][-1]
    before = [error for step, error in zip(curves["step"], curves["val_error"])
              if step <= end - window]
    if not before:
        return None
    return min(before) - min(curves["val_error"])


def cap_pressure(cells: list[dict]) -> dict:
    """What the cap on updates did to the protocol's finished runs, and what a cap twice as
    large would cost, from the records (each run's cap and patience are its own config's).

    Returns ``{"cap", "patience" (of the first finished run; None without runs), "runs",
    "ended_by_cap", "still_improving", "drops": {name: last_window_drop in error-rate points}
    for the runs the cap ended, "median_drop" (None without such runs), "extend_hours":
    training hours to take every run the cap ended on to twice its cap at its own measured time
    per update}``. Runs are the finished runs of ``cells`` (selection runs and seeds).
    """
    runs = [run for cell in cells for run in cell_runs(cell) if run.get("status") == "completed"]
    ended = [run for run in runs if (run.get("early_stopping") or {}).get("stop_reason") == "cap"]
    drops = {run["name"]: last_window_drop(run, run["config"]["patience"]) for run in ended}
    known = [drop for drop in drops.values() if drop is not None]
    extend_s = sum(float(run.get("wall_s") or 0.0) / max(run.get("steps_done") or 1, 1)
                   * run["config"]["steps"] for run in ended)
    first = runs[0]["config"] if runs else {}
    return {"cap": first.get("steps"), "patience": first.get("patience"), "runs": len(runs),
            "ended_by_cap": len(ended), "still_improving": sum(map(still_improving, ended)),
            "drops": drops, "median_drop": statistics.median(known) if known else None,
            "extend_hours": extend_s / 3600}



def cap_check_name(model: str, hidden: int, lr: float, seed: int, factor: int) -> str:
    return f"faircap{factor}x_{model}_R{hidden}_lr{lr_label(lr)}_seed{seed}"


def cap_check_configs(profile: str = "paper", seeds: Iterable[int] = FAIR_SEEDS,
                      fair_directory: str | os.PathLike = FAIR_DIR, model: str = CAP_CHECK["model"],
                      hidden: int = CAP_CHECK["hidden"], factor: int = CAP_CHECK["factor"]
                      ) -> dict[str, TrainConfig]:
    """The cap check's runs: ``model`` at R = ``hidden`` under the protocol, but with ``factor``
    times its cap, at the learning rate its cell chose (read from ``fair_directory``).

    Why: at R = 20 the protocol's cap stopped every fast-weights run while it was still
    improving. If fast weights given twice the cap still do worse than the best control at the
    cap (which a larger cap could only help too), the verdict does not depend on the cap; if they
    do better, the verdict is open until the controls get the same cap.

    Raises:
        ValueError: the cell has not chosen its learning rate yet, or every rate diverged.
    """
    chosen = cell_selection(fair_directory, model, hidden, profile)
    if chosen is None or chosen["lr"] is None:
        raise ValueError(f"the cap check waits for {model} R={hidden} to choose its learning "
                         f"rate under the protocol (its selection runs in {fair_directory})")
    budget = dict(FAIR_BUDGET[check_profile(profile)])
    budget["steps"] *= factor
    return {cap_check_name(model, hidden, chosen["lr"], seed, factor):
            retrieval_config(model, hidden, profile, seed, lr=chosen["lr"],
                             lr_schedule="constant", input_embedding=FAIR_INPUT_EMBEDDING,
                             **budget)
            for seed in seeds}


def cap_check_summary(cells: list[dict], directory: str | os.PathLike = CAP_CHECK_DIR,
                      fair_directory: str | os.PathLike = FAIR_DIR, profile: str = "paper"
                      ) -> Optional[dict]:
    """The cap check's finished runs beside the protocol's cell of the same model and the best
    control at the same R (both at the protocol's cap).

    Returns None before the cell has chosen its learning rate; else ``{"model", "hidden",
    "factor", "cap", "runs": finished records by seed, "still_improving": their names whose
    best was their last evaluation, **summarize(test errors), "at_cap": the protocol cell's
    mean, "best_control": (model, mean, lowest seed) or None, "outcome"}``; ``outcome`` is
    "pending" (fewer than every seed), "claim fails even so" (mean above the best control's
    mean), or "open" (below it: the controls have not had the larger cap).
    """
    model, hidden, factor = CAP_CHECK["model"], CAP_CHECK["hidden"], CAP_CHECK["factor"]
    try:
        configs = cap_check_configs(profile, FAIR_SEEDS, fair_directory, model, hidden, factor)
    except ValueError:
        return None
    runs = [record for name in configs
            if (record := named_record(Path(directory), name)) is not None
            and record.get("test_error") is not None]
    at_r = {cell["model"]: cell for cell in cells if cell["hidden"] == hidden}
    best_control = fair_verdict(cells, hidden)["best_control"] if cells else None
    best = at_r[best_control[0]] if best_control else None
    summary = summarize(run["test_error"] for run in runs)
    outcome = "pending"
    if best is not None and len(runs) == len(configs):
        outcome = "claim fails even so" if summary["mean"] > best["mean"] else "open"
    first = next(iter(configs.values()))
    return {"model": model, "hidden": hidden, "factor": factor, "cap": first.steps,
            "runs": runs, "still_improving": [r["name"] for r in runs if still_improving(r)],
            **summary, "at_cap": at_r[model]["mean"] if model in at_r else None,
            "best_control": ((best["model"], best["mean"],
                              min(run["test_error"] for run in best["runs"])) if best else None),
            "outcome": outcome, "planned": len(configs)}
