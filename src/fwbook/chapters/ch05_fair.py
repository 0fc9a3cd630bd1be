"""Chapter 5's fair-controls section: the protocol's tables, validation curves, verdict, the
LSTM plateau finding and the compute spent, drawn and worded from the records.

The protocol and every number come from :mod:`fwbook.experiments.fair`; this module only
formats them for the page. Test errors of the protocol's cells are fractions (printed in %);
those of today's Table 1 (:func:`fwbook.experiments.fair.today_cells`) are already in %.
"""

from __future__ import annotations

import os
from typing import Optional

from fwbook.chapters.plots import MODEL_LABELS
from fwbook.experiments.fair import (CELL_ORDER, FAIR_DIR, FAIR_LRS, FAIR_SEEDS, SELECTION_SEED,
                                     best_validation, capped_cells, cell_runs, fair_verdict,
                                     lr_label, projection, protocol_compute, still_improving)
from fwbook.experiments.fair_cap import CAP_CHECK_DIR, cap_check_summary, cap_pressure
from fwbook.experiments.grids import PAPER_TABLE1, TABLE1_EXTRA_MODELS

NOT_RUN = "not run yet"


def model_label(model: str) -> str:
    """``"LSTM"``; the rows the paper does not have say so: ``"LN-IRNN (ours, extra)"``."""
    label = MODEL_LABELS.get(model, model)
    return f"{label} (ours, extra)" if model in TABLE1_EXTRA_MODELS else label


def percent(value: Optional[float], spread: Optional[float] = None, n: Optional[int] = None
            ) -> str:
    """``"5.45 ± 1.99 (n=3)"`` of a fraction and its spread; one seed: ``"3.29 ± n/a (n=1)"``;
    "not run yet" without a value."""
    if value is None:
        return NOT_RUN
    text = f"{100 * value:.2f}"
    if n is not None:
        text += f" ± {100 * spread:.2f}" if spread is not None else " ± n/a"
        text += f" (n={n})"
    return text


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def _lr_text(cell: dict) -> str:
    chosen = cell["chosen"]
    if chosen is None:
        done = sum(1 for entry in cell["selection"].values() if entry is not None)
        return f"selecting ({done} of {len(FAIR_LRS)} learning rates run)"
    if chosen["lr"] is None:
        return chosen["reason"]
    return f"{lr_label(chosen['lr'])} ({100 * chosen['val_error']:.2f}%)"


def comparison_markdown(cells: list[dict], today: dict[tuple[str, int], dict]) -> str:
    """Table: per model and R, the fair protocol's test error beside today's table (one-hot,
    fixed budget) and the paper's number; and the chosen learning rate and stopping points.

    Args:
        cells: :func:`fwbook.experiments.fair.fair_cells`.
        today: (model, R) -> ``{"mean", "std", "n"}`` of today's Table 1 in %
            (:func:`fwbook.experiments.fair.today_cells`).
    """
    lines = ["| model | R | fair protocol: test error (%) | chosen lr (val. error at best) "
             "| best update / stop, per seed | today's Table 1 (%) | paper (%) |",
             "|---|---:|---:|---|---|---:|---:|"]
    for cell in cells:
        model, r = cell["model"], cell["hidden"]
        stops = ", ".join(f"{run['early_stopping']['best_step']:,} / {run['steps_done']:,}"
                          for run in cell["runs"]) or "—"
        now = today.get((model, r))
        now_text = NOT_RUN
        if now and now.get("n"):
            now_text = percent(now["mean"] / 100,
                               None if now["std"] is None else now["std"] / 100, now["n"])
        paper = PAPER_TABLE1.get((model, r))
        paper_text = "—" if paper is None else f"{paper:g}"
        fair_text = percent(cell["mean"], cell["std"], cell["n"] or None)
        lines.append(f"| {model_label(model)} | {r} | {fair_text} | {_lr_text(cell)} | {stops} "
                     f"| {now_text} | {paper_text} |")
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
                parts.append(NOT_RUN)
            elif entry["val_error"] is None:
                parts.append(entry["status"])
            else:
                mark = " **chosen**" if cell["chosen"] and cell["chosen"]["lr"] == lr else ""
                parts.append(f"{100 * entry['val_error']:.2f}% at {entry['step']:,} "
                             f"(stopped {entry['stop']:,}){mark}")
        lines.append(f"| {model_label(cell['model'])} | {cell['hidden']} | "
                     + " | ".join(parts) + " |")
    return "\n".join(lines)


STATE_WORDS = {"not run yet": NOT_RUN, "selecting": "choosing its learning rate",
               "seeds": "training its other seeds", "diverged": "every learning rate diverged"}


