"""The fair-controls protocol: Table 1 with every model given the same, best-known chance.

This module is the one place the protocol is defined (chapter 5 prints it from here):

* **Input processing**, shared by every model: a learned embedding of ``FAIR_INPUT_EMBEDDING``
  dimensions between the one-hot token and the recurrent layer
  (``ModelConfig.input_embedding``).
* **Learning rate** chosen per model and R from ``FAIR_LRS`` (the same grid for every model;
  Adam, constant), on the *validation* set: the lowest validation error reached by the
  ``SELECTION_SEED`` run, ties broken by its validation loss.
* **Early stopping** on validation error (``FAIR_BUDGET``): stop once ``patience`` updates
  pass without a new lowest validation error (never before ``min_steps``), keep the
  parameters of that lowest point; ``steps`` caps every run.
* **Seeds**: ``FAIR_SEEDS`` at the chosen learning rate (the selection run is seed 0).
* **Test set**: read once per run, after it stops (``fwbook.core.train.train``); no choice reads it.

``fair_plan`` lists the runs in the order a one-worker sweep trains them (the seeds of a cell
appear once its learning rates have all finished); ``run_fair`` trains them with
``fwbook.experiments.sweep.run_sweep``, so finished records are skipped and half-done runs resume.
"""

from __future__ import annotations

import math
import os
import statistics
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable, Optional

from fwbook.core.records import REPO_ROOT, load_records, read_record
from fwbook.core.train import TrainConfig
from fwbook.experiments.grids import (TABLE1_EXTRA_MODELS, TABLE1_HIDDEN, TABLE1_MODELS,
                                      check_profile, retrieval_config)
from fwbook.experiments.stats import summarize

FAIR_DIR = REPO_ROOT / "results" / "fair"
FAIR_INPUT_EMBEDDING = 100  # E: learned token embedding, N(0, 1) initialised
FAIR_LRS = (3e-4, 1e-3, 3e-3)  # Adam, constant; the same grid for every model and R
FAIR_SEEDS = (0, 1, 2)
SELECTION_SEED = 0
# Budget per profile: steps = cap on updates; patience and min_steps in updates.
FAIR_BUDGET = {
    "paper": dict(steps=60_000, eval_every=1_000, patience=15_000, min_steps=20_000),
    "quick": dict(steps=6_000, eval_every=250, patience=1_000, min_steps=2_000),
    "smoke": dict(steps=60, eval_every=10, patience=20, min_steps=20),
}
FAIR_MODELS = TABLE1_MODELS + TABLE1_EXTRA_MODELS
# Order of the cells at each R: the claim's model first, then the controls cheapest first.
CELL_ORDER = ("fast_weights", "lstm", "irnn", "ln_irnn", "alstm")
# The LSTM plateau finding: LSTM at R = 50 with input processing at Table 1's own learning
# rate, every seed, to set beside the one-hot records of results/table1 (same loop, same lr).
FINDING = dict(model="lstm", hidden=50, lr=1e-3)


def lr_label(lr: float) -> str:
    """``3e-4``, ``1e-3``: the learning rate as it appears in run names."""
    exponent = math.floor(math.log10(lr))
    mantissa = round(lr / 10 ** exponent, 6)
    mantissa_text = f"{mantissa:g}"
    return f"{mantissa_text}e{exponent}"


def fair_name(model: str, hidden: int, lr: float, seed: int) -> str:
    return f"fair_{model}_R{hidden}_lr{lr_label(lr)}_seed{seed}"


def fair_config(model: str, hidden: int, lr: float, seed: int, profile: str = "paper"
                ) -> TrainConfig:
    """One run of the protocol: the profile's data, input embedding, early stopping."""
    budget = FAIR_BUDGET[check_profile(profile)]
    return retrieval_config(model, hidden, profile, seed, lr=lr, lr_schedule="constant",
                            input_embedding=FAIR_INPUT_EMBEDDING, **budget)


def protocol_description(profile: str = "paper") -> dict:
    """The protocol's settings, for the book and the records' readers."""
    budget = FAIR_BUDGET[check_profile(profile)]
    return {"input_embedding": FAIR_INPUT_EMBEDDING, "lrs": list(FAIR_LRS),
            "lr_schedule": "constant", "seeds": list(FAIR_SEEDS),
            "selection_seed": SELECTION_SEED, **budget}


