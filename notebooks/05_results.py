# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Results: Table 1 and Figure 2
#
# This chapter puts our numbers beside the paper's main result on associative retrieval
# {cite}`ba2016fastweights`: Table 1, the test error of an IRNN {cite}`le2015irnn`, an LSTM
# {cite}`hochreiter1997lstm`, an associative LSTM {cite}`danihelka2016associative` and the
# fast-weights RNN at $R = 20, 50, 100$ hidden units, and Figure 2, their learning curves at
# $R = 50$. We add one row the paper does not have: a layer-normalised IRNN
# {cite}`ba2016layernorm` without fast weights, the strongest control we know of.
#
# Every number below is computed from run records (one JSON file per run, with its
# configuration, seed, commit, device and wall time). With the `paper` profile the chapter
# reads the committed records in `results/table1/`; with `smoke` or `quick` it trains a small
# grid itself, in seconds or minutes. A cell with no record says "not run yet": it is never
# filled in by guess.

# %% tags=["remove-cell"]
# Colab only: clone this book's repository and install it, so that the chapter finds fwbook,
# results/ and _toc.yml. Anywhere else (Jupyter, Binder, papermill) this cell does nothing.
import os, subprocess, sys  # noqa: E401
FWBOOK_REPOSITORY = ""  # written into the published notebooks by `python -m fwbook.cli.colab`
FWBOOK_BRANCH = "main"
if "google.colab" in sys.modules and os.path.basename(os.getcwd()) != "fwbook-source":
    if not os.path.isdir("fwbook-source"):
        if not FWBOOK_REPOSITORY:
            raise RuntimeError("set FWBOOK_REPOSITORY to the book's git URL, run this cell again")
        subprocess.run(["git", "clone", "--depth", "1", "--branch", FWBOOK_BRANCH,
                        FWBOOK_REPOSITORY, "fwbook-source"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e",
                        "fwbook-source"], check=True)
    os.chdir("fwbook-source")  # the chapter reads results/ and _toc.yml from here
    sys.path.insert(0, os.path.abspath("src"))  # the editable install needs no restart

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["hide-input"]
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from fwbook.chapters import ch05_results as results
from fwbook.cli.book_config import record_link_base
from fwbook.core.records import REPO_ROOT
from fwbook.experiments import table1
from fwbook.experiments.grids import (PAPER_RECIPE, PROFILE_SETTINGS, TABLE1_HIDDEN, TABLE1_MODELS,
                                      table1_configs)
from fwbook.experiments.sweep import run_sweep

print(f"profile: {profile}")

# %% [markdown]
# ## Where the numbers come from
#
# The `paper` profile reads the records of `python -m fwbook sweep table1 --profile paper`.
# The other profiles train a reduced grid here (one seed; `smoke`: $R = 20$ and $50$ with a
# few dozen updates on a small data set, only to show the machinery; `quick`: $R = 20$ and
# $50$ with a few thousand updates, the paper's four models only, without A-LSTM at $R = 50$,
# the slowest run, and without the extra recipes). Their numbers are not the paper's experiment and should
# not be read as such.

# %% tags=["hide-input"]
if profile == "paper":
    directory = table1.TABLE1_DIR
    source = f"read the committed records in {directory.relative_to(REPO_ROOT)}/"
else:
    hidden = tuple(r for r in TABLE1_HIDDEN if r <= 50)
    if profile == "smoke":
        configs = table1_configs(profile, seeds=(seed,), hidden=hidden)
    else:  # quick: the paper's four models, without the extra recipes and rows, and without
        # A-LSTM at R = 50 (the slowest run by far), so that the whole book builds in minutes
        configs = table1_configs(profile, seeds=(seed,), hidden=hidden, models=TABLE1_MODELS,
                                 paper_recipe=False)
        configs.pop(f"alstm_R50_seed{seed}")
    if profile == "smoke":
        directory = Path(tempfile.mkdtemp(prefix="fwbook-table1-smoke-"))
    else:  # quick: a git-ignored scratch folder, so a rebuild resumes instead of retraining
        directory = REPO_ROOT / "runs" / "table1_quick"
    run_sweep(configs, directory, workers=1 if profile == "smoke" else None, profile=profile,
              quiet=True, device="cpu")
    source = f"trained {len(configs)} runs here ({profile} profile) into {directory}"