def progress_markdown(cells: list[dict]) -> str:
    """Which cells have finished (every seed at the chosen rate) and what the others wait for."""
    finished = [f"{model_label(c['model'])} R = {c['hidden']}" for c in cells
                if c["state"] == "finished"]
    lines = [f"- **Finished** ({len(finished)} of {len(cells)} cells, {len(FAIR_SEEDS)} seeds "
             "each): " + (", ".join(finished) or "none yet") + "."]
    for state, words in STATE_WORDS.items():
        waiting = [f"{model_label(c['model'])} R = {c['hidden']}"
                   + (f" ({c['n']} of {len(FAIR_SEEDS)} seeds)" if state == "seeds" else "")
                   for c in cells if c["state"] == state]
        if waiting:
            lines.append(f"- **Pending, {words}** ({len(waiting)}): {', '.join(waiting)}.")
    return "\n".join(lines)


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
        records = cell_runs(cell)
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
            axis.text(0.5, 0.5, NOT_RUN, ha="center", va="center",
                      transform=axis.transAxes, color="grey")
        axis.set_title(f"{MODEL_LABELS[cell['model']]}, R = {cell['hidden']}", fontsize=9)
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


def pending_below_fast_weights(cells: list[dict], hidden: int) -> list[str]:
    """A control whose cell is not finished (still choosing its learning rate, or waiting
    for its other seeds) and whose selection runs already reach a lower
    *validation* error than fast weights' chosen run: the finished-cells verdict must not hide
    it. Validation against validation; no test error is read before a cell finishes."""
    by_model = {cell["model"]: cell for cell in cells if cell["hidden"] == hidden}
    fast = by_model.get("fast_weights")
    if fast is None or not fast.get("chosen") or fast["chosen"].get("val_error") is None:
        return []
    lines = []
    for model, cell in by_model.items():
        if model == "fast_weights" or cell.get("state") == "finished" \
                or not cell.get("selection"):
            continue
        runs = {lr: run for lr, run in cell["selection"].items()
                if run is not None and run.get("val_error") is not None}
        if not runs:
            continue
        lr, run = min(runs.items(), key=lambda item: item[1]["val_error"])
        if run["val_error"] < fast["chosen"]["val_error"]:
            lines.append(f"- **Not finished, and already below fast weights**: "
                         f"{model_label(model)} at R = {hidden}, lr {lr_label(lr)}, reached "
                         f"{100 * run['val_error']:.2f}% validation error in its selection run, "
                         f"against {100 * fast['chosen']['val_error']:.2f}% for fast weights' "
                         "chosen run: the verdict below may turn when this cell finishes.")
    return lines


def _claim_lines(cells: list[dict], hidden: int) -> list[str]:
    """The verdict on the paper's claim at R = ``hidden`` and what the cap did to it."""
    verdict = fair_verdict(cells, hidden)
    lines = []
    if verdict["missing"]:
        lines.append(f"- **Not decided yet at R = {hidden}**: fewer than {len(FAIR_SEEDS)} "
                     "seeds under the protocol for "
                     f"{', '.join(model_label(m) for m in verdict['missing'])}.")
    lines += pending_below_fast_weights(cells, hidden)
    fw, best = verdict["fast_weights"], verdict["best_control"]
    if fw is not None and best is not None:
        holds = "holds" if verdict["survives"] else "does **not** hold"
        scope = "" if verdict["decided"] else " among the cells finished so far"
        lines.append(f"- **The paper's claim at R = {hidden}** (fast weights beat every control)"
                     f" {holds}{scope}: fast weights {100 * fw:.2f}% against the best control,"
                     f" {model_label(best[0])}, at {100 * best[1]:.2f}% (means over the seeds"
                     " finished).")
    capped = {entry["model"]: entry for entry in capped_cells(cells)
              if entry["hidden"] == hidden}
    if "fast_weights" in capped:
        entry = capped.pop("fast_weights")
        others = verdict["controls_capped"].values()
        more = (" — more of its runs than of any control's"
                if all(share < verdict["fast_weights_capped"] for share in others) else "")
        lines.append(f"- **The cap held back fast weights, the model the paper champions**: "
                     f"{len(entry['capped'])} of its {entry['runs']} runs at R = {hidden} "
                     f"(lr {lr_label(entry['lr'])}) were still improving when the "
                     f"{entry['cap']:,}-update cap stopped them{more}. Its "
                     f"{100 * fw:.2f}% is what the cap allowed, not where early stopping would "
                     "have ended; a longer cap would give it the same chance the patience gives "
                     "the others.")
    if capped:
        lines.append(f"- **Controls also stopped by the cap while improving** at R = {hidden}: "
                     + ", ".join(f"{model_label(m)} {len(e['capped'])} of {e['runs']} runs"
                                 for m, e in capped.items()) + ".")
    return lines


