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
from pathlib import Path
from statistics import mean, stdev
from typing import Callable, Iterable, Optional

from fwbook.experiments.grids import (PAPER_TABLE1, TABLE1_EXTRA_MODELS, TABLE1_HIDDEN, TABLE1_MODELS,
                          check_profile, retrieval_config)
from fwbook.core.records import REPO_ROOT, read_record
from fwbook.core.train import TrainConfig

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


def _record(directory: Path, name: str) -> Optional[dict]:
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
    candidates = {lr: _record(directory, fair_name(model, hidden, lr, SELECTION_SEED))
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
             on_record: Optional[Callable[[str, dict, Path], None]] = None) -> dict:
    """Train the protocol's missing runs one at a time, in ``fair_plan`` order, resumably.

    Each run goes through :func:`fwbook.experiments.sweep.run_sweep` (one worker, one torch thread): a
    finished record is never redone, a half-done run resumes from its checkpoint. The plan is
    recomputed after every run, so a cell's other seeds follow once its selection is complete.

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
        name = todo[0]
        try:
            run_sweep({name: plan[name]}, directory, workers=1, profile=profile, quiet=quiet,
                      on_record=on_record, step=step)
            trained.append(name)
        except SweepFailed as error:
            failed[name] = str(error)
    return {"trained": trained, "failed": failed}


# --------------------------------------------------------------------------- results


def cell_summary(directory: str | os.PathLike, model: str, hidden: int,
                 seeds: Iterable[int] = FAIR_SEEDS) -> dict:
    """What the records say about one cell under the protocol.

    Returns ``{"model", "hidden", "selection": {lr: {"val_error", "step", "stop", "path"} or
    None}, "chosen": select_lr(...) or None, "runs": [records at the chosen lr, by seed],
    "mean", "std", "n"}`` (test errors as fractions; mean/std None without runs).
    """
    directory = Path(directory)
    selection = {}
    for lr in FAIR_LRS:
        record = _record(directory, fair_name(model, hidden, lr, SELECTION_SEED))
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
            record = _record(directory, fair_name(model, hidden, chosen["lr"], seed))
            if record is not None and record.get("test_error") is not None:
                runs.append(record)
    values = [run["test_error"] for run in runs]
    return {"model": model, "hidden": hidden, "selection": selection, "chosen": chosen,
            "runs": runs, "n": len(values),
            "mean": mean(values) if values else None,
            "std": stdev(values) if len(values) > 1 else (0.0 if values else None)}


def fair_cells(directory: str | os.PathLike = FAIR_DIR, models: Iterable[str] = FAIR_MODELS,
               hidden: Iterable[int] = TABLE1_HIDDEN) -> list[dict]:
    return [cell_summary(directory, model, r) for model in models for r in sorted(hidden)]


def _percent(value: Optional[float], spread: Optional[float] = None, n: Optional[int] = None
             ) -> str:
    if value is None:
        return "not run yet"
    text = f"{100 * value:.2f}"
    if spread is not None and n and n > 1:
        text += f" ± {100 * spread:.2f}"
    if n is not None:
        text += f" (n={n})"
    return text


MODEL_LABELS = {"irnn": "IRNN", "lstm": "LSTM", "alstm": "A-LSTM", "fast_weights": "Fast weights",
                "ln_irnn": "LN-IRNN (ours, extra)"}


def comparison_markdown(cells: list[dict], today: dict[tuple[str, int], dict]) -> str:
    """Table: per model and R, the fair protocol's test error beside today's table (one-hot,
    fixed budget) and the paper's number; and the chosen learning rate and stopping points.

    Args:
        cells: :func:`fair_cells`.
        today: (model, R) -> ``{"mean", "std", "n"}`` of today's Table 1 in % (the cells of
            ``fwbook.chapters.ch05_results.table1_rows``).
    """
    lines = ["| model | R | fair protocol: test error (%) | chosen lr (val. error at best) "
             "| best update / stop, per seed | today's Table 1 (%) | paper (%) |",
             "|---|---:|---:|---|---|---:|---:|"]
    for cell in cells:
        model, r = cell["model"], cell["hidden"]
        chosen = cell["chosen"]
        if chosen is None:
            done = sum(1 for s in cell["selection"].values() if s is not None)
            lr_text = f"selecting ({done} of {len(FAIR_LRS)} learning rates run)"
        elif chosen["lr"] is None:
            lr_text = chosen["reason"]
        else:
            lr_text = f"{lr_label(chosen['lr'])} ({100 * chosen['val_error']:.2f}%)"
        stops = ", ".join(f"{run['early_stopping']['best_step']:,} / {run['steps_done']:,}"
                          for run in cell["runs"]) or "—"
        now = today.get((model, r))
        now_text = "not run yet"
        if now and now.get("n"):
            now_text = _percent(now["mean"] / 100, now["std"] / 100, now["n"])
        paper = PAPER_TABLE1.get((model, r))
        paper_text = "—" if paper is None else f"{paper:g}"
        lines.append(f"| {MODEL_LABELS[model]} | {r} | "
                     f"{_percent(cell['mean'], cell['std'], cell['n'] if cell['n'] else None)} | "
                     f"{lr_text} | {stops} | {now_text} | {paper_text} |")
    return "\n".join(lines)


def selection_markdown(cells: list[dict]) -> str:
    """Every selection run: per cell and learning rate, the lowest validation error, the update
    it was reached at and where the run stopped (read from the committed records)."""
    lines = ["| model | R | " + " | ".join(f"lr {lr_label(lr)}" for lr in FAIR_LRS) + " |",
             "|---|---:|" + "---|" * len(FAIR_LRS)]
    for cell in cells:
        parts = []
        for lr in FAIR_LRS:
            entry = cell["selection"][lr]
            if entry is None:
                parts.append("not run yet")
            elif entry["val_error"] is None:
                parts.append(entry["status"])
            else:
                mark = " **chosen**" if cell["chosen"] and cell["chosen"]["lr"] == lr else ""
                parts.append(f"{100 * entry['val_error']:.2f}% at {entry['step']:,} "
                             f"(stopped {entry['stop']:,}){mark}")
        lines.append(f"| {MODEL_LABELS[cell['model']]} | {cell['hidden']} | "
                     + " | ".join(parts) + " |")
    return "\n".join(lines)


def fair_verdict(cells: list[dict], hidden: int = 20, min_seeds: int = 3) -> dict:
    """Does fast weights beat every control at R = ``hidden`` under the protocol?

    Returns ``{"decided": bool, "survives": bool or None, "missing": [cells without
    min_seeds runs], "fast_weights": mean, "best_control": (model, mean) or None}``.
    The claim survives when fast weights' mean test error is below every control's mean and
    below the best control's lowest seed.
    """
    at_r = {cell["model"]: cell for cell in cells if cell["hidden"] == hidden}
    missing = [MODEL_LABELS[m] for m, cell in at_r.items() if cell["n"] < min_seeds]
    fw = at_r.get("fast_weights")
    controls = {m: cell for m, cell in at_r.items() if m != "fast_weights" and cell["n"]}
    best = min(controls.items(), key=lambda item: item[1]["mean"]) if controls else None
    result = {"decided": not missing and fw is not None, "missing": missing,
              "fast_weights": fw["mean"] if fw else None,
              "best_control": (best[0], best[1]["mean"]) if best else None, "survives": None}
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
        one_hot = _record(Path(table1_directory), f"{model}_R{hidden}_seed{seed}")
        embedded = _record(Path(fair_directory), fair_name(model, hidden, lr, seed))
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


def validation_curves_figure(cells: list[dict]):
    """Validation error against updates for every finished run of every cell (one panel per
    model and R; colour: learning rate; a dot where each run's lowest validation error was;
    the error axis is linear below 1% and logarithmic above, so 0.1% and 60% both show)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    models = sorted({cell["model"] for cell in cells}, key=CELL_ORDER.index)
    hidden = sorted({cell["hidden"] for cell in cells})
    figure, axes = plt.subplots(len(models), len(hidden), figsize=(3.2 * len(hidden),
                                2.2 * len(models)), sharex=True, sharey=True, squeeze=False)
    colours = dict(zip(FAIR_LRS, ("tab:blue", "tab:orange", "tab:green")))
    for cell in cells:
        axis = axes[models.index(cell["model"])][hidden.index(cell["hidden"])]
        records = [s["record"] for s in cell["selection"].values() if s is not None]
        records += [run for run in cell["runs"] if run.get("seed") != SELECTION_SEED]
        for record in records:
            curves = record["curves"]
            lr = record["config"]["lr"]
            axis.plot(curves["step"], [100 * v for v in curves["val_error"]],
                      color=colours.get(lr, "grey"), lw=1,
                      ls="-" if record.get("seed") == SELECTION_SEED else ":")
            best = best_validation(record)
            if best is not None:
                axis.plot([best[2]], [100 * best[0]], "o", color=colours.get(lr, "grey"), ms=3)
        if not records:
            axis.text(0.5, 0.5, "not run yet", ha="center", va="center",
                      transform=axis.transAxes, color="grey")
        axis.set_title(f"{MODEL_LABELS[cell['model']].split(' (')[0]}, R = {cell['hidden']}",
                       fontsize=9)
        axis.set_yscale("symlog", linthresh=1.0)  # linear below 1%, logarithmic above
        axis.set_ylim(0, 100)
        axis.set_yticks([0, 1, 10, 100])
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    for axis in axes[-1]:
        axis.set_xlabel("update")
    for row in axes:
        row[0].set_ylabel("val. error (%)")
    handles = [plt.Line2D([], [], color=c, label=f"lr {lr_label(lr)}") for lr, c in colours.items()]
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    return figure