records = table1.load_table1(directory, profile)
settings = PROFILE_SETTINGS[profile]
print(f"This chapter {source}: {len(records)} run records.")
print(f"Recipe ({profile} profile): Adam lr {settings.get('lr', 1e-3):g}, batch 128, "
      f"{settings['steps']:,} updates, {settings['num_train']:,} training sequences; "
      f"the paper's recipe runs with lr {PAPER_RECIPE['lr']:g}.")

# %% [markdown]
# ## Table 1
#
# Test error in %, our mean ± standard deviation over seeds ($n$ = seeds finished), beside
# the paper's number (Table 1 of Ba et al. (2016), transcribed; see *Deviations*). The
# records behind every cell are listed under the table.

# %% tags=["hide-input"]
rows = table1.table1_rows(records)
display(Markdown(results.table1_markdown(rows, link_base=record_link_base())))

# %% [markdown]
# ## What the records say
#
# The findings, each computed from the records above:

# %% tags=["hide-input"]
display(Markdown(results.verdict_markdown(records)))

# %% [markdown]
# ## The learning rate: the paper's recipe against ours
#
# The paper trains with Adam at a learning rate of $10^{-4}$ and mini-batches of 128. We
# train every model at $10^{-3}$ (constant, the same data, batch and clipping): a choice made
# early, from a single-seed pilot run in which $10^{-3}$ got much further than $10^{-4}$ in
# the same updates. Whether it holds over seeds is for the records to say, so fast weights
# at $R = 20$, the cell the paper headlines, run with more recipes beside ours, each over
# three seeds:
#
# - the paper's $10^{-4}$, for the same number of updates as ours;
# - `cosine_lr3e-3`: $3 \cdot 10^{-3}$ decayed to zero on a cosine schedule, same updates.
#   It was added after measuring ours: at $10^{-3}$ one seed found the solution while the
#   others stayed on a plateau for most of the budget (see the curves), and a larger step
#   that is annealed at the end is the standard remedy for that;
# - `cosine_lr3e-3_80k`: the same schedule over twice the updates, added after measuring the
#   previous one, whose seeds were all still improving when it stopped.
#
# Whether a recipe reaches the paper's 1.81% is decided by its records below (the table and {numref}`fig-recipes`) (mean over three
# seeds), not by the argument for it.
#
# ```{admonition} Deviation from the paper: learning rate and budget
# :class: warning
# Table 1's "ours" columns are trained with Adam at $10^{-3}$, ten times the paper's rate,
# for the number of updates printed above; the paper does not say how many updates it used.
# The paper's own rate is run beside ours at the same budget, so the difference is shown by
# records, not assumed. Every model in Table 1 gets the same recipe; the extra recipes are
# run for fast weights at $R = 20$ only, so Table 1's fast-weights row and its controls stay
# comparable.
# ```

# %% tags=["hide-input"]
display(Markdown(results.recipes_markdown(records, link_base=record_link_base())))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Fast weights at $R = 20$ under each recipe: the validation error of every seed during training; dotted, the paper's 1.81% (its Table 1).", "name": "fig-recipes"}, "image": {"alt": "Line chart with a logarithmic error axis: validation error in percent against updates, one line per seed for each training recipe of fast weights with 20 hidden units (ours, the paper's learning rate, two cosine schedules), and a dotted horizontal line at the paper's 1.81%."}}
figure = results.recipe_figure(records)
plt.show()

# %% [markdown]
# ## Figure 2: learning curves at $R = 50$
#
# {numref}`fig-figure2` shows validation error against parameter updates (the paper plots log likelihood; the
# validation cross-entropy is in every record's curves too). Thin lines are single seeds, the
# thick line their mean.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The paper's Figure 2 at $R = 50$: validation error against updates for each model; thin lines single seeds, thick lines their mean.", "name": "fig-figure2"}, "image": {"alt": "Line chart of validation error against parameter updates for 50 hidden units, one colour per model, thin lines for single seeds and a thick line for their mean."}}
figure = results.figure2(records, hidden=50)
plt.show()

