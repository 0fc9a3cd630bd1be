"""Tables and figures from run records: Table 1 beside the paper's numbers, and Figure 2.

Every number here is computed from run records (``results/table1/*.json`` for the published
book); nothing is typed in except the paper's own Table 1 (``experiments.PAPER_TABLE1``). A cell
without records is shown as "not run yet", never guessed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
import statistics
from statistics import mean, stdev
from typing import Iterable, Optional

from fwbook.experiments.grids import (CONTROL_RECIPES, EXTRA_RECIPES, PAPER_TABLE1, TABLE1_EXTRA_MODELS,
                          TABLE1_HIDDEN, TABLE1_MODELS, check_profile)
from fwbook.core.records import REPO_ROOT, load_records

TABLE1_DIR = REPO_ROOT / "results" / "table1"
PAPER_RECIPE_PREFIX = "paper_recipe_"
README_START = "<!-- table1:start -->"
README_END = "<!-- table1:end -->"
NOT_RUN = "not run yet"
# The paper's R = 20 fast-weights cell, the target of our recipe (test error, %).
FW_R20_TARGET = PAPER_TABLE1[("fast_weights", 20)]


def load_table1(directory: str | os.PathLike = TABLE1_DIR, profile: Optional[str] = "paper",
                current_only: bool = True, seeds: Iterable[int] = range(10)) -> list[dict]:
    """Table 1 run records in ``directory`` (of ``profile``, unless None), both recipes.

    With ``current_only`` (and a profile) a record counts only when its ``config_hash`` is that
    of a configuration ``table1_configs(profile, seeds)`` gives today: a record made with an
    older recipe is left out, never mixed in.
    """
    match = {} if profile is None else {"profile": profile}
    records = load_records(directory, **match) if Path(directory).exists() else []
    if current_only and profile is not None:
        from fwbook.experiments.grids import table1_configs
        from fwbook.core.records import config_hash

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


def is_paper_recipe(record: dict) -> bool:
    return recipe_of(record) == "paper_recipe"


def is_extra_recipe(record: dict) -> bool:
    return recipe_of(record) != ""


def recipe_label(recipe: str, config: Optional[dict] = None) -> str:
    """``"ours: lr 0.001, constant"``, ``"paper_recipe: lr 0.0001, constant"``."""
    settings = (config or {}) if not recipe else {**(config or {}), **EXTRA_RECIPES[recipe]}
    settings.pop("budget_factor", None)
    name = {"": "ours (Table 1)", "paper_recipe": "the paper's"}.get(recipe, recipe)
    if "lr" in settings:
        return f"{name}: lr {settings['lr']:g}, {settings.get('lr_schedule', 'constant')}"
    return name


def recipe_cells(records: Iterable[dict], model: str = "fast_weights", hidden: int = 20
                 ) -> list[dict]:
    """One summary per recipe of one cell: the profile's own first, then ``EXTRA_RECIPES``.

    Each is a :func:`table1_rows`-style summary plus ``recipe``, ``label``, ``lr``,
    ``lr_schedule`` and ``steps`` (None where the recipe has no record yet).
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
                      "paper": PAPER_TABLE1.get((model, hidden)), **_summary(members)})
    return cells


def _summary(members: list[dict]) -> dict:
    """Mean, spread (sample std over seeds) and sources of test error, in %."""
    finished = [m for m in members if m.get("status") == "completed" and m.get("test_error") is not None]
    values = [100 * m["test_error"] for m in finished]
    return {"n": len(values), "diverged": len(members) - len(finished),
            "mean": mean(values) if values else None,
            "std": stdev(values) if len(values) > 1 else (0.0 if values else None),
            "min": min(values) if values else None, "max": max(values) if values else None,
            "seeds": sorted(m.get("seed") for m in members),
            "wall_s": sum(float(m.get("wall_s") or 0.0) for m in members),
            "paths": [m.get("path", "") for m in sorted(members, key=lambda m: m.get("seed", 0))],
            "values": [None if m.get("test_error") is None or m.get("status") != "completed"
                       else 100 * m["test_error"]
                       for m in sorted(members, key=lambda m: m.get("seed", 0))]}