def compute_by_model(directory: str | os.PathLike = FAIR_DIR) -> dict[str, dict]:
    """Training wall time spent on the protocol's records, per model: runs, hours, median
    minutes per run, mean updates per run."""
    from fwbook.core.records import load_records

    spent: dict[str, list[dict]] = {}
    for record in load_records(directory):
        spent.setdefault(record["model"], []).append(record)
    result = {}
    for model, records in spent.items():
        walls = sorted(float(r.get("wall_s") or 0.0) for r in records)
        middle = len(walls) // 2
        median = walls[middle] if len(walls) % 2 else (walls[middle - 1] + walls[middle]) / 2
        result[model] = {"runs": len(records), "hours": sum(walls) / 3600,
                         "median_minutes": median / 60,
                         "mean_updates": mean(r.get("steps_done", 0) for r in records)}
    return result


def today_cells(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """``fwbook.chapters.ch05_results.table1_rows`` as (model, R) -> cell (in %), for
    :func:`comparison_markdown`."""
    return {(row["model"], r): cell for row in rows for r, cell in row["cells"].items()}


def verdict_markdown(cells: list[dict], today: dict[tuple[str, int], dict],
                     hidden: int = 20) -> str:
    """The recomputed verdict on the paper's claim at R = ``hidden``, and, per control, whether
    the protocol made it at least as good as today's table; every number from the records."""
    verdict = fair_verdict(cells, hidden)
    lines = []
    fw = verdict["fast_weights"]
    best = verdict["best_control"]
    if verdict["missing"]:
        lines.append(f"- **Not decided yet at R = {hidden}**: fewer than 3 seeds under the "
                     f"protocol for {', '.join(verdict['missing'])}.")
    if fw is not None and best is not None:
        label = MODEL_LABELS[best[0]]
        holds = "holds" if verdict["survives"] else "does **not** hold"
        scope = "" if verdict["decided"] else " among the cells finished so far"
        lines.append(f"- **The paper's claim at R = {hidden}** (fast weights beat every control)"
                     f" {holds}{scope}: fast weights {100 * fw:.2f}% against the best control,"
                     f" {label}, at {100 * best[1]:.2f}% (means over the seeds finished).")
    for cell in cells:
        if cell["model"] == "fast_weights" or not cell["n"]:
            continue
        now = today.get((cell["model"], cell["hidden"]))
        if not now or not now.get("n"):
            continue
        better = 100 * cell["mean"] <= now["mean"]
        provisional = " (provisional: fewer than 3 seeds)" if cell["n"] < 3 else ""
        lines.append(f"- {MODEL_LABELS[cell['model']]}, R = {cell['hidden']}{provisional}: "
                     f"{100 * cell['mean']:.2f}% under the protocol (n={cell['n']}) against "
                     f"{now['mean']:.2f}% in today's table (n={now['n']}): "
                     + ("at least as good." if better else "**worse**; see its validation "
                        "curves and chosen learning rate."))
    capped = still_improving(cells)
    if capped:
        lines.append(f"- **Still improving at the cap** ({len(capped)} runs; their lowest "
                     f"validation error was at their last evaluation, so the cap, not the "
                     f"patience, ended them): " + ", ".join(capped) + ".")
    if not lines:
        lines.append("- No cell has finished under the protocol yet.")
    return "\n".join(lines)


def still_improving(cells: list[dict]) -> list[str]:
    """Names of the finished runs stopped by the cap with their best at the last update."""
    names = []
    for cell in cells:
        records = [s["record"] for s in cell["selection"].values() if s is not None]
        records += [run for run in cell["runs"] if run.get("seed") != SELECTION_SEED]
        for record in records:
            early = record.get("early_stopping") or {}
            if early.get("stop_reason") == "cap" and early.get("best_step") == record["steps_done"]:
                names.append(record["name"])
    return names


def finding_markdown(rows: list[dict]) -> str:
    """The LSTM plateau finding as a table, one row per seed (from :func:`finding_rows`)."""
    def part(entry):
        if entry is None:
            return "not run yet", "—", "—"
        below = f"{entry['below_50']:,}" if entry["below_50"] is not None else "never"
        at = [f"{100 * entry[k]:.2f}%" if entry[k] is not None else "—"
              for k in ("at_5000", "at_10000")]
        return below, *at

    lines = ["| seed | one-hot: val. error < 50% first at update | one-hot: val. error at "
             "5,000 / 10,000 | embedding: val. error < 50% first at update | embedding: "
             "val. error at 5,000 / 10,000 |", "|---:|---:|---:|---:|---:|"]
    for row in rows:
        a = part(row["one_hot"])
        b = part(row["embedding"])
        lines.append(f"| {row['seed']} | {a[0]} | {a[1]} / {a[2]} | {b[0]} | {b[1]} / {b[2]} |")
    return "\n".join(lines)


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