def best_validation(record: dict) -> Optional[tuple[float, float, int]]:
    """(lowest validation error, its validation loss, its update) of a finished run, or None
    for a run that diverged."""
    if record.get("status") != "completed":
        return None
    early = record.get("early_stopping")
    if early:
        return early["best_val_error"], early["best_val_loss"], early["best_step"]
    curves = record["curves"]
    index = min(range(len(curves["val_error"])), key=lambda i: curves["val_error"][i])
    return curves["val_error"][index], curves["val_loss"][index], curves["step"][index]


def select_lr(candidates: dict[float, Optional[dict]]) -> Optional[dict]:
    """Choose the learning rate of one cell from its selection runs, on validation only.

    Args:
        candidates: lr -> the selection seed's record (None while not finished).
    Returns:
        None while a learning rate has not finished; else ``{"lr", "val_error", "val_loss",
        "step", "reason"}``: the learning rate whose run reached the lowest validation error
        (ties: lower validation loss, then the smaller learning rate). ``lr`` is None when
        every run diverged. No test error is read.
    """
    if any(record is None for record in candidates.values()):
        return None
    scored = []
    for lr, record in candidates.items():
        best = best_validation(record)
        if best is not None:
            scored.append((best[0], best[1], lr, best[2]))
    if not scored:
        return {"lr": None, "val_error": None, "val_loss": None, "step": None,
                "reason": "every learning rate diverged"}
    val_error, val_loss, lr, step = min(scored)
    return {"lr": lr, "val_error": val_error, "val_loss": val_loss, "step": step,
            "reason": "lowest validation error"}


def named_record(directory: Path, name: str) -> Optional[dict]:
    """The record ``name`` in ``directory`` with its ``name`` and repository-relative ``path``,
    or None when there is none."""
    path = directory / f"{name}.json"
    if not path.exists():
        return None
    record = read_record(path)
    record["name"] = name
    try:
        record["path"] = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        record["path"] = str(path)
    return record


def cell_selection(directory: str | os.PathLike, model: str, hidden: int,
                   profile: str = "paper") -> Optional[dict]:
    """``select_lr`` over the cell's committed selection records (None while incomplete)."""
    directory = Path(directory)
    candidates = {lr: named_record(directory, fair_name(model, hidden, lr, SELECTION_SEED))
                  for lr in FAIR_LRS}
    return select_lr(candidates)


def fair_plan(directory: str | os.PathLike = FAIR_DIR, profile: str = "paper",
              models: Iterable[str] = FAIR_MODELS, hidden: Iterable[int] = TABLE1_HIDDEN,
              seeds: Iterable[int] = FAIR_SEEDS, finding: bool = True
              ) -> tuple[dict[str, TrainConfig], list[str]]:
    """The protocol's runs in training order, as far as the records in ``directory`` fix them.

    Order: R = 20 (every model: its learning rates, then its other seeds at the chosen one);
    the LSTM finding (``FINDING``: every seed at Table 1's lr); then R = 50 and R = 100 the same
    way. Within an R: ``CELL_ORDER``.

    Returns:
        (name -> configuration in order, the cells whose seeds wait for their selection runs).
    """
    models = [m for m in CELL_ORDER if m in tuple(models)]
    hidden = sorted(hidden)
    seeds = tuple(seeds)
    directory = Path(directory)
    plan: dict[str, TrainConfig] = {}
    waiting: list[str] = []

    def add(model, r, lr, seed):
        name = fair_name(model, r, lr, seed)
        if name not in plan:
            plan[name] = fair_config(model, r, lr, seed, profile)

    def cell(model, r):
        for lr in FAIR_LRS:
            add(model, r, lr, SELECTION_SEED)
        chosen = cell_selection(directory, model, r, profile)
        if chosen is None:
            waiting.append(f"{model} R={r}")
        elif chosen["lr"] is not None:
            for seed in seeds:
                add(model, r, chosen["lr"], seed)

    for position, r in enumerate(hidden):
        for model in models:
            cell(model, r)
        if position == 0 and finding and FINDING["model"] in models \
                and FINDING["hidden"] in hidden:
            for seed in seeds:
                add(FINDING["model"], FINDING["hidden"], FINDING["lr"], seed)
    return plan, waiting


