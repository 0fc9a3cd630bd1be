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
# # 9. Performance
#
# How fast the models of {cite:t}`ba2016fastweights` train here, what the fast paths of
# `fwbook.core.steps` and `fwbook.perf.batched` buy, and where the Eq. 4 form of the fast weights beats
# the explicit $H \times H$ matrix $A(t)$ of Eq. 1.
#
# Every figure on this page is measured by `python -m fwbook bench --suite SUITE
# --output-dir results/bench` and read from the committed JSON there, which records the
# commit, package versions and the hardware; each figure's title names that hardware.
# Timings come from a shared, busy 2-core machine. Every suite therefore times the rows it
# compares in **interleaved** blocks (block $r$ of every row before block $r+1$ of any), so a
# burst of load lands on all rows alike, and reports the min / median / max block; a row
# whose spread, (max − min) / median, exceeds 30% is marked `!` as too unsteady to trust.
# **Ratios** between rows of one run are the meaningful numbers, not the absolute rates.
# The number of torch threads is measured, not assumed: each run times the plain step under
# 1 and 2 threads (interleaved) and uses the faster, and says so. **GPU figures are not measured yet**: no GPU was available when these
# were taken; the GPU code paths (CUDA graphs through `torch.compile`'s `reduce-overhead`
# mode) exist and are tested only where a GPU is present.
#
# Every profile shows the committed measurements; with `smoke`, a suite not committed yet is
# measured at tiny sizes (seconds), only to check that the code runs.

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
import matplotlib.pyplot as plt

from fwbook.chapters import ch09_performance as chapter
from fwbook.core.records import REPO_ROOT
from fwbook.experiments.grids import PROFILE_SETTINGS
from fwbook.perf import bench
from fwbook.perf.flops import format_flops
from fwbook.perf.speedup import format_speedup
from fwbook.perf.sweep_throughput import grid_hours
from fwbook.perf.throughput import format_table
from fwbook.perf.timing import threads_line

documents = {suite: bench.load_bench(suite) for suite in bench.SUITES}
source = "read from the committed results/bench/*.json"
if profile == "smoke":  # suites not committed yet are measured at tiny sizes, to check the code
    for suite in [s for s, document in documents.items()
                  if document is None and s in bench.DEFAULT_ALL]:
        documents[suite] = bench.run_suite(suite, device="cpu", quick=True, repeats=1)
        source += f"; {suite} measured just now at tiny sizes (smoke)"
print(f"profile: {profile}; figures {source}")
for suite, document in documents.items():
    if document is None:
        print(f"{suite}: not measured yet")
    else:
        print(f"{suite}: measured {document['measured_at']} on {chapter.machine_caption(document)}, "
              f"commit {document['commit'][:12]}")

# %% [markdown]
# ## Training paths against a plain eager implementation
#
# `bench` keeps a frozen copy of the first, plain eager Eq. 4 recurrence
# (`fwbook.perf.speedup.ReferenceEagerCore`: a slice, a `torch.cat` and two batched matrix-vector
# products per step) as the yardstick. The *eager* path is `fwbook.core.train(step="eager")`:
# the package's model, whose training forward computes $\eta\lambda^k$ once and the attention
# of Eq. 4 with element-wise products, and the plain step. The *compiled* path is
# `train(step="compiled")`: the forward and backward compiled by `torch.compile` (the
# unrolled recurrence fused into a few C++ kernels on the CPU), and on the CPU the gradient
# clipping and Adam compiled too (the learning rate a tensor that a schedule fills in). The
# *compiled_loss* row is that step before clipping and Adam were compiled (foreach kernels,
# eager), kept to show what compiling them gained. All are tested equal to the plain step
# (fp32, outputs, gradients and the parameters after Adam within $10^{-5}$).
#
# **`train`'s default is `step="auto"`**: on the CPU, with a C++ compiler present (fast
# weights, IRNN, LN-IRNN and A-LSTM; Dynamo does not trace `nn.LSTM`, whose fused kernel is
# fast anyway), it times a few eager updates and compiles only when the compile time (measured
# by an earlier compiled run on this machine, else assumed to be the worst cold compile seen,
# 15,000 eager updates' worth) is repaid over the run (`fwbook.core.stepcost`). With nothing
# measured yet that means runs of 37,500 updates or more: `fwbook train` and the paper
# profile's 40,000-update runs use the compiled path; the tests and the smoke book the eager
# one. Each record says which step it ran
# (`record["training_step"]`), with the compile time. On CUDA "auto" stays eager until the
# CUDA-graph step has been checked on a GPU.
#
# {numref}`fig-speedup` shows the measured speed-ups.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Training sequences per second of every Eq. 4 training path (the frozen eager reference, the eager step, the compiled step and the ideas below), each bar labelled with its speed-up over the reference.", "name": "fig-speedup"}, "image": {"alt": "Grouped bar chart of training sequences per second at each measured hidden size R, one bar per training path, each labelled with its speed-up over the reference."}}
speedup = documents["speedup"]
if speedup is not None:
    print(threads_line(speedup["settings"]["threads"]))
    for line in chapter.speedup_summary(speedup):
        print(line)
    chapter.plot_speedup(speedup)
    plt.show()

