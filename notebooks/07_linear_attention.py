# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Fast weights are linear attention with decay
#
# Five years after {cite:t}`ba2016fastweights`, {cite:t}`schlag2021linear` showed that
# *linear transformers*, transformers whose softmax attention is replaced by a plain dot
# product, are "secretly fast weight programmers": the attention they compute is a matrix of
# fast weights written by outer products, as in the early fast-weight networks
# {cite:p}`schmidhuber1992fastweights`. The fast weights of Ba et al. are one such memory.
# This chapter derives the identity for the model of this book, checks it to the last digit
# of float32 against a direct linear-attention computation, and then says why, despite the
# identity, this model cannot use the parallel kernels that make linear transformers fast.
#
# The code is in `fwbook.chapters.ch07_linear_attention`; the notebook calls it.

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
profile = "quick"  # "smoke" (seconds), "quick" (minutes on 2 CPU cores) or "paper" (reads results/attention)
seed = 0  # initialisation and data-order seed of the model trained here
device = "auto"  # "auto", "cpu" or "cuda"

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from fwbook.chapters import ch07_linear_attention as linear_attention
from fwbook.core.data import decode
from fwbook.core.models import build_model
from fwbook.chapters.plots import use_house_style
from fwbook.experiments import attention_runs

torch.set_num_threads(1)  # one thread: the book is built on small shared machines
use_house_style()
print(f"profile={profile!r}, seed={seed}, device={device!r}, torch {torch.__version__}")

# %% [markdown]
# ## The derivation
#
# The fast weights start at $A(0) = 0$ for every sequence and follow
#
# $$ A(t) = \lambda A(t-1) + \eta\, h(t) h(t)^\top . \tag{Eq. 1} $$
#
# Unrolling the recursion gives a decayed sum of outer products,
#
# $$ A(t) = \eta \sum_{\tau=1}^{t} \lambda^{\,t-\tau}\, h(\tau) h(\tau)^\top , \tag{Eq. 3} $$
#
# and multiplying by the inner-loop vector $h_s(t+1)$ and moving the scalar
# $h(\tau)^\top h_s(t+1)$ to the front of each term,
#
# $$ A(t)\, h_s(t+1) = \sum_{\tau=1}^{t} \lambda^{\,t-\tau}\,
#    \big[h(\tau)^\top h_s(t+1)\big]\; \eta\, h(\tau) . \tag{Eq. 4} $$
#
# Now compare causal **linear attention with decay**, for queries $q_t$, keys $k_\tau$ and
# values $v_\tau$:
#
# $$ o_t = \sum_{\tau \le t} \lambda^{\,t-\tau}\, (q_t^\top k_\tau)\, v_\tau . \tag{LA} $$
#
# Eq. 4 is (LA) with
#
# $$ q_t = h_s(t+1), \qquad k_\tau = h(\tau), \qquad v_\tau = \eta\, h(\tau), $$
#
# the step $t$ that reads the input $x(t)$ attending over $\tau = 1, \dots, t$. Index the
# sequence by the input steps $t = 0, \dots, T-1$ and set $h(0) = 0$: then the key at
# position $t$ is $h(t)$, the output of the *previous* step, and the first key is zero, so
# (LA) runs over $\tau \le t$ exactly as written. Three things set the fast weights apart from
# the attention of a transformer: queries and keys are the **same** vectors (the memory is
# auto-associative, Hebbian), values are keys scaled by $\eta$, and there is **no softmax and
# no normalisation**: the weights $\eta\lambda^{t-\tau} h(\tau)^\top h_s(t+1)$ are used as they
# are. They are never negative only because $h$ comes out of a ReLU.
#
# (LA) can be computed in two ways that cost differently:
#
# * **masked matrix form**: $O = (Q K^\top \circ D)\, V$ with $D_{t\tau} = \lambda^{t-\tau}$
#   for $\tau \le t$ and 0 above the diagonal: $O(T^2 d)$ work, all in parallel;
# * **recurrent state form**: $S_t = \lambda S_{t-1} + v_t k_t^\top$, $o_t = S_t q_t$:
#   $O(T d^2)$ work, one step after the other. With $v = \eta h$ and $k = h$, $S_t$ *is*
#   $A(t)$, and the recursion *is* Eq. 1.
#
# Linear-transformer kernels use a third, **chunked** form: the masked form inside chunks of
# $C$ steps and the state $S$ carried from chunk to chunk (`linear_attention_chunked`).

# %% [markdown]
# ## Check 1: the three forms agree
#
# Random queries, keys and values in float32, λ = 0.95:

# %% tags=["hide-input"]
generator = torch.Generator().manual_seed(seed)
q, k, v = (torch.randn(8, 11, 20, generator=generator) for _ in range(3))
reference = linear_attention.linear_attention_masked(q, k, v, 0.95)
forms = {
    "recurrent state S_t": linear_attention.linear_attention_recurrent(q, k, v, 0.95),
    "chunked, C = 4": linear_attention.linear_attention_chunked(q, k, v, 0.95, chunk=4),
    "chunked, C = 3": linear_attention.linear_attention_chunked(q, k, v, 0.95, chunk=3),
}
check = pd.DataFrame({
    "max |difference| to the masked form": {name: float((out - reference).abs().max())
                                            for name, out in forms.items()},
    "largest |output|": {name: float(reference.abs().max()) for name in forms},
})
check.style.format("{:.2e}")

