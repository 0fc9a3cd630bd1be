"""Chapter 5's page: Table 1 beside the paper's numbers, Figure 2, the recipe comparisons and
the findings, as markdown tables, figures and computed prose; and the README's Table 1 block.

The numbers come from :mod:`fwbook.experiments.table1` (records, cells, seed statistics); this
module only draws and formats them. A cell without records is shown as "not run yet", never
guessed; a spread over fewer than two seeds is undefined and printed as "n/a".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Optional

from fwbook.experiments.grids import (CONTROL_RECIPES, EXTRA_RECIPES, TABLE1_EXTRA_MODELS,
                                      TABLE1_MODELS, check_profile)
from fwbook.experiments.table1 import (FW_R20_TARGET, TABLE1_DIR, cells_behind_the_paper,
                                       compute_spent, control_budget_cells, is_extra_recipe,
                                       load_table1, missing_cells, recipe_cells, recipe_label,
                                       recipe_of, seed_summary, table1_rows, target_met)

README_START = "<!-- table1:start -->"
README_END = "<!-- table1:end -->"
NOT_RUN = "not run yet"


def _label(model: str) -> str:
    """The model's name on the page (plots is imported here, not at the top, so that the
    README block and its markers load without a plotting library)."""
    from fwbook.chapters.plots import MODEL_LABELS

    return MODEL_LABELS.get(model, model)


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
    lines = ["| model | budget | updates | test error (%) |", "|---|---|---:|---:|"]
    listed = []
    for cell in control_budget_cells(records, hidden):
        updates = ", ".join(f"{s:,}" for s in cell["steps"]) or "—"
        name = cell["recipe"] or "the profile's (Table 1)"
        lines.append(f"| {cell['model']} | {name} | {updates} | {format_cell(cell)} |")
        if cell["paths"]:
            links = record_links(cell["paths"], cell["values"], link_base)
            listed.append(f"- {cell['model']}, {name}: {links}")
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


def format_cell(cell: dict, show_n: bool = True, unit: str = "") -> str:
    """``1.23 ± 0.10 (n=3)`` (``unit="%"``: ``1.23 ± 0.10% (n=3)``); one seed has no spread:
    ``1.23 ± n/a (n=1)``; a note for diverged runs; "not run yet" when the cell has no record."""
    if cell["n"] == 0:
        return f"{cell['diverged']} diverged" if cell["diverged"] else NOT_RUN
    text = (f"{cell['mean']:.2f} ± {cell['std']:.2f}{unit}" if cell["std"] is not None
            else f"{cell['mean']:.2f}{unit} ± n/a")
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
    hidden = list(rows[0]["cells"]) if rows else []
    header = "| model | " + " | ".join(f"R = {r}: ours | R = {r}: paper" for r in hidden) + " |"
    rule = "|---|" + "---:|---:|" * len(hidden)
    lines = [header, rule]
    for row in rows:
        label = _label(row["model"])
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
        label = _label(row["model"])
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


def _finish(figure, axis, title: str):
    """The title, a frameless legend and a tight layout: the last touches of a chapter figure."""
    axis.set_title(title)
    axis.legend(frameon=False, fontsize="small")
    figure.tight_layout()
    return figure


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

    from fwbook.chapters.plots import MODEL_COLORS, use_house_style

    use_house_style()
    records = [r for r in records if r.get("hidden") == hidden and not is_extra_recipe(r)]
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for model in models:
        runs = [r for r in records if r.get("model") == model and r.get("curves", {}).get("step")]
        color = MODEL_COLORS.get(model)
        label = _label(model)
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
    return _finish(figure, axis, f"Associative retrieval, R = {hidden}")


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
    return _finish(figure, axis, f"Fast weights, R = {hidden}: recipes, one line per seed")


def verdict_markdown(records: Iterable[dict]) -> str:
    """The results chapter's findings as markdown, every number computed from ``records``.

    Covers: whether fast weights at R = 20 reach the paper's 1.81% (and with how many seeds),
    the paper's recipe at the same budget, the controls at R = 20 against the paper's ~60%,
    and which cells are not run yet.
    """
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
        label = _label(model)
        paper = f" (paper: {cell['paper']:g}%)" if cell["paper"] is not None else " (not in the paper)"
        controls.append(f"{label} {format_cell(cell, unit='%')}{paper}")
    lines.append("- **Controls at R = 20**: " + "; ".join(controls) + ".")
    for recipe, settings in CONTROL_RECIPES.items():
        longer = [r for r in records if recipe_of(r) == recipe and r.get("hidden") == 20]
        for model in sorted({r["model"] for r in longer}):
            cell = seed_summary([r for r in longer if r["model"] == model])
            base = rows[model]["cells"][20] if model in rows else None
            against = (f", against {format_cell(base, unit='%')} after the Table 1 budget"
                       if base and base["n"] else "")
            lines.append(f"- **{_label(model)} with a longer budget** (`{recipe}`, "
                         f"{settings['steps']:,} updates, R = 20): {format_cell(cell, unit='%')}"
                         f"{against}.")
    behind = [f"{_label(model)} R = {hidden} {format_cell(cell, unit='%')} "
              f"(paper: {cell['paper']:g}%)"
              for model, hidden, cell in cells_behind_the_paper(list(rows.values()))]
    if behind:
        budgets = sorted({r["config"]["steps"] for r in records
                          if not is_extra_recipe(r) and r.get("config")})
        budget = " or ".join(f"{steps:,}" for steps in budgets)
        lines.append("- **Larger R, where the paper's number is more than 1 point below ours**: "
                     + "; ".join(behind) + f". Every run here has a budget of {budget} updates "
                     "(the paper's is not stated); see the learning curves.")
    missing = [f"{_label(model)} R = {hidden}"
               for model, hidden in missing_cells(list(rows.values()))]
    if missing:
        lines.append(f"- **Not run yet** ({len(missing)} cells): " + ", ".join(missing) + ".")
    spent = compute_spent(records)
    lines.append(f"- **Compute**: {spent['runs']} runs, {spent['hours']:.2f} hours of training "
                 f"wall time in all.")
    return "\n".join(lines)


def ranking_markdown(records: Iterable[dict], hidden: int = 20) -> str:
    """The models at one R ordered by mean test error (measured recipe), as a markdown list;
    models without records are named as not run yet."""
    rows = table1_rows(records, hidden=(hidden,))
    done = sorted((row for row in rows if row["cells"][hidden]["n"]),
                  key=lambda row: row["cells"][hidden]["mean"])
    lines = [f"{rank}. {_label(row['model'])}: "
             f"{format_cell(row['cells'][hidden], unit='%')}"
             for rank, row in enumerate(done, start=1)]
    missing = [_label(row["model"]) for row in rows
               if not row["cells"][hidden]["n"]]
    if missing:
        lines.append(f"\n{NOT_RUN} at R = {hidden}: {', '.join(missing)}.")
    if not lines:
        return f"No records at R = {hidden}."
    return "\n".join(lines)