# %% [markdown]
# ### What each idea gained
#
# Beyond compiling, these ideas were tried on the fast-weights step, each tested equal to the
# plain step (outputs, gradients and whole Adam updates, fp32, within $10^{-5}$:
# `tests/test_fused_eq4.py`, `tests/test_whole_step.py`, `tests/test_batched.py`):
#
# - **a hand-derived backward** of the whole Eq. 4 recurrence in one custom autograd function
#   (`fwbook.perf.fused_eq4`): autograd no longer records and replays every small operation
#   of every step; the past states are written into one preallocated $(B, T, H)$ tensor
#   instead of a `torch.stack` of the growing history at every step; the gradient of $W$ is
#   one $(H \times BT) \cdot (BT \times H)$ product after the loop instead of $T$ small ones;
# - the same with the attention as **batched matrix products** (`bmm`) of the stacked past
#   instead of element-wise products and sums, i.e. "fewer, larger kernels";
# - the hand-derived backward **handed to `torch.compile`**;
# - **clipping and Adam compiled too**, fused into a few loops over all parameters instead of
#   about twenty small foreach kernels: it paid in earlier runs and is now part of `train`'s
#   compiled step (the `compiled` row against `compiled_loss`);
# - inductor's kernels **called from generated C++** (`cpp_wrapper`, the `compiled_cpp` row,
#   `fwbook.perf.whole_step`) instead of from Python;
# - **three seeds as one batched model** (`fwbook.perf.batched.BatchedSeedsStep`, stacked
#   weights and `torch.func.vmap`; each seed keeps its own loss, clipping and Adam), eager and
#   compiled. It is not a faster step for one run but more sequences per second for a sweep,
#   which trains three seeds of every cell: its rows count the sequences of all three seeds.
# - the **torch thread count**, measured at the start of every run (printed above each table).
#
# Each line gives the gain over the path the idea builds on, from the same run (ratios of
# medians of interleaved blocks):

# %% tags=["hide-input"]
if speedup is not None:
    for line in chapter.ideas_summary(speedup):
        print(line)
    print()
    print(format_speedup(speedup["rows"]))
    print()
    for line in chapter.target_summary(speedup, target=4.0):
        print(line)

# %% [markdown]
# The same suite run again right after the first (`results/bench/repeat/speedup2.json`): how
# far one idea's gain moves between two runs on this machine tells how much of it to believe.

# %% tags=["hide-input"]
second = bench.load_bench("speedup2", REPO_ROOT / "results" / "bench" / "repeat")
if speedup is not None and second is not None:
    for line in chapter.target_summary(second, target=4.0):
        print(line)
    first_gains = {(r["path"], r["hidden"]): r.get("gain") for r in speedup["rows"]}
    print("gain of each idea over the path it builds on, first run -> second run:")
    for row in second["rows"]:
        before = first_gains.get((row["path"], row["hidden"]))
        if row.get("gain") and before:
            print(f"  {row['path']:<17} R = {row['hidden']:<4} {before:.2f}x -> {row['gain']:.2f}x"
                  f"  (against {row['compared_with']})")