# %% [markdown]
# The differences are float32 rounding: the three forms add the same terms in different
# orders. The tests (`tests/test_linear_attention.py`) hold them to 1e-5.
#
# ## Check 2: the model's memory read is linear attention
#
# Now the real thing. We take a fast-weights model (R = 20, λ = 0.95, η = 0.5) and a batch of
# test sequences, step its core with the **explicit** B × H × H matrix $A(t)$ of Eq. 1,
# and record at every step the preliminary vector $h_0(t+1)$ and the read
# $A(t)\,h_0(t+1)$. Independently, `linear_attention_masked` computes (LA) with
# $q_t = h_0(t+1)$, $k_t = h(t)$, $v_t = \eta\,h(t)$. The weights of (LA) are compared in {numref}`fig-equivalence` with the ones `model.trace` records from the model's own efficient form.
#
# In the `paper` profile the model is the committed K = 4 model of the previous chapter;
# otherwise it is trained here with the same recipe at this profile's budget. The identity
# holds for any weights; a trained model only makes the picture more telling.

# %% tags=["hide-input"]
if profile == "paper":
    record, model = attention_runs.load_run("fast_weights_K4", "paper", seed)
    source = "the committed paper-profile model from `results/attention/`"
else:
    record, model = attention_runs.train_run("fast_weights_K4", "fast_weights", 4, profile, seed,
                                             device)
    model = model.cpu()
    source = f"a model trained here ({profile!r} profile, {record['steps_done']:,} updates)"
test = attention_runs.record_test_split(record)
tokens = test.inputs[:256]  # (256, 11)
result = linear_attention.fast_weights_as_linear_attention(model, tokens)
read_error = float((result["fast_term"] - result["linear_attention"]).abs().max())
weight_error = float((result["memory_weights"] - result["attention_weights"]).abs().max())
display(Markdown(
    f"Model: {source}, test error {record['test_error']:.1%}. Over {tokens.shape[0]} test "
    f"sequences, {tokens.shape[1]} steps and {model.config.hidden} units, the largest "
    f"difference between the core's $A(t)\\,h_0(t+1)$ and linear attention is "
    f"**{read_error:.1e}** (the largest read is {float(result['fast_term'].abs().max()):.2f}); "
    f"between the weights of `model.trace` and those of linear attention, "
    f"**{weight_error:.1e}**."))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The same weights twice: linear attention (LA) with $q_t = h_0(t+1)$, $k_t = h(t)$, $v_t = \\eta\\, h(t)$, and the Eq. 4 weights the model records, on one sequence.", "name": "fig-equivalence"}, "image": {"alt": "Heatmaps side by side of the attention weights computed as linear attention and as recorded by the model's Eq. 4 form for one sequence."}}
figure = linear_attention.plot_equivalence(result, index=0, labels=decode(tokens[0]))
plt.show()

# %% [markdown]
# ## Why this model cannot use chunked kernels
#
# A linear transformer computes its keys, queries and values from the *inputs*:
# $k_t = W_k x_t$, $q_t = W_q x_t$, $v_t = W_v x_t$ (in a deep model, from the layer below). All
# of them are known before attention starts, so the whole sequence, or chunk after chunk, can
# be attended to with large matrix products. Training is parallel over time.
#
# In the fast-weights RNN the key that step $t$ writes is its own output,
#
# $$ h(t+1) = f\Big(\mathrm{LN}\big[W h(t) + C x(t) + A(t)\, h_s(t+1)\big]\Big), $$
#
# and it depends on the attention read $A(t)\,h_s(t+1)$ of that same step, through the
# layer norm and the ReLU. The query $h_0(t+1) = f(W h(t) + C x(t))$ depends on the previous
# key. So key $t+1$ cannot be computed before the read at step $t$ is done, and no chunk can
# be filled in advance: the recurrence is sequential, like any RNN. The nonlinearity and the
# normalisation also rule out the associative-scan trick of linear recurrences.
#
# The measurement in {numref}`fig-key-dependence` makes it concrete. It runs a model twice, once as it is and once with
# the memory read switched off (η = 0, every other weight unchanged), and shows how far the
# keys $h(t)$ move. In a linear transformer they would not move at all. Two models: the one
# above, and the same architecture freshly initialised (what training starts from).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "How far the keys $h(t)$ move when the memory read is switched off ($\\eta = 0$), for a freshly initialised and a trained model; in a linear transformer they would not move.", "name": "fig-key-dependence"}, "image": {"alt": "Bar chart on a logarithmic scale: for each key h(t), the mean distance between the state computed with and without the memory read, one bar for the freshly initialised model and one for the trained model."}}
torch.manual_seed(seed)
untrained = build_model(record["config"]["model"]).eval()
shifts = {"freshly initialised": linear_attention.key_dependence(untrained, tokens),
          "the model above": linear_attention.key_dependence(model, tokens)}
