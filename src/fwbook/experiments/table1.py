"""Table 1 from run records: loading, grouping into cells, the seed statistics of each cell,
the recipe comparisons and the compute spent. No plotting, no page formatting (that is
``fwbook.chapters.ch05_results``).

Every number is computed from run records (``results/table1/*.json`` for the published book);
nothing is typed in except the paper's own Table 1 (``grids.PAPER_TABLE1``). Test errors in
the cells here are in %, spread over seeds as :func:`fwbook.experiments.stats.summarize` gives
it (ddof = 1; None below two seeds).
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Iterable, Optional

from fwbook.core.records import REPO_ROOT, config_hash, load_records
from fwbook.experiments.grids import (CONTROL_RECIPE_MODELS, CONTROL_RECIPES, EXTRA_RECIPES,
                                      PAPER_TABLE1, TABLE1_EXTRA_MODELS, TABLE1_HIDDEN,
                                      TABLE1_MODELS, table1_configs)
from fwbook.experiments.stats import summarize

TABLE1_DIR = REPO_ROOT / "results" / "table1"
# The paper's R = 20 fast-weights cell, the target of our recipes (test error, %).
FW_R20_TARGET = PAPER_TABLE1[("fast_weights", 20)]


def load_table1(directory: str | os.PathLike = TABLE1_DIR, profile: Optional[str] = "paper",
                current_only: bool = True, seeds: Iterable[int] = range(10)) -> list[dict]:
    """Table 1 run records in ``directory`` (of ``profile``, unless None), every recipe.

    With ``current_only`` (and a profile) a record counts only when its ``config_hash`` is that
    of a configuration ``table1_configs(profile, seeds)`` gives today: a record made with an
    older recipe is left out, never mixed in.
    """
    match = {} if profile is None else {"profile": profile}
    records = load_records(directory, **match) if Path(directory).exists() else []
    if current_only and profile is not None:
        wanted = {config_hash(c.to_dict()) for c in table1_configs(profile, tuple(seeds)).values()}
        records = [r for r in records if r.get("config_hash") in wanted]
    return records


def recipe_of(record: dict) -> str:
    """The named recipe of ``EXTRA_RECIPES`` or ``CONTROL_RECIPES`` a record was run with (its
    name's prefix), or ``""`` for the profile's own recipe (the one every Table 1 cell uses)."""
    name = str(record.get("name", ""))
    for recipe in sorted([*EXTRA_RECIPES, *CONTROL_RECIPES], key=len, reverse=True):
        if name.startswith(f"{recipe}_"):
            return recipe
    return ""


def is_extra_recipe(record: dict) -> bool:
    return recipe_of(record) != ""


def recipe_label(recipe: str, config: Optional[dict] = None) -> str:
    """``"ours (Table 1): lr 0.001, constant"``, ``"the paper's: lr 0.0001, constant"``."""
    settings = (config or {}) if not recipe else {**(config or {}), **EXTRA_RECIPES[recipe]}
    settings.pop("budget_factor", None)
    name = {"": "ours (Table 1)", "paper_recipe": "the paper's"}.get(recipe, recipe)
    if "lr" in settings:
        return f"{name}: lr {settings['lr']:g}, {settings.get('lr_schedule', 'constant')}"
    return name


def seed_summary(members: list[dict]) -> dict:
    """The test error of a group of runs (one cell), in %: :func:`summarize` over the finished
    runs (``n``, ``mean``, ``std`` — None below two seeds —, ``min``, ``max``) plus
    ``diverged``, ``seeds``, ``wall_s`` and, by seed, ``paths`` and ``values`` (None where a
    run has no test error)."""
    def finished(member):
        return member.get("status") == "completed" and member.get("test_error") is not None

    by_seed = sorted(members, key=lambda m: m.get("seed", 0))
    values = [100 * m["test_error"] if finished(m) else None for m in by_seed]
    return {**summarize(values), "diverged": sum(1 for m in members if not finished(m)),
            "seeds": [m.get("seed") for m in by_seed],
            "wall_s": sum(float(m.get("wall_s") or 0.0) for m in members),
            "paths": [m.get("path", "") for m in by_seed], "values": values}


def table1_rows(records: Iterable[dict],
                models: tuple[str, ...] = TABLE1_MODELS + TABLE1_EXTRA_MODELS,
                hidden: tuple[int, ...] = TABLE1_HIDDEN) -> list[dict]:
    """One row per model: ``{"model", "cells": {R: cell}}`` with the profile's recipe only.

    A cell is :func:`seed_summary` plus ``paper`` (the paper's %, or None); ``n == 0`` and no
    paths means the cell was not run yet.
    """
    records = [r for r in records if not is_extra_recipe(r)]
    rows = []
    for model in models:
        cells = {}
        for r in hidden:
            members = [rec for rec in records if rec.get("model") == model and rec.get("hidden") == r]
            cells[r] = {"paper": PAPER_TABLE1.get((model, r)), **seed_summary(members)}
        rows.append({"model": model, "cells": cells})
    return rows


def recipe_cells(records: Iterable[dict], model: str = "fast_weights", hidden: int = 20
                 ) -> list[dict]:
    """One summary per recipe of one cell: the profile's own first, then ``EXTRA_RECIPES``.

    Each is a :func:`table1_rows` cell plus ``recipe``, ``label``, ``lr``, ``lr_schedule`` and
    ``steps`` (None where the recipe has no record yet).
    """
    records = [r for r in records if r.get("model") == model and r.get("hidden") == hidden]
    cells = []
    for recipe in ("",) + tuple(EXTRA_RECIPES):
        members = [r for r in records if recipe_of(r) == recipe]
        config = members[0]["config"] if members else None
        cells.append({"recipe": recipe, "label": recipe_label(recipe, config),
                      "lr": config["lr"] if config else None,
                      "lr_schedule": config["lr_schedule"] if config else None,
                      "steps": config["steps"] if config else None,
                      "paper": PAPER_TABLE1.get((model, hidden)), **seed_summary(members)})
    return cells


def target_met(records: Iterable[dict], min_seeds: int = 3, recipe: str = "") -> Optional[bool]:
    """Whether fast weights at R = 20 reach the paper's 1.81% (mean over >= ``min_seeds``
    seeds) with ``recipe`` ("" = the profile's own). None while fewer seeds have finished."""
    cell = {c["recipe"]: c for c in recipe_cells(records)}[recipe]
    if cell["n"] < min_seeds:
        return None
    return cell["mean"] <= FW_R20_TARGET


def control_budget_cells(records: Iterable[dict], hidden: int = 20) -> list[dict]:
    """Each model of ``CONTROL_RECIPE_MODELS`` at R = ``hidden`` under the profile's budget (its
    Table 1 cell) and every longer budget of ``CONTROL_RECIPES``: :func:`seed_summary` plus
    ``model``, ``recipe`` and ``steps`` (the updates its records ran, else the planned ones)."""
    records = [r for r in records if r.get("hidden") == hidden]
    cells = []
    for model in CONTROL_RECIPE_MODELS:
        for recipe in ("",) + tuple(CONTROL_RECIPES):
            members = [r for r in records if r.get("model") == model and recipe_of(r) == recipe]
            steps = sorted({m["config"]["steps"] for m in members})
            planned = CONTROL_RECIPES.get(recipe, {}).get("steps")
            cells.append({"model": model, "recipe": recipe,
                          "steps": steps or ([planned] if planned else []),
                          **seed_summary(members)})
    return cells


def missing_cells(rows: list[dict]) -> list[tuple[str, int]]:
    """(model, R) of the cells of :func:`table1_rows` with no finished run."""
    return [(row["model"], r) for row in rows for r, cell in row["cells"].items()
            if cell["n"] == 0]


def cells_behind_the_paper(rows: list[dict], margin: float = 1.0, skip_hidden: int = 20
                           ) -> list[tuple[str, int, dict]]:
    """(model, R, cell) of the paper's models where our mean is more than ``margin`` points
    above the paper's number, at every R but ``skip_hidden`` (the claim's R, reported apart)."""
    return [(row["model"], r, cell) for row in rows if row["model"] in TABLE1_MODELS
            for r, cell in row["cells"].items()
            if r != skip_hidden and cell["n"] and cell["paper"] is not None
            and cell["mean"] - cell["paper"] > margin]


# --------------------------------------------------------------------------- compute


def compute_spent(records: Iterable[dict]) -> dict:
    """Total training wall time of ``records``: ``{"runs", "wall_s", "hours"}``."""
    records = list(records)
    wall = sum(float(r.get("wall_s") or 0.0) for r in records)
    return {"runs": len(records), "wall_s": wall, "hours": wall / 3600}


def grid_time(records: Iterable[dict], models: tuple[str, ...] = TABLE1_MODELS,
              hidden_sizes: tuple[int, ...] = TABLE1_HIDDEN, seeds: int = 3, workers: int = 2
              ) -> dict:
    """How long the Table 1 grid takes with the current training step, from measured runs.

    Only records trained with ``train``'s default step (``record["training_step"]["reason"]``
    starting "auto", written since ``train`` got its "auto" step) count: not older records,
    nor runs whose step was forced (e.g. resumed eagerly), and only the profile's own recipe. A
    cell (model, R) costs ``seeds`` times the median wall time of its measured runs; the grid
    is the sum over cells divided by ``workers`` parallel sweep workers (one thread each).

    Returns:
        ``{"cells": {(model, R): {"runs", "median_wall_s", "steps"}}, "missing": [...],
        "grid_hours": hours on ``workers`` workers for the cells measured, "workers",
        "seeds"}``; "missing" lists the cells without such a record.
    """
    by_cell: dict[tuple[str, int], list[dict]] = {}
    for record in records:
        step = record.get("training_step") or {}
        if not str(step.get("reason", "")).startswith("auto") or recipe_of(record) \
                or record.get("status") != "completed":
            continue  # older records, runs with a forced step, other recipes, failures
        key = (record["model"], record["hidden"])
        if key[0] in models and key[1] in hidden_sizes:
            by_cell.setdefault(key, []).append(record)
    cells, missing, total_s = {}, [], 0.0
    for model in models:
        for hidden in hidden_sizes:
            members = by_cell.get((model, hidden))
            if not members:
                missing.append(f"{model} R={hidden}")
                continue
            median = statistics.median(float(r["wall_s"]) for r in members)
            cells[(model, hidden)] = {"runs": len(members), "median_wall_s": median,
                                      "steps": sorted({r["training_step"]["path"]
                                                       for r in members})}
            total_s += seeds * median
    return {"cells": cells, "missing": missing, "grid_hours": total_s / workers / 3600,
            "workers": workers, "seeds": seeds}


def compute_by_folder(root: str | os.PathLike = REPO_ROOT / "results") -> dict[str, dict]:
    """Training wall time of every run record under ``root``, per folder.

    A run record is a JSON object with a ``seed`` and a wall time (``wall_s``, or
    ``wall_time_s`` in the Catch records); benchmark documents and other files are skipped.

    Returns:
        ``{folder relative to root: {"runs", "hours"}}``, folders sorted.
    """
    root = Path(root)
    totals: dict[str, dict] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "seed" not in record:
            continue
        wall = record.get("wall_s", record.get("wall_time_s"))
        if wall is None:
            continue
        folder = path.parent.relative_to(root).as_posix()
        entry = totals.setdefault(folder, {"runs": 0, "hours": 0.0})
        entry["runs"] += 1
        entry["hours"] += float(wall) / 3600
    return dict(sorted(totals.items()))