def table1_rows(records: Iterable[dict], models: tuple[str, ...] = TABLE1_MODELS + TABLE1_EXTRA_MODELS,
                hidden: tuple[int, ...] = TABLE1_HIDDEN) -> list[dict]:
    """One row per model: ``{"model", "cells": {R: cell}}`` with the measured recipe only.

    A cell is ``{"paper": % or None, "n", "diverged", "mean", "std", "min", "max", "seeds",
    "wall_s", "paths"}``; ``n == 0`` and no paths means the cell was not run yet.
    """
    records = [r for r in records if not is_extra_recipe(r)]
    rows = []
    for model in models:
        cells = {}
        for r in hidden:
            members = [rec for rec in records if rec.get("model") == model and rec.get("hidden") == r]
            cells[r] = {"paper": PAPER_TABLE1.get((model, r)), **_summary(members)}
        rows.append({"model": model, "cells": cells})
    return rows


def recipe_comparison(records: Iterable[dict], model: str = "fast_weights", hidden: int = 20
                      ) -> dict:
    """The paper's recipe (lr 1e-4) against ours at the same budget, for one cell.

    Returns ``{"ours": summary, "paper_recipe": summary, "ours_lr", "paper_lr", "steps",
    "target": the paper's number}``; summaries as in :func:`table1_rows`.
    """
    records = [r for r in records if r.get("model") == model and r.get("hidden") == hidden]
    ours = [r for r in records if not is_extra_recipe(r)]
    theirs = [r for r in records if is_paper_recipe(r)]

    def lr_of(group):
        return sorted({g["config"]["lr"] for g in group}) or None

    return {"ours": _summary(ours), "paper_recipe": _summary(theirs), "ours_lr": lr_of(ours),
            "paper_lr": lr_of(theirs),
            "steps": sorted({g["config"]["steps"] for g in records}) or None,
            "target": PAPER_TABLE1.get((model, hidden))}


def target_met(records: Iterable[dict], min_seeds: int = 3, recipe: str = "") -> Optional[bool]:
    """Whether fast weights at R = 20 reach the paper's 1.81% (mean over >= ``min_seeds``
    seeds) with ``recipe`` ("" = the profile's own). None while fewer seeds have finished."""
    cell = {c["recipe"]: c for c in recipe_cells(records)}[recipe]
    if cell["n"] < min_seeds:
        return None
    return cell["mean"] <= FW_R20_TARGET


def recipes_markdown(records: Iterable[dict], hidden: int = 20, link_base: Optional[str] = "",
                     min_seeds: int = 3) -> str:
    """Fast weights at R = ``hidden`` under every recipe, as a markdown table with the target
    verdict and the records behind each row."""
    cells = recipe_cells(records, hidden=hidden)
    lines = ["| recipe | Adam lr | schedule | updates | test error (%) | "
             f"mean ≤ {FW_R20_TARGET}% over ≥ {min_seeds} seeds |", "|---|---:|---|---:|---:|---|"]
    for cell in cells:
        met = (None if cell["n"] < min_seeds else cell["mean"] <= FW_R20_TARGET)
        verdict = {None: "not decided (fewer seeds)" if cell["n"] else NOT_RUN,
                   True: "yes", False: "no"}[met]
        settings = EXTRA_RECIPES.get(cell["recipe"], {})
        lr = cell["lr"] if cell["lr"] is not None else settings.get("lr")
        schedule = cell["lr_schedule"] or settings.get("lr_schedule", "—")
        steps = f"{cell['steps']:,}" if cell["steps"] else "—"
        name = {"": "ours (every Table 1 cell)", "paper_recipe": "the paper's"}.get(
            cell["recipe"], cell["recipe"])
        lines.append(f"| {name} | {_paper(lr)} | {schedule} | {steps} | {format_cell(cell)} | "
                     f"{verdict} |")
    lines.append("")
    for cell in cells:
        if cell["paths"]:
            name = {"": "ours", "paper_recipe": "the paper's"}.get(cell["recipe"], cell["recipe"])
            links = record_links(cell["paths"], cell["values"], link_base)
            lines.append(f"- {name}: {links}")
    return "\n".join(lines)