figure = linear_attention.plot_key_dependence(shifts)
plt.show()

# %% tags=["hide-input"]
fresh, trained = shifts["freshly initialised"], shifts["the model above"]
display(Markdown(
    f"The first key, $h(1)$, never moves: the memory is empty at the first step. In the freshly "
    f"initialised network every later key moves, by {float(fresh[1:].min()):.2f} to "
    f"{float(fresh[1:].max()):.2f} per unit on average: the keys are functions of the earlier "
    f"reads, and no chunk of them can be computed before those reads. In the model above, "
    f"keys 2 to {len(trained) - 1} move by at most {float(trained[1:-1].max()):.1e}, and the last "
    f"state, the one that reads the query, by {float(trained[-1]):.2f}."))

# %% tags=["hide-input"]
quiet_reads = float(trained[1:-1].max()) < 0.01 * float(fresh[1:-1].min())
display(Markdown(
    "The trained model has learned something the architecture does not force: while the pairs "
    "stream in, its preliminary vectors $h_0(t+1)$ are nearly orthogonal to everything stored "
    "(ReLU patterns with little overlap), so the reads are close to zero and the keys close to "
    "what they would be without the memory. The memory is *written* at every step and *read* "
    "in earnest only at the query. For such a model a parallel approximation (compute all keys "
    "without reads, then attend once) would be close. It is still an approximation, learned "
    "and not guaranteed: the exact model stays sequential, and a model trained on another task "
    "need not learn it."
    if quiet_reads else
    "In this model the keys still move by more than a hundredth of what they move in a fresh "
    "network, so even approximately the reads cannot be left out of the keys."))

# %% [markdown]
# ### How much parallelism would buy (one measurement)
#
# For scale only: the three forms of (LA) on random inputs, timed in this run on this
# machine, one CPU thread, median of repeated calls. The model cannot use the masked or chunked
# forms, for the reason above; the numbers show what the parallel masked form gains over the
# step-by-step recurrence at this size, and how that changes with the length of the sequence.
# The chunked form here is a readable reference in plain PyTorch, not an optimised kernel; its
# time is shown for completeness only.

# %% tags=["hide-input"]
timings = {steps: linear_attention.time_forms(batch=128, steps=steps, dim=20,
                                              repeats=5 if profile == "smoke" else 20)
           for steps in (11, 64)}
timing_table = pd.DataFrame(timings).T.rename_axis("sequence length T")
timing_table["recurrent / masked"] = timing_table["recurrent"] / timing_table["masked"]
timing_table.style.format({"masked": "{:.2e} s", "recurrent": "{:.2e} s",
                           "chunked": "{:.2e} s", "recurrent / masked": "{:.1f}×"})

# %% tags=["hide-input"]
ratio = {steps: timings[steps]["recurrent"] / timings[steps]["masked"] for steps in timings}
display(Markdown(
    f"In this run the step-by-step recurrence took {ratio[11]:.1f}× the time of the masked "
    f"form at T = 11 and {ratio[64]:.1f}× at T = 64 (batch 128, d = 20; Python-level loops, so "
    f"the gap is mostly per-step overhead, not arithmetic). Timings on a shared machine are "
    f"noisy; only ratios within this one run are quoted."))

# %% [markdown]
# ## Where the two lines of work differ
#
# {cite:t}`schlag2021linear` start from the other end: a transformer with the softmax taken
# out. Its attention then becomes a fast-weight memory written with $v_t k_t^\top$ and read
# with $q_t$, with separate learned projections for queries, keys and values, a feature map
# applied to keys and queries, and, in their proposal, a delta-rule update that overwrites
# what a key already stores instead of only adding to it, because a purely additive memory of
# $d \times d$ weights fills up. The fast weights of {cite:t}`ba2016fastweights` are the
# simplest point of that family: keys, queries and values all the hidden state, purely
# additive (Hebbian) writes, and a decay λ that makes old memories fade instead of being
# overwritten. What the RNN adds is the inner loop: the read is fed back through the layer
# norm and nonlinearity $S$ times before the state moves on, which is exactly what keeps it
# sequential.
#
# ## Summary
#
# * Eq. 3–4 are causal linear attention with decay: $q_t = h_s(t+1)$, $k_\tau = h(\tau)$,
#   $v_\tau = \eta h(\tau)$, weights $\lambda^{t-\tau} q_t^\top k_\tau$, no softmax; the
#   recurrent state of that attention is the fast-weight matrix $A(t)$ itself.
# * Checked numerically above: the explicit $A(t)$, the masked $O(T^2)$ form and the recurrent
#   form agree to float32 rounding, on random inputs and on a model's hidden states.
# * Unlike a linear transformer, the keys are the RNN's own outputs, which depend on earlier
#   reads through the layer norm and the ReLU, so the exact model cannot be processed in
#   parallel chunks. Measured above: in a fresh network every key depends on earlier reads;
#   whether the trained model has learned to read almost nothing until the query arrives is
#   decided by its measurement above, for the profile this page was built with.