def verdict_markdown(cells: list[dict], today: dict[tuple[str, int], dict], hidden: int = 20,
                     directory: str | os.PathLike = FAIR_DIR) -> str:
    """The recomputed verdict on the paper's claim at R = ``hidden``, what the cap did to it,
    per control whether the protocol made it at least as good as today's table, and the
    compute spent so far; every number from the records."""
    lines = _claim_lines(cells, hidden)
    capped_at = {(entry["model"], entry["hidden"]): entry for entry in capped_cells(cells)}
    for cell in cells:
        now = today.get((cell["model"], cell["hidden"]))
        if not cell["n"] or not now or not now.get("n"):
            continue
        provisional = (f" (provisional: fewer than {len(FAIR_SEEDS)} seeds)"
                       if cell["n"] < len(FAIR_SEEDS) else "")
        entry = capped_at.get((cell["model"], cell["hidden"]))
        why = (f"{len(entry['capped'])} of its {entry['runs']} runs were still improving at "
               "the cap." if entry else "see its validation curves and chosen learning rate.")
        better = 100 * cell["mean"] <= now["mean"]
        lines.append(f"- {model_label(cell['model'])}, R = {cell['hidden']}{provisional}: "
                     f"{100 * cell['mean']:.2f}% under the protocol (n={cell['n']}) against "
                     f"{now['mean']:.2f}% in today's table (n={now['n']}): "
                     + ("at least as good." if better else f"**worse**; {why}"))
    capped = [record["name"] for cell in cells for record in cell_runs(cell)
              if still_improving(record)]
    if capped:
        lines.append(f"- **Every run still improving at the cap** ({len(capped)} runs; their "
                     "lowest validation error was at their last evaluation, so the cap, not the "
                     "patience, ended them): " + ", ".join(capped) + ".")
    spent = protocol_compute(directory)
    if spent["runs"]:
        by_model = "; ".join(f"{model_label(m)} {e['hours']:.1f} h ({_runs(e['runs'])})"
                             for m, e in sorted(spent["by_model"].items(),
                                                key=lambda item: CELL_ORDER.index(item[0])))
        lines.append(f"- **Compute so far**: {_runs(spent['runs'])}, {spent['hours']:.1f} hours "
                     f"of training ({by_model}), over {spent['elapsed_hours']:.1f} hours of wall "
                     "time from the first run's start to the last run's end.")
    if not lines:
        lines.append("- No cell has finished under the protocol yet.")
    return "\n".join(lines)


def finding_markdown(rows: list[dict]) -> str:
    """The LSTM plateau finding as a table, one row per seed (from
    :func:`fwbook.experiments.fair.finding_rows`)."""
    def part(entry):
        if entry is None:
            return NOT_RUN, "—", "—"
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