# %% [markdown]
# **Why the default step does not reach 4x.** At batch 128, $T = 11$ and $R \le 100$ one update
# is some tens of MFLOP (counted in the next section) spread over a few hundred small
# operations: per step of the recurrence a $(B \times R)(R \times R)$ product, the attention over at most ten past states, a layer norm,
# and their backward. Each is a few microseconds of arithmetic, so fixed costs per operation
# and per update (dispatch, the compiled graphs' guards and wrappers, the optimizer's loops)
# weigh as much as the arithmetic. A profile of the compiled step at $R = 50$
# (`torch.profiler`, 20 updates, with clipping and Adam compiled) finds most of its time inside
# the two compiled graphs' own kernels (the forward's more than the backward's), then about
# thirty small `addmm` products per update that inductor leaves to the BLAS library, and a
# smaller part in Dynamo's and AOTAutograd's per-call wrappers and the compiled optimizer.
# The fixed costs that compiling removes are mostly gone; what is left is the fused kernels'
# arithmetic on $(B \times t \times R)$ blocks too small to run at the matrix kernels'
# rate. What paid is what removed fixed costs (compiling, then compiling the optimizer
# too); what did not is what changed the arithmetic (a hand-derived backward, `bmm`) or made
# the calls costlier (the generated C++ caller, whose `_foreach_norm` has no C shim and goes
# through a proxy). Batching three seeds makes every kernel three times larger but gained
# little eager and nothing compiled here (not profiled further). The rows are medians of
# one run read with the timing thread's CPU clock; the two runs above disagree on an idea's
# gain by the amounts printed, so only a gain seen in both is a finding, and a row that
# reaches 4x in one run only is not.

# %% [markdown]
# ## How far from the machine's limit
#
# `fwbook.perf.flops` counts the floating-point work of one training update (forward, backward,
# gradient clipping, Adam) of each model, op by op: a matrix product $(m \times k)(k \times n)$
# is $2mkn$ FLOPs, the Eq. 4 attention counts as the two contractions it is, element-wise
# work per output element (an estimate, given apart). Every matrix-product count is checked
# against PyTorch's own `FlopCounterMode` on a real forward and backward
# (`tests/test_flops.py`). The suite divides the FLOPs a plain eager training step does per
# second by what `torch.mm` reaches on this machine, measured in the same run, at the model's
# recurrent product $(B \times H)(H \times G)$ and at $512^3$, timed in the same interleaved
# blocks as the steps:

# %%
flops = documents["flops"]
if flops is not None:
    print(threads_line(flops["settings"]["threads"]))
    print(format_flops(flops["rows"]))
    rows = flops["rows"]
    best = max(rows, key=lambda r: r["fraction_at_shape"])
    worst = min(rows, key=lambda r: r["fraction_at_shape"])
    print(f"\nThe plain eager steps reach from {worst['fraction_at_shape']:.0%} "
          f"({worst['model']}, R = {worst['hidden']}) to {best['fraction_at_shape']:.0%} "
          f"({best['model']}, R = {best['hidden']}) of torch.mm at their shapes, and at most "
          f"{max(r['fraction_of_large'] for r in rows):.0%} of its rate on large matrices.")
if speedup is not None:
    for hidden in sorted({r["hidden"] for r in speedup["rows"]}):
        fastest = max((r for r in speedup["rows"] if r["hidden"] == hidden),
                      key=lambda r: r["seq_per_s"])
        print(f"Fastest fast-weights path at R = {hidden}: {fastest['path']}, "
              f"{fastest['gflops']:.1f} GFLOP/s = {fastest['fraction_at_shape']:.0%} of torch.mm "
              f"at (B x H) @ (H x H), {fastest['fraction_of_large']:.0%} of it at 512³.")

# %% [markdown]
# Compilation is paid once per run and shape; the figures above leave it out and give it
# apart. `bench` times it cold (inductor's caches switched off) unless run with
# `--warm-compile`, which lets it reuse inductor's on-disk caches (the
# `TORCHINDUCTOR_CACHE_DIR` environment variable moves them); a graph seen before then
# compiles in seconds to a minute, so in a sweep only the first run of each shape pays in
# full. How this measurement compiled, and what compiling cost in updates of the eager step:

# %%
if speedup is not None:
    print(f"compile timed: {speedup['settings'].get('compile_cache', 'cold (caches off)')}")
    for hidden in sorted({r["hidden"] for r in speedup["rows"]}):
        rows = {r["path"]: r for r in speedup["rows"] if r["hidden"] == hidden}
        if rows.get("compiled", {}).get("compile_s"):
            batch = speedup["settings"]["batch_size"]
            updates = rows["compiled"]["compile_s"] * rows["eager"]["seq_per_s"] / batch
            print(f"R = {hidden}: {rows['compiled']['compile_s']:.0f} s of compiling = "
                  f"{updates:,.0f} eager updates of batch {batch}, against the paper "
                  f"profile's {PROFILE_SETTINGS['paper']['steps']:,} per run")

# %% [markdown]
# ## Fast weights (Eq. 4 and explicit) against the LSTM
#
# Training throughput, forward + backward + Adam, batch 128, all in one run:

# %% tags=["hide-input"]
throughput = documents["throughput"]
if throughput is not None:
    print(format_table(throughput["rows"]))

# %% [markdown]
# ### Do reruns agree?
#
# A number a reader can trust comes out about the same when the command is run again. The
# throughput suite above (plain `fwbook bench`) was run three times in a row on the same
# machine (`results/bench/repeat/`) four ways: read with the wall clock while other work
# shared the machine, with 5 timed blocks of 10 updates per row and with 15 blocks of 3 (a
# burst of load then moves a few of many blocks, and the median less); with the wall clock
# while nothing else ran (the background sweep paused); and with the timing thread's CPU
# clock while the sweep ran. With one torch thread every operation of an update runs in the
# timing thread, so its CPU time is the time the update held a core, and a moment another
# process held the core is not counted; the wall clock counts it. The CPU clock is the
# default now (`fwbook.perf.timing.timing_clock`; the wall clock where torch uses more
# threads or a GPU). What it cannot remove is the other process's use of the shared caches
# and memory bus, which the large explicit A(t) rows feel most. For each row: its three
# medians and their spread, (max − min) / min,
# against the target of 15%; and the spread of the row's **ratio** to the Eq. 4 row of the
# same $R$ in the same run, which a load that slows a whole run does not move. The load
# average at the start of each run is printed with them: on 2 cores, a load above 2 means
# other processes are waiting for a core.

# %% tags=["hide-input"]
for label, folder in (
        ("wall clock, 15 blocks of 3 updates per row, machine shared with other work", "repeat"),
        ("wall clock, 5 blocks of 10 updates per row, machine shared with other work",
         "repeat/blocks10"),
        ("wall clock, 15 blocks of 3, nothing else running (background sweep paused)",
         "repeat/quiet"),
        ("thread CPU clock (the default now), 15 blocks of 3, three training runs sharing the machine",
         "repeat/cpuclock")):
    repeats = [bench.load_bench(f"throughput{i}", REPO_ROOT / "results" / "bench" / folder)
               for i in (1, 2, 3)]
    repeats = [document for document in repeats if document is not None]
    print(f"{label}:")
    if len(repeats) >= 2:
        print("\n".join(chapter.rerun_summary(repeats)) + "\n")
    else:
        print(f"  not measured yet (fwbook bench --output-dir results/bench/{folder}/N)\n")

# %% [markdown]
# ## Memory cost against $H$ and $T$: where Eq. 4 wins
#
# The explicit form carries $A(t)$, $B \cdot H^2$ numbers per step; Eq. 4 carries the past
# hidden states, $B \cdot t \cdot H$ at step $t$. Counting numbers alone, Eq. 4 should win
# while $T < H$ and lose beyond; the measurement below ({numref}`fig-memory-cost`) shows whether and where the crossover
# really comes (longer sequences come from more key-value pairs, $T = 2K + 3$).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Throughput of the explicit form and of Eq. 4 against the hidden size $H$, one panel per sequence length $T$ (log-log).", "name": "fig-memory-cost"}, "image": {"alt": "Log-log line charts, one panel per sequence length T: training sequences per second against the number of hidden units H, one line for the explicit A(t) form and one for Eq. 4."}}
cost = documents["cost"]
if cost is not None:
    for length in sorted({r["seq_len"] for r in cost["rows"]}):
        rates = {(r["hidden"], r["memory"]): r["seq_per_s"] for r in cost["rows"]
                 if r["seq_len"] == length}
        winners = [f"H={h}: Eq. 4 {rates[(h, 'efficient')] / rates[(h, 'explicit')]:.2f}x explicit"
                   for h in sorted({h for h, _ in rates})]
        print(f"T = {length}: " + "; ".join(winners))
    chapter.plot_memory_cost(cost)
    plt.show()