# %% [markdown]
# ## What our controls mean for the paper's claim
#
# The paper's claim rests on the gap at $R = 20$: its controls stay near 60% error while fast
# weights reach 1.81%. Two things in the list above bear on that claim.
#
# First, the task. The number of key–value pairs, $K = 4$, is inferred from the paper's
# example strings; the sentence that states it could not be checked. With $K = 4$ the answer
# is one of the few digits shown in the sequence, and a control near 60% error has learnt
# little beyond that: a reader that ignores the query and answers the most frequent digit of
# the sequence is wrong on a fraction of queries computed exactly below (chapter 4 finds its
# stalled runs at the same level). A layer-normalised IRNN, which has no fast memory at all,
# is our extra row: if it, or our other controls, come out well below the paper's ~60% at $R = 20$, the
# size of the gap the paper reports is partly a property of how its controls were trained
# (learning rate, budget, normalisation), not only of fast weights. The *Deviations* page and
# chapter 06 show how the comparison changes with $K$: with more pairs the controls fall back
# and fast weights keep their lead.

# %% tags=["hide-input"]
from fwbook.core.data import value_only_error

level = 100 * value_only_error()
print(f"Answering the most frequent digit, ignoring the query: {level:.2f}% error (K = 4).")
for row in table1.table1_rows(records):
    cell = row["cells"][20]
    if cell["n"] and abs(cell["mean"] - level) <= 2:
        print(f"  {row['model']} at R = 20 ({cell['mean']:.2f}%, n={cell['n']}) sits at that level.")

# %% [markdown]
# Second, the budget. Every model here gets the same updates, learning rate and clipping.
# A control that has not converged within that budget is reported as it is; a longer run
# could close part of the gap, and the records' learning curves show whether it was still
# improving when it stopped.
#
# One such longer run is measured. The project's issue tracker mentions an earlier
# measurement, of which no record exists, of a layer-normalised RNN reaching about 10% test
# error on this task after roughly 250,000 updates, where ours stays near the paper's ~60%
# after the Table 1 budget. So the LN-IRNN at $R = 20$ is also trained for 250,000 updates
# (`long_250k`, otherwise the same recipe), beside its Table 1 cell, and the records decide:

# %% tags=["hide-input"]
display(Markdown(results.control_budget_markdown(records, link_base=record_link_base())))

# %% [markdown]
# Read the two rows together. If the longer run stays near 60%, the LN-IRNN fails on this
# task whatever the budget, as the paper's controls do. If it comes down far below, then at
# $K = 4$ a recurrent net *without* fast weights can learn associative retrieval at
# $R = 20$; it only needs several times the updates that fast weights need. The gap in
# Table 1 would then measure how *fast* fast weights learn the task within a budget, not
# whether other models can learn it at all, and it should be quoted with its budget. The
# learning curves in the records show where each run still stood when it stopped.
#
# The ranking at the smallest $R$, computed from the records:

# %% tags=["hide-input"]
display(Markdown(results.ranking_markdown(records, hidden=20)))

# %% [markdown]
# ## Fair controls: Table 1 under one protocol for every model
#
# Table 1 above gives every model the same fixed recipe: one-hot input straight into the
# recurrent layer, one learning rate chosen from a single-seed fast-weights pilot, a fixed
# number of updates. An independent reproduction run beside ours found that this recipe
# handicaps the controls: our LSTM sits on the value-only plateau for thousands of updates
# with one-hot input, and leaves it quickly when a learned embedding is put in front of it.
# The paper's own implementations processed the input before the recurrent layer (see
# *Deviations*). So Table 1 is run a second time, under a protocol that treats every model
# alike and gives each its best chance. It is defined in one place, `fwbook.experiments.fair`, and run by
# `python -m fwbook sweep fair` (resumable: finished records are skipped):
#
# 1. **Input processing, shared by every model**: a learned token embedding between the
#    one-hot input and the recurrent layer (`ModelConfig.input_embedding`).
# 2. **Learning rate chosen on the validation set**, per model and $R$, from one small grid
#    that is the same for every model (Adam, constant rate): the rate whose seed-0 run
#    reached the lowest validation error (ties: lower validation loss).
# 3. **Early stopping on validation error**: a run stops once a fixed number of updates
#    (the patience) pass without a new lowest validation error, never before a minimum
#    number of updates, and at most at a cap; it keeps the parameters of its lowest
#    validation error.
# 4. **Three seeds** at the chosen rate (seed 0 is the selection run).
# 5. **The test set is read once per run, after it stops**; no choice above reads it. The
#    table shows the test error of the chosen rate's runs only.
#
# The settings, as the code defines them:

# %% tags=["hide-input"]
from fwbook.chapters import ch05_fair
from fwbook.experiments import fair

protocol = fair.protocol_description("paper")
print(f"input embedding: {protocol['input_embedding']} dimensions (learned, N(0, 1) initialised)")
print("learning rates (every model, every R): "
      + ", ".join(fair.lr_label(lr) for lr in protocol["lrs"])
      + f" (Adam, {protocol['lr_schedule']})")
print(f"validation every {protocol['eval_every']:,} updates; patience {protocol['patience']:,} "
      f"updates; no stop before {protocol['min_steps']:,}; cap {protocol['steps']:,} updates")
print(f"seeds at the chosen rate: {', '.join(map(str, protocol['seeds']))} "
      f"(selection seed {protocol['selection_seed']})")

# %% [markdown]
# These records are the `paper` profile's and are read from `results/fair/` whatever the
# chapter's profile: the protocol takes many hours of training on this machine and a
# shortened version of it would not be the protocol. The sweep is still running: the list
# first says which cells have finished and what each of the others is waiting for; in the
# table a cell whose learning rates have not all finished says so, and a cell without
# records says "not run yet". Test error in %, mean ± standard deviation over the seeds
# finished ("n/a" for one seed), beside today's Table 1 (one-hot input, fixed budget, the
# section above) and the paper's number. "Best update / stop" is, for each seed, the update
# whose parameters were kept and the update where the run stopped.

# %% tags=["hide-input"]
fair_cells = fair.fair_cells()
today = fair.today_cells(table1.table1_rows(table1.load_table1(table1.TABLE1_DIR, "paper")))
display(Markdown(ch05_fair.progress_markdown(fair_cells)))
display(Markdown(ch05_fair.comparison_markdown(fair_cells, today)))

# %% [markdown]
# The learning-rate selection, from the seed-0 records: each rate's lowest validation error,
# the update where it was reached and where the run stopped.

# %% tags=["hide-input"]
display(Markdown(ch05_fair.selection_markdown(fair_cells)))

# %% [markdown]
# {numref}`fig-fair-curves` shows the validation curves of every finished run (solid: the
# seed-0 selection runs, one per learning rate; dotted: the other seeds at the chosen rate; a
# dot marks the point each run kept).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Table 1 under the fair-controls protocol: validation error against updates of every finished run, one panel per model and R; colour is the learning rate, a dot the kept point.", "name": "fig-fair-curves"}, "image": {"alt": "Grid of line charts, one row per model and one column per number of hidden units, each showing validation error in percent on a symmetric-log axis against parameter updates for the runs finished so far, one colour per learning rate; panels without runs say not run yet."}}
figure = ch05_fair.validation_curves_figure(fair_cells)
plt.show()

# %% [markdown]
# ### The verdict under the protocol
#
# Recomputed from the protocol's records (a cell counts once it has all its seeds; until
# then the verdict says which cells are missing). A run that ends at the cap with its lowest
# validation error at its last evaluation was still improving: the cap, not the patience,
# stopped it, and its number is what the cap allowed. The verdict says which model that
# happened to, because a cap that stops one model earlier in its learning than another is
# not the same chance for both:

# %% tags=["hide-input"]
display(Markdown(ch05_fair.verdict_markdown(fair_cells, today)))

# %% [markdown]
# ### The cap, and why it stays where it is
#
# The protocol asks for a cap at which the validation curves have flattened. The records say
# that this cap is not one (computed from the finished runs):

# %% tags=["hide-input"]
display(Markdown(ch05_fair.cap_markdown(fair_cells)))