def run_fair(directory: str | os.PathLike = FAIR_DIR, profile: str = "paper",
             models: Iterable[str] = FAIR_MODELS, hidden: Iterable[int] = TABLE1_HIDDEN,
             seeds: Iterable[int] = FAIR_SEEDS, only: Optional[set[str]] = None,
             skip: Optional[set[str]] = None, limit: Optional[int] = None,
             quiet: bool = False, step: str = "auto",
             on_record: Optional[Callable[[str, dict, Path], None]] = None,
             workers: int = 1) -> dict:
    """Train the protocol's missing runs in ``fair_plan`` order, ``workers`` at a time, resumably.

    The next ``workers`` runs of the plan go to :func:`fwbook.experiments.sweep.run_sweep`
    together (one process and one torch thread each): a finished record is never redone, a
    half-done run resumes from its checkpoint. The plan is recomputed after every batch, so a
    cell's other seeds follow once its selection is complete (a batch waits for its slowest
    run; the plan keeps runs of one cell, of alike cost, next to each other).

    Returns:
        ``{"trained": [...], "failed": {name: message}}``.
    """
    from fwbook.experiments.sweep import SweepFailed, existing_record, run_sweep

    directory = Path(directory)
    trained: list[str] = []
    failed: dict[str, str] = {}
    while limit is None or len(trained) + len(failed) < limit:
        plan, _ = fair_plan(directory, profile, models, hidden, seeds)
        todo = [name for name, config in plan.items()
                if (only is None or name in only) and not (skip and name in skip)
                and name not in failed and existing_record(directory, name, config) is None]
        if not todo:
            break
        room = workers if limit is None else min(workers, limit - len(trained) - len(failed))
        batch = todo[:max(1, room)]
        try:
            run_sweep({name: plan[name] for name in batch}, directory, workers=len(batch),
                      profile=profile, quiet=quiet, on_record=on_record, step=step)
            trained += batch
        except SweepFailed as error:
            for name in batch:
                if existing_record(directory, name, plan[name]) is not None:
                    trained.append(name)
                else:
                    failed[name] = str(error)
    return {"trained": trained, "failed": failed}


# --------------------------------------------------------------------------- results


def cell_summary(directory: str | os.PathLike, model: str, hidden: int,
                 seeds: Iterable[int] = FAIR_SEEDS) -> dict:
    """What the records say about one cell under the protocol.

    Returns ``{"model", "hidden", "selection": {lr: {"val_error", "step", "stop", "status",
    "path", "record"} or None}, "chosen": select_lr(...) or None, "runs": [records at the
    chosen lr, by seed], "state"}`` and :func:`summarize` of the runs' test errors (``n``,
    ``mean``, ``std`` — None below two seeds —, ``min``, ``max``; fractions, not %).
    ``state`` is one of :data:`CELL_STATES`.
    """
    directory = Path(directory)
    seeds = tuple(seeds)
    selection = {}
    for lr in FAIR_LRS:
        record = named_record(directory, fair_name(model, hidden, lr, SELECTION_SEED))
        if record is None:
            selection[lr] = None
            continue
        best = best_validation(record)
        selection[lr] = {"val_error": best[0] if best else None,
                         "step": best[2] if best else None,
                         "stop": record.get("steps_done"), "status": record.get("status"),
                         "path": record["path"], "record": record}
    chosen = select_lr({lr: (s["record"] if s else None) for lr, s in selection.items()})
    runs = []
    if chosen is not None and chosen["lr"] is not None:
        for seed in seeds:
            record = named_record(directory, fair_name(model, hidden, chosen["lr"], seed))
            if record is not None and record.get("test_error") is not None:
                runs.append(record)
    cell = {"model": model, "hidden": hidden, "selection": selection, "chosen": chosen,
            "runs": runs, **summarize(run["test_error"] for run in runs)}
    return {**cell, "state": _cell_state(cell, len(seeds))}


# What a cell is waiting for, in the order a cell goes through them.
CELL_STATES = ("not run yet", "selecting", "seeds", "finished", "diverged")


def _cell_state(cell: dict, seeds: int) -> str:
    if cell["chosen"] is None:
        started = any(entry is not None for entry in cell["selection"].values())
        return "selecting" if started else "not run yet"
    if cell["chosen"]["lr"] is None:
        return "diverged"
    return "finished" if cell["n"] >= seeds else "seeds"