# %% [markdown]
# ## Sweep throughput: the Table 1 grid
#
# Projected from update rates: models per hour for the paper profile (40,000 updates per
# run; evaluation excluded), three seeds trained one after another with the eager step
# against the same three seeds trained as one batched model
# (`fwbook.perf.batched`: stacked weights and `torch.func.vmap`, each seed with its own
# initialisation and gradient clipping; one batched update is tested equal to single ones). The
# sweep does not use batching: it gains less than compiling the step does, and it has no
# checkpoints.
#
# {numref}`fig-sweep` compares the two.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Sweep throughput for each Table 1 cell: models of 40,000 updates trained per hour, one seed after another and with three seeds batched.", "name": "fig-sweep"}, "image": {"alt": "Grouped bar chart with one pair of bars per Table 1 cell (IRNN, LSTM, A-LSTM and fast weights at R = 20, 50 and 100): models trained per hour one by one and with three seeds batched."}}
sweep = documents["sweep"]
if sweep is not None:
    grid = grid_hours(sweep["rows"])
    print(f"projected Table 1 grid ({len(sweep['rows'])} cells x {sweep['rows'][0]['seeds']} "
          f"seeds) in one process: {grid['single_hours']:.1f} h one by one, "
          f"{grid['batched_hours']:.1f} h with batched seeds")
    chapter.plot_sweep(sweep)
    plt.show()

# %% [markdown]
# ### The grid as it really ran
#
# Measured, not projected: the wall time of the committed Table 1 records that were trained
# with `train`'s default ("auto") step, sweep workers of one thread each on the 2-core
# machine (evaluation, checkpoints and compiling included). A cell costs three times the median
# of its runs; the grid is the sum over the twelve cells of IRNN, LSTM, A-LSTM and fast
# weights at R = 20, 50, 100, divided by two workers. Cells whose Table 1 records all predate
# the compiled step were timed by one more run of their seed-0 configuration with the current
# step (`results/bench/grid/`, records like any other, not used in Table 1). Most of these
# runs shared the two cores with two or three other processes, so the figure is an upper
# bound for a machine that does nothing else.

# %% tags=["hide-input"]
from fwbook.experiments import table1

timing_runs = table1.load_table1(REPO_ROOT / "results" / "bench" / "grid")
grid = table1.grid_time(table1.load_table1() + timing_runs)
for (model, hidden), cell in grid["cells"].items():
    print(f"{model:<13} R={hidden:<4} median {cell['median_wall_s'] / 60:5.1f} min "
          f"over {cell['runs']} run(s), step: {', '.join(cell['steps'])}")
print(f"Table 1 grid: {len(grid['cells'])} of 12 cells measured, {grid['seeds']} seeds each,\n"
      f"{grid['workers']} workers: {grid['grid_hours']:.2f} h")
if grid["missing"]:
    print("cells without a run of the current step:", ", ".join(grid["missing"]))
else:
    verdict = "within" if grid["grid_hours"] <= 2 else "over"
    print(f"That is {verdict} the project's target of 2 hours on this machine.")

# %% [markdown]
# ## Sweeps on Ray: the same grid, one machine or many
#
# `fwbook sweep ... --backend ray` trains each run as a Ray task: on an embedded Ray on this
# machine by default, or on a cluster with `--address HOST:PORT` (see *How to reproduce*). It
# keeps the local backend's rules (a finished run is never redone, a record of another
# configuration is refused, a run another sweep holds is not started) and gives the same
# records. What does Ray cost on one 2-core machine? Measured by `fwbook bench --suite
# backends`: whole `fwbook sweep` commands on the first runs of the quick Table 1
# grid, startup included, the two backends alternated (local, Ray, Ray, local) in one run so
# that the load of the shared machine weighs on both alike. The machine was shared with other
# work while this ran (its load average is printed below, against 2 cores): read the medians
# beside the spread between sweeps of one backend, printed with them.

# %% tags=["hide-input"]
from fwbook.perf import backend_bench

backends = documents["backends"]
if backends is None:
    print("backends: not measured yet (fwbook bench --suite backends)")