def compute_markdown(directory: str | os.PathLike = FAIR_DIR) -> str:
    """The protocol's compute by model (runs, training hours, median minutes per run, updates)
    and what its missing runs would take at each model's median so far."""
    spent, plan = protocol_compute(directory), projection(directory)
    lines = ["| model | runs done | training hours | median min per run | updates in all "
             "| runs left | hours left (at the median) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for model, left in plan["by_model"].items():
        done = spent["by_model"].get(model, {"hours": 0.0, "updates": 0})
        minutes = f"{left['median_minutes']:.1f}" if left["median_minutes"] is not None else "—"
        hours_left = (f"{left['remaining_hours']:.1f}" if left["remaining_hours"] is not None
                      else "unknown")
        lines.append(f"| {model_label(model)} | {left['runs']} | {done['hours']:.2f} | {minutes} "
                     f"| {done['updates']:,} | {left['remaining_runs']} | {hours_left} |")
    total_left = (f"{plan['remaining_hours']:.1f} h" if plan["remaining_hours"] is not None
                  else "not projectable until every model has a run")
    lines.append("")
    if spent["runs"]:
        lines.append(f"In all so far: {_runs(spent['runs'])}, {spent['hours']:.1f} hours of "
                     f"training, {spent['updates']:,} updates; {spent['elapsed_hours']:.1f} hours "
                     f"of wall time from {spent['first_start']:%Y-%m-%d %H:%M} to "
                     f"{spent['last_end']:%Y-%m-%d %H:%M} UTC. The missing runs: {total_left}.")
    else:
        lines.append(f"No run has finished yet. The missing runs: {total_left}.")
    return "\n".join(lines)


def cap_markdown(cells: list[dict]) -> str:
    """The cap's weight on the finished runs (:func:`fwbook.experiments.fair_cap.cap_pressure`) and
    what doubling it would cost, as a few lines for the page."""
    pressure = cap_pressure(cells)
    if not pressure["runs"]:
        return "- No run has finished under the protocol yet."
    lines = [f"- **{pressure['ended_by_cap']} of the {_runs(pressure['runs'])} finished** ended "
             f"at the {pressure['cap']:,}-update cap rather than by the patience; "
             f"{pressure['still_improving']} of them had their lowest validation error at their "
             "last evaluation."]
    if pressure["median_drop"] is not None:
        largest = max(pressure["drops"].items(), key=lambda item: item[1] or 0.0)
        lines.append(f"- Over their last {pressure['patience']:,} updates (one patience) the runs "
                     "the cap ended lowered their best validation error by a median of "
                     f"{100 * pressure['median_drop']:.2f} points (most: {largest[0]}, "
                     f"{100 * largest[1]:.2f} points): still learning, not flat.")
    lines.append(f"- Taking each of them on to {2 * pressure['cap']:,} updates would cost about "
                 f"{pressure['extend_hours']:.1f} hours of training at their own measured speed, "
                 "before the runs not yet trained, whose cost would grow alike.")
    return "\n".join(lines)


def cap_check_markdown(cells: list[dict], directory: str | os.PathLike = CAP_CHECK_DIR) -> str:
    """The cap check (:func:`fwbook.experiments.fair_cap.cap_check_summary` of the records in
    ``directory``) in a few lines."""
    check = cap_check_summary(cells, directory)
    if check is None:
        return "- The cap check waits for its cell to choose its learning rate."
    label = model_label(check["model"])
    lines = [f"- **{label} at R = {check['hidden']} with a {check['cap']:,}-update cap** "
             f"({check['factor']}x the protocol's): {_runs(check['n'])} of {check['planned']} "
             "finished" + (f", test error (%) {percent(check['mean'], check['std'], check['n'])}"
                           if check["n"] else "") + "."]
    if check["n"]:
        lines.append(f"- At the protocol's cap the same cell stands at "
                     f"{100 * check['at_cap']:.2f}%." if check["at_cap"] is not None else
                     "- The protocol's cell has no finished seed yet.")
        if check["still_improving"]:
            lines.append(f"- Still improving at {check['cap']:,} updates: "
                         + ", ".join(check["still_improving"]) + ".")
    best = check["best_control"]
    if best is not None:
        lines.append(f"- The best control at the protocol's cap: {model_label(best[0])}, "
                     f"{100 * best[1]:.2f}% (its best seed {100 * best[2]:.2f}%).")
    outcome = {
        "pending": "**Pending**: the check reads only once every seed has finished.",
        "claim fails even so": (f"**The verdict does not hang on the cap**: with {check['factor']}x "
                                f"the updates {label.lower()} are still behind the best control "
                                "at the cap, which a larger cap could only help too (a run "
                                "keeps its lowest validation point)."),
        "open": (f"**The verdict hangs on the cap**: with {check['factor']}x the updates "
                 f"{label.lower()} are ahead of the best control at the protocol's cap, so the "
                 "claim could hold under a larger cap for every model; until the controls get it "
                 "too, R = 20 is undecided, not lost."),
    }[check["outcome"]]
    lines.append(f"- {outcome}")
    return "\n".join(lines)


def summary_markdown(cells: list[dict], hidden: int = 20,
                     cap_directory: str | os.PathLike = CAP_CHECK_DIR) -> str:
    """One bullet for the chapter's summary: the protocol's verdict at R = ``hidden`` and what
    the cap check says of it, from the records."""
    verdict = fair_verdict(cells, hidden)
    if verdict["fast_weights"] is None or verdict["best_control"] is None:
        return (f"- Under the fair-controls protocol, R = {hidden} has no verdict yet (see the "
                "cells it waits for above).")
    cap = next((c["runs"][0]["config"]["steps"] for c in cells
                if c["hidden"] == hidden and c["runs"]), None)
    holds = "holds" if verdict["survives"] else "does **not** hold"
    scope = "" if verdict["decided"] else ", among the cells finished so far"
    model, mean = verdict["best_control"]
    text = (f"- Under the fair-controls protocol the paper's claim at R = {hidden} {holds} at "
            f"the {cap:,}-update cap{scope}: fast weights {100 * verdict['fast_weights']:.2f}% "
            f"against {model_label(model)} at {100 * mean:.2f}%.")
    check = cap_check_summary(cells, cap_directory)
    if check is not None and hidden == check["hidden"]:
        if check["outcome"] == "pending":
            text += (f" The cap check (fast weights with {check['factor']}x the cap) has "
                     f"{check['n']} of its {check['planned']} runs so far.")
        elif check["outcome"] == "claim fails even so":
            text += (f" With {check['factor']}x the cap fast weights reach "
                     f"{100 * check['mean']:.2f}%, still behind: the verdict does not hang on "
                     "the cap.")
        else:
            text += (f" With {check['factor']}x the cap fast weights reach "
                     f"{100 * check['mean']:.2f}%, ahead of it: the verdict hangs on the cap, "
                     "and stays open until every model has the larger one.")
    return text