def fair_cells(directory: str | os.PathLike = FAIR_DIR, models: Iterable[str] = FAIR_MODELS,
               hidden: Iterable[int] = TABLE1_HIDDEN) -> list[dict]:
    return [cell_summary(directory, model, r) for model in models for r in sorted(hidden)]


def cell_runs(cell: dict) -> list[dict]:
    """Every finished run of a cell: its selection runs (one per learning rate, seed
    ``SELECTION_SEED``), then the other seeds at the chosen learning rate."""
    records = [entry["record"] for entry in cell["selection"].values() if entry is not None]
    return records + [run for run in cell["runs"] if run.get("seed") != SELECTION_SEED]


def still_improving(record: dict) -> bool:
    """Whether the cap, not the patience, ended a run while it was still improving: its lowest
    validation error was at its last evaluation."""
    early = record.get("early_stopping") or {}
    return early.get("stop_reason") == "cap" and early.get("best_step") == record.get("steps_done")


def capped_cells(cells: list[dict]) -> list[dict]:
    """The cells whose runs at the chosen learning rate the cap stopped while still improving:
    ``{"model", "hidden", "lr", "runs": runs at the chosen lr, "capped": [their names], "cap":
    the cap in updates}``, in the order of ``cells``."""
    found = []
    for cell in cells:
        capped = [run["name"] for run in cell["runs"] if still_improving(run)]
        if capped:
            found.append({"model": cell["model"], "hidden": cell["hidden"],
                          "lr": cell["chosen"]["lr"], "runs": cell["n"], "capped": capped,
                          "cap": cell["runs"][0]["config"]["steps"]})
    return found


def fair_verdict(cells: list[dict], hidden: int = 20, min_seeds: int = len(FAIR_SEEDS)) -> dict:
    """Does fast weights beat every control at R = ``hidden`` under the protocol?

    Returns ``{"decided": bool, "survives": bool or None, "missing": [models without
    min_seeds runs], "fast_weights": mean, "best_control": (model, mean) or None,
    "fast_weights_capped": the fraction of fast weights' runs the cap stopped while still
    improving (None without runs), "controls_capped": {model: that fraction}}``. The claim
    survives when fast weights' mean test error is below every control's mean and below the
    best control's lowest seed.
    """
    at_r = {cell["model"]: cell for cell in cells if cell["hidden"] == hidden}
    missing = [m for m, cell in at_r.items() if cell["n"] < min_seeds]
    fw = at_r.get("fast_weights")
    controls = {m: cell for m, cell in at_r.items() if m != "fast_weights" and cell["n"]}
    best = min(controls.items(), key=lambda item: item[1]["mean"]) if controls else None
    capped = {entry["model"]: len(entry["capped"]) / entry["runs"]
              for entry in capped_cells(list(at_r.values()))}
    result = {"decided": not missing and fw is not None, "missing": missing,
              "fast_weights": fw["mean"] if fw else None,
              "best_control": (best[0], best[1]["mean"]) if best else None, "survives": None,
              "fast_weights_capped": capped.get("fast_weights", 0.0) if fw and fw["n"] else None,
              "controls_capped": {m: capped.get(m, 0.0) for m in controls}}
    if fw and fw["n"] and best:
        lowest_control_seed = min(run["test_error"] for run in best[1]["runs"])
        result["survives"] = fw["mean"] < best[1]["mean"] and fw["mean"] < lowest_control_seed
    return result


def plateau_updates(record: dict, level: float = 0.5) -> Optional[int]:
    """The first evaluated update at which validation error is below ``level`` (50%: well under
    the 61.65% value-only plateau); None when the run never got there."""
    curves = record["curves"]
    for step, error in zip(curves["step"], curves["val_error"]):
        if error < level:
            return step
    return None