else:
    print(f"measured {backends['measured_at']} on {backends['device']['type']}: "
          f"{backends['device']['name']}, {backends['device']['cpu_count']} cores, one torch "
          f"thread per run, commit {backends['commit'][:12]}")
    for line in backend_bench.summary(backends):
        print(line)

# %% [markdown]
# ## Time to accuracy
#
# Fast weights with $R = 20$ from scratch (Adam, learning rate $10^{-3}$, batch 128) until
# the validation error falls to 5% and to 2% ({numref}`fig-time-to-accuracy`):

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Time to accuracy: validation error of fast weights at $R = 20$ against wall time from scratch; dashed, the 5% and 2% marks; dotted, when they are reached.", "name": "fig-time-to-accuracy"}, "image": {"alt": "Line chart with a logarithmic error axis: validation error in percent of fast weights with 20 hidden units against wall-clock seconds from scratch, with dashed horizontal lines at 5% and 2% and dotted vertical lines where the curve reaches them."}}
tta = documents["tta"]
if tta is not None:
    for result in tta["rows"]:
        for mark in result["thresholds"]:
            reached = (f"{mark['updates']:,} updates, {mark['wall_s']:.0f} s"
                       if mark["updates"] else f"not reached in {result['max_updates']:,} updates")
            print(f"validation error <= {mark['val_error']:.0%}: {reached}")
    chapter.plot_time_to_accuracy(tta)
    plt.show()

# %% [markdown]
# ## Summary
#
# - `train`'s default path for long CPU runs is the compiled step, faster than the plain
#   eager Eq. 4 code by the ratio printed above (the eager step alone gains less); compiling
#   takes seconds to minutes per shape, depending on how busy the machine is.
# - At batch 128 and $T = 11$ a training update is a few hundred small kernels: the step is
#   bound by their number and overhead, not by arithmetic, which is why it reaches only the
#   fraction of the matrix kernels' rate printed above.
# - All figures are CPU figures from a shared machine; GPU figures are not measured yet.
#   Under the load these were taken at, absolute rates moved far more between reruns than the
#   15% a reader should be able to rely on; the ratios within one run moved less, and every
#   row whose blocks spread too wide is flagged `!` in the output, as printed above.
#
# From the measurements above:

# %% tags=["hide-input"]
if speedup is not None:
    print("- Speed target (the default step at least 4x the plain eager reference):")
    for line in chapter.target_summary(speedup, target=4.0):
        print(f"  {line}")
if cost is not None:
    ratios = {(r["seq_len"], r["hidden"]): None for r in cost["rows"]}
    for key in ratios:
        rates = {r["memory"]: r["seq_per_s"] for r in cost["rows"]
                 if (r["seq_len"], r["hidden"]) == key}
        ratios[key] = rates["efficient"] / rates["explicit"]
    (low_t, low_h), low = min(ratios.items(), key=lambda item: item[1])
    losses = [f"T = {t}, H = {h}" for (t, h), ratio in sorted(ratios.items()) if ratio < 1]
    print(f"- Eq. 4 against the explicit matrix: from {low:.2f}x (T = {low_t}, H = {low_h}) "
          f"to {max(ratios.values()):.2f}x; "
          + (f"the explicit form wins at {', '.join(losses)}." if losses else
             "the explicit form wins nowhere in this grid, T up to "
             f"{max(t for t, _ in ratios)} (with T > H at H = {min(h for _, h in ratios)})."))
if backends is not None:
    print(f"- Sweeps on Ray: on this 2-core machine the Ray backend trained\n"
          f"  {backends['ray_over_local']:.0%} as many runs per hour as the local backend "
          f"(target: at least {backends['target_ratio']:.0%}),\n  with "
          + ("identical records." if backends["records_identical"] else "DIFFERENT records."))
if sweep is not None:
    gains = sorted(sweep["rows"], key=lambda r: r["batched_speedup"])
    print(f"- Batching {gains[0]['seeds']} seeds: from {gains[0]['batched_speedup']:.2f}x "
          f"({gains[0]['model']}, R = {gains[0]['hidden']}) to {gains[-1]['batched_speedup']:.2f}x "
          f"({gains[-1]['model']}, R = {gains[-1]['hidden']}); slower than one by one for "
          + (", ".join(f"{r['model']} R = {r['hidden']}" for r in gains
                       if r["batched_speedup"] < 1) or "none") + ".")