# %% [markdown]
# We keep the cap for this table, and say so rather than hide it. Every committed record of
# the protocol was trained under it, and the cap is part of each run's configuration (its
# `config_hash`), so a larger cap means training every run again, not extending some; the
# runs still missing already need the hours listed under *Compute of the protocol* below on
# this 2-core machine; and the cap is the same number for every model, so the comparison
# stays like for like. But it is not the "best chance" the protocol promises to each model,
# the runs it ended are numbers of what the cap allowed, and the verdict above is a verdict
# *at this cap*: where the models it holds back most are the ones compared, the verdict could
# turn with a larger one. Whoever has more cores can raise the cap
# (`FAIR_BUDGET["paper"]["steps"]` in `fwbook.experiments.fair`) and run
# `python -m fwbook sweep fair` again; this chapter recomputes everything from the new records.
#
# ### The cap check: does the verdict at $R = 20$ hang on the cap?
#
# The claim's own test can be made cheaper than a larger cap for everyone. Fast weights at
# $R = 20$, at the learning rate their cell chose, are trained again with twice the cap (the
# same patience and minimum; `python -m fwbook sweep fair-cap`, records in
# `results/fair_cap/`, never in the table above). Every control at $R = 20$ was also stopped at
# the cap, and a larger cap could only lower its error. So if fast weights with twice the
# updates are *still* behind the best control at the protocol's cap, the verdict does not hang
# on the cap; if they get ahead, it does, and $R = 20$ stays open until every model has had
# the larger cap. The check's runs are new runs, not continuations of the protocol's: the
# compiled step orders its floating-point sums differently from one compile to the next, so a
# run parts ways with the protocol's run of the same seed early on, and seed by seed the two
# differ as seeds do; read their means.

# %% tags=["hide-input"]
display(Markdown(ch05_fair.cap_check_markdown(fair_cells)))

# %% [markdown]
# ### The LSTM plateau and the input
#
# With one-hot input, `nn.LSTM`'s default initialisation gives each token a small input drive,
# and our LSTM at $R = 50$ spends its first thousands of updates at the value-only error level
# (answering the most frequent digit of the sequence, computed above). The table sets each
# seed's Table 1 record (one-hot) beside the protocol's record at the same learning rate with
# the embedding in front: the first evaluated update at which validation error fell below
# 50%, and the validation error after 5,000 and 10,000 updates.

# %% tags=["hide-input"]
display(Markdown(ch05_fair.finding_markdown(fair.finding_rows())))

# %% [markdown]
# ### Compute of the protocol
#
# Training wall time of the protocol's records by model (one worker, one torch thread, on the
# shared 2-core CPU, at the lowest scheduling priority), the wall time of the protocol so far
# (from the first run's start to the last run's end), and what the runs still missing would
# take at each model's median time per run so far:

# %% tags=["hide-input"]
display(Markdown(ch05_fair.compute_markdown()))

# %% [markdown]
# ## Compute
#
# The training wall time of every record behind this chapter (shared 2-core CPU for the
# `paper` profile; the records name their device and commit):

# %% tags=["hide-input"]
spent = table1.compute_spent(records)
print(f"{spent['runs']} runs, {spent['hours']:.2f} hours of training wall time "
      f"({profile} profile).")
folders = table1.compute_by_folder()
print("All committed run records of the book, by folder under results/ (training wall time):")
for folder, entry in folders.items():
    print(f"  {folder:<12} {entry['runs']:>3} runs  {entry['hours']:6.2f} h")
print(f"  {'in all':<12} {sum(e['runs'] for e in folders.values()):>3} runs  "
      f"{sum(e['hours'] for e in folders.values()):6.2f} h")

# %% [markdown]
# ## Summary
#
# - Table 1 and Figure 2 are generated from run records, with the records behind each cell
#   listed; cells without records say so.
# - We train with Adam at $10^{-3}$ rather than the paper's $10^{-4}$, and show the paper's
#   recipe beside ours for the cell the paper headlines (fast weights, $R = 20$).
# - Our controls are measured, not copied: where they beat the paper's ~60%, the claim that
#   only fast weights solve the task at $R = 20$ depends on how the controls were trained and
#   on $K$. A control that stays at ~62% sits at the level of answering the most frequent
#   digit; the LN-IRNN leaves that level when given several times the budget.
# - At $R = 50$ and $100$ the paper reports lower errors than ours for most models; every
#   run here stops at the same 40,000 updates, and the paper's budget is not stated, so the
#   findings list above names those cells rather than explaining them away.
#
# And under the fair-controls protocol (computed from its records):

# %% tags=["hide-input"]
display(Markdown(ch05_fair.summary_markdown(fair_cells)))