def finding_rows(fair_directory: str | os.PathLike = FAIR_DIR,
                 table1_directory: str | os.PathLike = REPO_ROOT / "results" / "table1",
                 seeds: Iterable[int] = FAIR_SEEDS) -> list[dict]:
    """The LSTM plateau finding, per seed: one-hot (Table 1's record) against input processing
    (the fair record at the same lr), each with the update where validation error first fell
    below 50% and the validation error at 5,000 and 10,000 updates."""
    model, hidden, lr = FINDING["model"], FINDING["hidden"], FINDING["lr"]
    rows = []
    for seed in seeds:
        one_hot = named_record(Path(table1_directory), f"{model}_R{hidden}_seed{seed}")
        embedded = named_record(Path(fair_directory), fair_name(model, hidden, lr, seed))
        row = {"seed": seed}
        for label, record in (("one_hot", one_hot), ("embedding", embedded)):
            if record is None:
                row[label] = None
                continue
            curve = dict(zip(record["curves"]["step"], record["curves"]["val_error"]))
            row[label] = {"path": record["path"], "lr": record["config"]["lr"],
                          "below_50": plateau_updates(record),
                          "at_5000": curve.get(5_000), "at_10000": curve.get(10_000),
                          "test_error": record.get("test_error")}
        rows.append(row)
    return rows


def compute_by_model(directory: str | os.PathLike = FAIR_DIR) -> dict[str, dict]:
    """Training wall time spent on the protocol's records, per model: runs, hours, median
    minutes per run, updates in all and per run (mean)."""
    spent: dict[str, list[dict]] = {}
    for record in load_records(directory):
        spent.setdefault(record["model"], []).append(record)
    result = {}
    for model, records in spent.items():
        walls = [float(r.get("wall_s") or 0.0) for r in records]
        updates = [r.get("steps_done", 0) for r in records]
        result[model] = {"runs": len(records), "hours": sum(walls) / 3600,
                         "median_minutes": statistics.median(walls) / 60,
                         "updates": sum(updates), "mean_updates": sum(updates) / len(updates)}
    return result


def protocol_compute(directory: str | os.PathLike = FAIR_DIR) -> dict:
    """The compute the protocol has spent so far: :func:`compute_by_model` (``by_model``), its
    totals (``runs``, ``hours``, ``updates``) and the wall-clock time from the first run's start
    to the last run's end (``first_start``, ``last_end``, ``elapsed_hours``; None without
    records). A run's end is its ``started_at`` plus its training wall time; a resumed run's
    ``started_at`` is its last resume, so ``last_end`` errs late, never early."""
    by_model = compute_by_model(directory)
    spans = []
    for record in load_records(directory):
        if record.get("started_at"):
            start = datetime.fromisoformat(record["started_at"])
            spans.append((start, start + timedelta(seconds=float(record.get("wall_s") or 0.0))))
    first = min(start for start, _ in spans) if spans else None
    last = max(end for _, end in spans) if spans else None
    return {"by_model": by_model, "runs": sum(m["runs"] for m in by_model.values()),
            "hours": sum(m["hours"] for m in by_model.values()),
            "updates": sum(m["updates"] for m in by_model.values()),
            "first_start": first, "last_end": last,
            "elapsed_hours": (last - first).total_seconds() / 3600 if spans else None}


def today_cells(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """``fwbook.experiments.table1.table1_rows`` as (model, R) -> cell (in %), to set beside
    the protocol's cells."""
    return {(row["model"], r): cell for row in rows for r, cell in row["cells"].items()}


def projection(directory: str | os.PathLike = FAIR_DIR, profile: str = "paper") -> dict:
    """Measured time per run by model and the time the protocol's missing runs need.

    A cell needs ``len(FAIR_LRS) + len(FAIR_SEEDS) - 1`` runs (its seeds at the chosen learning
    rate, the selection seed's run included once). Returns ``{"by_model": {model: {"runs",
    "median_minutes", "remaining_runs", "remaining_hours" or None}}, "remaining_hours" (None
    while a model with runs left has no measurement)}``.
    """
    measured = compute_by_model(directory)
    per_cell = len(FAIR_LRS) + len(FAIR_SEEDS) - 1
    by_model = {}
    total: Optional[float] = 0.0
    for model in CELL_ORDER:
        done = measured.get(model, {}).get("runs", 0)
        remaining = max(0, per_cell * len(TABLE1_HIDDEN) - done)
        minutes = measured.get(model, {}).get("median_minutes")
        hours = None if minutes is None else remaining * minutes / 60
        if remaining and hours is None:
            total = None
        elif total is not None and hours is not None:
            total += hours
        by_model[model] = {"runs": done, "median_minutes": minutes, "remaining_runs": remaining,
                           "remaining_hours": hours}
    return {"by_model": by_model, "remaining_hours": total}