def control_budget_markdown(records: Iterable[dict], hidden: int = 20,
                            link_base: Optional[str] = "") -> str:
    """Each model of ``CONTROL_RECIPE_MODELS`` at R = ``hidden``: the profile's budget (its
    Table 1 cell) beside every longer budget of ``CONTROL_RECIPES``, with the records."""
    from fwbook.experiments.grids import CONTROL_RECIPE_MODELS

    records = [r for r in records if r.get("hidden") == hidden]
    lines = ["| model | budget | updates | test error (%) |", "|---|---|---:|---:|"]
    listed = []
    for model in CONTROL_RECIPE_MODELS:
        for recipe in ("",) + tuple(CONTROL_RECIPES):
            members = [r for r in records if r.get("model") == model and recipe_of(r) == recipe]
            cell = _summary(members)
            steps = sorted({m["config"]["steps"] for m in members})
            planned = CONTROL_RECIPES.get(recipe, {}).get("steps")
            updates = ", ".join(f"{s:,}" for s in steps) or (f"{planned:,}" if planned else "—")
            name = recipe or "the profile's (Table 1)"
            lines.append(f"| {model} | {name} | {updates} | {format_cell(cell)} |")
            if cell["paths"]:
                links = record_links(cell["paths"], cell["values"], link_base)
                listed.append(f"- {model}, {name}: {links}")
    return "\n".join(lines + [""] + listed)


def record_links(paths: list[str], values: list[Optional[float]],
                 link_base: Optional[str] = "") -> str:
    """``[name](link_base + path) 1.23, ...``: the records behind a cell with their test error
    (%); "diverged" where a run has none. ``link_base=None`` (or an absolute path) prints the
    path as code instead of a link, and so does a remote ``link_base`` (``https://...``) for a
    path outside the committed ``results/``, which the repository does not have."""
    def linkable(path: str) -> bool:
        if link_base is None or Path(path).is_absolute():
            return False
        return not link_base.startswith(("http://", "https://")) or \
            Path(path).parts[0] == "results"

    return ", ".join((f"[{Path(p).stem}]({link_base}{p})" if linkable(p) else f"`{p}`")
                     + (f" {v:.2f}" if v is not None else " diverged")
                     for p, v in zip(paths, values))


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
    nor runs whose step was forced (e.g. resumed eagerly), and only the profile's own recipe. A cell
    (model, R) costs ``seeds`` times the median wall time of its measured runs; the grid is
    the sum over cells divided by ``workers`` parallel sweep workers (one thread each).

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
    import json

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


def format_cell(cell: dict, show_n: bool = True, unit: str = "") -> str:
    """``1.23 ± 0.10 (n=3)`` (``unit="%"``: ``1.23 ± 0.10% (n=3)``), with a note for diverged
    runs; "not run yet" when the cell has no record."""
    if cell["n"] == 0:
        return f"{cell['diverged']} diverged" if cell["diverged"] else NOT_RUN
    text = (f"{cell['mean']:.2f} ± {cell['std']:.2f}{unit}" if cell["n"] > 1
            else f"{cell['mean']:.2f}{unit}")
    if show_n:
        text += f" (n={cell['n']})"
    if cell["diverged"]:
        text += f", {cell['diverged']} diverged"
    return text


def _paper(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:g}"


def table1_markdown(rows: list[dict], link_base: Optional[str] = "") -> str:
    """Table 1 as markdown: for every R our mean ± std over seeds (test error, %) and the
    paper's number; then one line per cell listing the records behind it.

    Args:
        rows: from :func:`table1_rows`.
        link_base: prefix of record links (``""`` for the README at the repository root);
            None: paths as code, not links (the book, where Sphinx would try to resolve
            a link to a JSON file as a page).
    """
    from fwbook.chapters.plots import MODEL_LABELS

    hidden = list(rows[0]["cells"]) if rows else []
    header = "| model | " + " | ".join(f"R = {r}: ours | R = {r}: paper" for r in hidden) + " |"
    rule = "|---|" + "---:|---:|" * len(hidden)
    lines = [header, rule]
    for row in rows:
        label = MODEL_LABELS.get(row["model"], row["model"])
        if row["model"] in TABLE1_EXTRA_MODELS:
            label += " (ours, extra)"
        cells = []
        for r in hidden:
            cell = row["cells"][r]
            cells += [format_cell(cell), _paper(cell["paper"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    if not any(row["cells"][r]["paths"] for row in rows for r in hidden):
        lines.append("No records yet.")
        return "\n".join(lines)
    lines.append("Records behind each cell (with each run's test error, %):")
    lines.append("")
    for row in rows:
        label = MODEL_LABELS.get(row["model"], row["model"])
        for r in hidden:
            paths, values = row["cells"][r]["paths"], row["cells"][r]["values"]
            if not paths:
                continue
            links = record_links(paths, values, link_base)
            lines.append(f"- {label}, R = {r}: {links}")
    return "\n".join(lines)


def readme_block(directory: str | os.PathLike = TABLE1_DIR, profile: str = "paper") -> str:
    """The generated README section: Table 1 from the records, recipe, comparison, compute."""
    check_profile(profile)
    records = load_table1(directory, profile)
    rows = table1_rows(records)
    spent = compute_spent(records)
    lines = [
        "Table 1, test error (%) on associative retrieval (K = 4): our mean ± standard "
        "deviation over seeds (n = seeds finished) beside the paper's number (Table 1 of "
        "Ba et al. (2016), as transcribed). Generated by `python -m fwbook sweep table1 "
        "--no-train --readme README.md` from the records in `results/table1/`; a cell without "
        f"records says \"{NOT_RUN}\".",
        "",
    ]
    measured = [r for r in records if not is_extra_recipe(r)]
    if measured:
        some = measured[0]["config"]
        lines += [f"Recipe of our runs: Adam lr {some['lr']:g} ({some['lr_schedule']}), "
                  f"batch {some['batch_size']}, {some['steps']:,} updates, gradient clipping at "
                  f"{some['clip_norm']}, {some['num_train']:,} training sequences; the paper used "
                  f"lr 1e-4 (see the book's Deviations page).", ""]
    lines += [table1_markdown(rows), ""]
    lines += [f"Fast weights at R = 20 under each recipe (the paper: {FW_R20_TARGET}%):", "",
              recipes_markdown(records), ""]
    lines.append(f"Compute spent on these records: {spent['runs']} runs, "
                 f"{spent['hours']:.1f} hours of training wall time on a shared 2-core CPU.")
    return "\n".join(lines)


def _lrs(values) -> str:
    return ", ".join(f"{v:g}" for v in values) if values else "—"


def replace_marked_block(text: str, block: str, start: str = README_START, end: str = README_END
                         ) -> str:
    """``text`` with everything between the ``start`` and ``end`` markers replaced by ``block``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one {start} followed by one {end} in the file")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    return pattern.sub(lambda _: f"{start}\n{block}\n{end}", text, count=1)


def write_readme_block(path: str | os.PathLike, directory: str | os.PathLike = TABLE1_DIR,
                       profile: str = "paper") -> Path:
    """Rewrite only the marked Table 1 block of the markdown file ``path``."""
    path = Path(path)
    text = path.read_text()
    try:
        new = replace_marked_block(text, readme_block(directory, profile))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    path.write_text(new)
    return path


ERROR_TICKS = (0, 1, 2, 5, 10, 20, 50, 100)  # % on the symlog axis of error curves


def _error_axis(axis) -> None:
    """A symlog y axis for error in %, linear below 1%, with plain tick labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_yscale("symlog", linthresh=1.0)
    axis.yaxis.set_major_locator(FixedLocator(ERROR_TICKS))
    axis.yaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_ylim(-0.05, 100)


def figure2(records: Iterable[dict], hidden: int = 50,
            models: tuple[str, ...] = TABLE1_MODELS, metric: str = "val_error"):
    """Figure 2: validation error (or loss) against updates of the models at one R.

    One thin line per seed, a thick line for the mean over seeds (on the updates all seeds
    share). The paper's Figure 2 plots log likelihood; ``metric="val_loss"`` draws the
    validation cross-entropy instead. Models without records are named in the legend as
    "not run yet". Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from fwbook.chapters.plots import MODEL_COLORS, MODEL_LABELS, use_house_style

    use_house_style()
    records = [r for r in records if r.get("hidden") == hidden and not is_extra_recipe(r)]
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for model in models:
        runs = [r for r in records if r.get("model") == model and r.get("curves", {}).get("step")]
        color = MODEL_COLORS.get(model)
        label = MODEL_LABELS.get(model, model)
        if not runs:
            axis.plot([], [], color=color, label=f"{label} ({NOT_RUN})", linestyle=":")
            continue
        scale = 100.0 if metric == "val_error" else 1.0
        for run in runs:
            axis.plot(run["curves"]["step"], np.asarray(run["curves"][metric]) * scale,
                      color=color, alpha=0.3, linewidth=0.8)
        common = sorted(set.intersection(*(set(r["curves"]["step"]) for r in runs)))
        if common:
            values = np.array([[dict(zip(r["curves"]["step"], r["curves"][metric]))[s]
                                for s in common] for r in runs]) * scale  # (seeds, points)
            axis.plot(common, values.mean(axis=0), color=color, linewidth=2.0,
                      label=f"{label} (n={len(runs)})")
    axis.set_xlabel("updates")
    if metric == "val_error":
        axis.set_ylabel("validation error (%)")
        _error_axis(axis)
    else:
        axis.set_ylabel("validation cross-entropy (nats)")
        axis.set_yscale("log")
    axis.set_title(f"Associative retrieval, R = {hidden}")
    axis.legend(frameon=False, fontsize="small")
    figure.tight_layout()
    return figure


RECIPE_STYLES = {"": dict(color="#c0392b", linestyle="-"),
                 "paper_recipe": dict(color="#555555", linestyle="--"),
                 "cosine_lr3e-3": dict(color="#16a085", linestyle="-."),
                 "cosine_lr3e-3_80k": dict(color="#2980b9", linestyle="-")}


def recipe_figure(records: Iterable[dict], hidden: int = 20):
    """Validation error against updates of fast weights at R = ``hidden`` under every recipe
    (ours, the paper's lr 1e-4, and ``EXTRA_RECIPES``), one line per seed, with the paper's
    Table 1 number. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    from fwbook.chapters.plots import use_house_style

    use_house_style()
    runs = [r for r in records if r.get("model") == "fast_weights" and r.get("hidden") == hidden
            and r.get("curves", {}).get("step")]
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    order = ("",) + tuple(EXTRA_RECIPES)
    labelled = set()
    for run in sorted(runs, key=lambda r: (order.index(recipe_of(r)), r.get("seed", 0))):
        recipe = recipe_of(run)
        label = None
        if recipe not in labelled:
            label = recipe_label(recipe, run["config"])
            labelled.add(recipe)
        style = RECIPE_STYLES.get(recipe, dict(color="#2c3e50", linestyle=":"))
        axis.plot(run["curves"]["step"], np.asarray(run["curves"]["val_error"]) * 100,
                  label=label, linewidth=1.2, **style)
    axis.axhline(FW_R20_TARGET, color="black", linewidth=0.8, linestyle=":",
                 label=f"paper's Table 1: {FW_R20_TARGET}%")
    _error_axis(axis)
    axis.set_xlabel("updates")
    axis.set_ylabel("validation error (%)")
    axis.set_title(f"Fast weights, R = {hidden}: recipes, one line per seed")
    axis.legend(frameon=False, fontsize="small")
    figure.tight_layout()
    return figure


def missing_cells(rows: list[dict]) -> list[str]:
    """Names of the cells with no finished run, e.g. ``["A-LSTM R = 100"]``."""
    from fwbook.chapters.plots import MODEL_LABELS

    return [f"{MODEL_LABELS.get(row['model'], row['model'])} R = {r}"
            for row in rows for r, cell in row["cells"].items() if cell["n"] == 0]


def verdict_markdown(records: Iterable[dict]) -> str:
    """The results chapter's findings as markdown, every number computed from ``records``.

    Covers: whether fast weights at R = 20 reach the paper's 1.81% (and with how many seeds),
    the paper's recipe at the same budget, the controls at R = 20 against the paper's ~60%,
    and which cells are not run yet.
    """
    from fwbook.chapters.plots import MODEL_LABELS

    records = list(records)
    rows = {row["model"]: row for row in table1_rows(records)}
    lines = []
    fw = rows["fast_weights"]["cells"][20]
    if fw["n"] == 0:
        lines.append(f"- **Fast weights, R = 20**: {NOT_RUN}.")
    else:
        met = target_met(records)
        status = ("not yet decided (fewer than 3 seeds finished)" if met is None
                  else "**reached**" if met else "**not reached**")
        lines.append(f"- **Fast weights, R = 20** (Table 1 recipe): {format_cell(fw, unit='%')} test error against the "
                     f"paper's {FW_R20_TARGET}%; the target (mean ≤ {FW_R20_TARGET}% over ≥ 3 "
                     f"seeds) is {status}.")
    for cell in recipe_cells(records)[1:]:
        settings = EXTRA_RECIPES[cell["recipe"]]
        name = ("**The paper's recipe**" if cell["recipe"] == "paper_recipe"
                else f"**Recipe `{cell['recipe']}`**")
        what = f"(Adam lr {settings['lr']:g}, {settings.get('lr_schedule', 'constant')}"
        if cell["n"] or cell["diverged"]:
            met = target_met(records, recipe=cell["recipe"])
            verdict = {None: "", True: "; the target is **met**",
                       False: "; the target is **not met**"}[met]
            lines.append(f"- {name} {what}, {cell['steps']:,} updates) for fast weights at R = 20: "
                         f"{format_cell(cell, unit='%')} test error{verdict}.")
        else:
            lines.append(f"- {name} {what}) for fast weights at R = 20: {NOT_RUN}.")
    controls = []
    for model in ("irnn", "lstm", "alstm", "ln_irnn"):
        cell = rows[model]["cells"][20]
        label = MODEL_LABELS.get(model, model)
        paper = f" (paper: {cell['paper']:g}%)" if cell["paper"] is not None else " (not in the paper)"
        controls.append(f"{label} {format_cell(cell, unit='%')}{paper}")
    lines.append("- **Controls at R = 20**: " + "; ".join(controls) + ".")
    for recipe, settings in CONTROL_RECIPES.items():
        longer = [r for r in records if recipe_of(r) == recipe and r.get("hidden") == 20]
        for model in sorted({r["model"] for r in longer}):
            cell = _summary([r for r in longer if r["model"] == model])
            base = rows[model]["cells"][20] if model in rows else None
            label = MODEL_LABELS.get(model, model)
            against = (f", against {format_cell(base, unit='%')} after the Table 1 budget"
                       if base and base["n"] else "")
            lines.append(f"- **{label} with a longer budget** (`{recipe}`, "
                         f"{settings['steps']:,} updates, R = 20): {format_cell(cell, unit='%')}"
                         f"{against}.")
    behind = []
    for model in TABLE1_MODELS:
        for hidden, cell in rows[model]["cells"].items():
            if hidden != 20 and cell["n"] and cell["paper"] is not None \
                    and cell["mean"] - cell["paper"] > 1.0:
                behind.append(f"{MODEL_LABELS.get(model, model)} R = {hidden} "
                              f"{format_cell(cell, unit='%')} (paper: {cell['paper']:g}%)")
    if behind:
        budgets = sorted({r["config"]["steps"] for r in records
                          if not is_extra_recipe(r) and r.get("config")})
        budget = " or ".join(f"{steps:,}" for steps in budgets)
        lines.append("- **Larger R, where the paper's number is more than 1 point below ours**: "
                     + "; ".join(behind) + f". Every run here has a budget of {budget} updates "
                     "(the paper's is not stated); see the learning curves.")
    missing = missing_cells(list(rows.values()))
    if missing:
        lines.append(f"- **Not run yet** ({len(missing)} cells): " + ", ".join(missing) + ".")
    spent = compute_spent(records)
    lines.append(f"- **Compute**: {spent['runs']} runs, {spent['hours']:.2f} hours of training "
                 f"wall time in all.")
    return "\n".join(lines)


def ranking_markdown(records: Iterable[dict], hidden: int = 20) -> str:
    """The models at one R ordered by mean test error (measured recipe), as a markdown list;
    models without records are named as not run yet."""
    from fwbook.chapters.plots import MODEL_LABELS

    rows = table1_rows(records, hidden=(hidden,))
    done = sorted((row for row in rows if row["cells"][hidden]["n"]),
                  key=lambda row: row["cells"][hidden]["mean"])
    lines = [f"{rank}. {MODEL_LABELS.get(row['model'], row['model'])}: "
             f"{format_cell(row['cells'][hidden], unit='%')}"
             for rank, row in enumerate(done, start=1)]
    missing = [MODEL_LABELS.get(row["model"], row["model"]) for row in rows
               if not row["cells"][hidden]["n"]]
    if missing:
        lines.append(f"\n{NOT_RUN} at R = {hidden}: {', '.join(missing)}.")
    if not lines:
        return f"No records at R = {hidden}."
    return "\n".join(lines)
