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
# # 2. The fast-weights equation
#
# Chapter 1 stored patterns in a matrix of weights with outer products. {cite:t}`ba2016fastweights`
# put such a matrix *inside* a recurrent network: next to the ordinary, slowly learned
# recurrent weights $W$ sits a matrix of **fast weights** $A(t)$ that is written at every step
# by the network's own hidden states, decays as it goes, and is wiped at the start of every
# sequence. It is never trained by gradient descent; gradient descent only learns how to use it.
#
# This chapter takes the model apart equation by equation, on the sequence the paper uses as its
# example, `c9k8j3f1??c` (answer: `9`, the value stored under key `c`). Every figure runs the
# real model code in `fwbook.core.models`; the figures themselves are drawn by `fwbook.chapters.ch02_equation` and
# `fwbook.chapters.widgets`. The equation labels below are the ones on the lines of `fwbook/models.py`
# that implement them.
#
# **What runs here.** Only forward passes of small, *untrained* networks (R = 20 hidden units,
# seeded): the point is the mechanics, which do not need training. Chapter 3 trains the model.
# Every profile takes a few seconds.

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
profile = "quick"  # "smoke", "quick" or "paper": this chapter does the same work in all three
seed = 0  # initialisation of the untrained networks
device = "auto"  # unused: everything here is a few small CPU forward passes

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from fwbook.chapters import ch02_equation as equation
from fwbook.chapters import widgets
from fwbook.experiments.ablations import eta_zero_equals_ln_irnn
from fwbook.chapters.explorer import book_fallback, fast_weights_html
from fwbook.core.models import ModelConfig, build_model

torch.set_num_threads(1)  # tiny networks; leave the other cores alone
TEXT = "c9k8j3f1??c"
HIDDEN = 20


def untrained(seed: int = seed, **changes) -> torch.nn.Module:
    """A seeded, untrained fast-weights RNN with the paper's defaults unless changed."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(model="fast_weights", hidden=HIDDEN, **changes)).eval()


model = untrained()
print(f"profile={profile!r}, seed={seed}, CPU, torch {torch.__version__}")
print(f"model: {model.config}")

# %% [markdown]
# ## The model in four equations
#
# Write $h(t)$ for the hidden state (H units), $x(t)$ for the one-hot input, $W$ (H×H) and $C$
# (H×I) for the slow recurrent and input weights, and $f$ = ReLU. The fast weights start at
# $A(0) = 0$ and, after each step, take in the new hidden state as an outer product while the
# old contents fade by a factor $\lambda$ (the **decay**) — $\eta$ is the **fast learning rate**:
#
# $$
# A(t) = \lambda\, A(t-1) + \eta\, h(t)\, h(t)^\top \qquad \text{(Eq. 1)}
# $$
#
# To compute the next hidden state, the network first forms the ordinary RNN's answer, the
# *preliminary* vector $h_0(t+1) = f\big(W h(t) + C x(t)\big)$, and then lets the fast weights
# pull it towards stored patterns for $S$ **inner steps**, $s = 0, \dots, S-1$, with layer
# normalisation {cite:p}`ba2016layernorm` applied over the H units of each sample:
#
# $$
# \begin{aligned}
# h_{s+1}(t+1) &= f\Big(\mathrm{LN}\big[\,W h(t) + C x(t) + A(t)\, h_s(t+1)\,\big]\Big),\\
# h(t+1) &= h_S(t+1) \qquad \text{(Eq. 2)}
# \end{aligned}
# $$
#
# Note the time indices: $A(t)$ is built from $h(1) \dots h(t)$, and the slow term uses the
# *previous* final state $W h(t)$ at every inner step (two earlier public implementations used
# $h_0(t+1)$ for both; see the deviations page). Unrolling Eq. 1 from $A(0) = 0$ gives the
# fast weights as a decayed sum of outer products,
#
# $$
# A(t) = \eta \sum_{\tau=1}^{t} \lambda^{t-\tau}\, h(\tau)\, h(\tau)^\top \qquad \text{(Eq. 3)}
# $$
#
# and multiplying by $h_s(t+1)$ shows what the fast term does without ever forming $A(t)$:
#
# $$
# A(t)\, h_s(t+1) = \eta \sum_{\tau=1}^{t} \lambda^{t-\tau}\, h(\tau)\,
#   \big[h(\tau)^\top h_s(t+1)\big] \qquad \text{(Eq. 4)}
# $$
#
# a weighted sum of past hidden states, each weighted by its similarity to the current one and
# by how recent it is: **attention to the recent past**, the paper's title. It is also exactly
# unnormalised linear attention, the link {cite:t}`schlag2021linear` made explicit.
# `fwbook.core.models.FastWeightsCore` implements both forms: `memory="explicit"` keeps the
# B×H×H tensor $A(t)$ (Eq. 1–2), `memory="efficient"` keeps the past states and uses Eq. 4.

# %% [markdown]
# ## Watching A(t) accumulate
#
# {numref}`fig-accumulation` runs the explicit form one token at a time (`FastWeightsCore.step` with
# `memory="explicit"`, reading `state.fast_weights` after each step) and splits Eq. 1 into its
# two terms: the top row is what is left of the old memory, $\lambda A(t-1)$; the middle row is
# what the current step writes, $\eta\, h(t) h(t)^\top$; the bottom row is their sum $A(t)$.
# Because $f$ is a ReLU, every $h(t) \ge 0$ and so every entry of $A(t)$ is non-negative:
# one colour scale from 0 serves all panels.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Eq. 1 step by step on `c9k8j3f1??c`: what is left of the old memory, $\\lambda A(t-1)$ (top), what the step writes, $\\eta\\, h(t) h(t)^\\top$ (middle), and their sum $A(t)$ (bottom).", "name": "fig-accumulation"}, "image": {"alt": "Three rows of small heatmaps, one column per token of the sequence c9k8j3f1??c: the decayed previous fast weights, the new outer product and their sum, all on one colour scale starting at zero."}}
equation.plot_fast_weights_accumulation(model, TEXT)

# %%
fast_weights, hidden_states = equation.explicit_fast_weights(model, TEXT)  # (T, H, H), (T, H)
norms = torch.linalg.matrix_norm(torch.as_tensor(fast_weights))  # (T,)  Frobenius ‖A(t)‖
ranks = [int(torch.linalg.matrix_rank(torch.as_tensor(a), atol=1e-6)) for a in fast_weights]
display(Markdown(
    f"After the whole sequence ‖A(t)‖ has grown from {norms[0]:.2f} (one outer product) to "
    f"{norms[-1]:.2f}, and its rank from {ranks[0]} to {ranks[-1]}: each step adds at most one "
    f"new direction, so A(t) of an H = {HIDDEN} network can hold at most {HIDDEN} independent "
    f"directions; this sequence has only {len(TEXT)} tokens. In an untrained network the hidden "
    f"states of different tokens are much alike, which is why the same few rows and columns "
    f"light up at every step; training (chapter 3) makes them distinct."))

# %% [markdown]
# ## What λ and η do
#
# The decay $\lambda$ sets how long a write survives: after $k$ more steps an outer product
# carries weight $\eta \lambda^k$ (Eq. 3). The fast learning rate $\eta$ scales the whole memory,
# and with it how strongly the fast term $A(t) h_s$ competes with the slow term $W h(t) + C x(t)$
# inside the layer norm. {numref}`fig-decay-grid` is the same untrained network reading the same text with
# λ and η changed (the slow weights held fixed), all on one colour scale. The paper uses
# λ = 0.95 and η = 0.5.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The same untrained network and text with the decay $\\lambda$ and the fast learning rate $\\eta$ changed: the fast weights after the sequence, one colour scale.", "name": "fig-decay-grid"}, "image": {"alt": "Three rows by four columns of heatmaps of A(t) after the sequence, rows for the fast learning rate eta (0.1, 0.5, 1) and columns for the decay lambda (0.5, 0.8, 0.95, 1), each titled with its norm; the same few entries grow brighter as lambda and eta grow."}}
decays = (0.5, 0.8, 0.95, 1.0)
fast_lrs = (0.1, 0.5, 1.0)
widgets.fast_weights_small_multiples(decays=decays, fast_lrs=fast_lrs, text=TEXT,
                                     hidden=HIDDEN, seed=seed)

# %% tags=["hide-input"]
first_write = {decay: decay ** (len(TEXT) - 1) for decay in decays}
display(Markdown(
    "How much of the first write (the key `c`, at t = 1) is left when the query arrives at "
    f"t = {len(TEXT)}, as a fraction of a fresh write: "
    + ", ".join(f"λ = {d:g}: {v:.3g}" for d, v in first_write.items())
    + ". With λ = 0.5 the first pair is all but forgotten by the time it is asked for; with "
      "λ = 1 nothing is ever forgotten and the memory only grows. Chapter 4 measures what these "
      "choices do to training."))

# %% [markdown]
# The explorer below redraws A(t) as you move the sliders for λ, η and the step t, or type
# another sequence. In a live notebook it is an ipywidgets explorer run by the kernel. In the
# rendered book the same controls run in your browser (a short script shipped with the book:
# no kernel, nothing fetched from the network), on this chapter's untrained network or, at
# your choice, on the trained model of chapter 6, which then also gives its answer at the λ
# and η you set. The page address can set the start, e.g.
# `02_fast_weights_equation.html?seq=a1b2c3d4??b&lambda=0.5&eta=1`. The static figures above
# show the same quantities for print.

# %% tags=["hide-input"]
explorer = widgets.fast_weights_explorer(text=TEXT, hidden=HIDDEN, seed=seed)
book_fallback(explorer, fast_weights_html(widgets.untrained_model(HIDDEN, seed), TEXT,
                                          label=f"untrained, seed {seed} (as the figures above)"))

# %% [markdown]
# ## Eq. 4: attention to the recent past
#
# The efficient form never builds $A(t)$; it keeps the past states and computes the weight
# $\eta\, \lambda^{t-\tau}\, h(\tau)^\top h_s(t+1)$ that each one gets (`model.trace` returns
# them). Read a row of {numref}`fig-memory-weights-untrained` as "while reading this token, how much of each earlier hidden
# state is added back in". The newest states get the largest weights, partly because λ has not
# yet shrunk them, partly because they resemble the current state.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Eq. 4 weights $\\eta\\, \\lambda^{t-\\tau}\\, h(\\tau)^\\top h_s(t+1)$ of the untrained network reading `c9k8j3f1??c`: row, the token being read; column, the earlier state it adds back in.", "name": "fig-memory-weights-untrained"}, "image": {"alt": "Lower-triangular heatmap: each row is a token of c9k8j3f1??c being read, each column an earlier hidden state, the colour the weight that state gets."}}
equation.plot_memory_weights(model, TEXT)

# %% [markdown]
# The two forms are the same function, so they must agree to rounding error, in the outputs
# *and* in the gradients that train $W$, $C$ and the layer norm. The table runs both on a batch
# of 64 random sequences with identical parameters, in float64, for S = 1, 2, 3:

# %% tags=["hide-input"]
agreement = equation.memory_forms_agreement(hidden=HIDDEN, inner_steps=(1, 2, 3), seed=seed)
agreement

# %% tags=["hide-input"]
agreement32 = equation.memory_forms_agreement(hidden=HIDDEN, inner_steps=(1,), seed=seed,
                                             dtype=torch.float32)
print(f"float64: max |Δ logits| = {agreement['max |Δ logits|'].max():.2e}, "
      f"max |Δ gradient| = {agreement['max |Δ gradient|'].max():.2e}")
print(f"float32: max |Δ logits| = {agreement32['max |Δ logits|'].max():.2e}, "
      f"max |Δ gradient| = {agreement32['max |Δ gradient|'].max():.2e}")

# %% [markdown]
# Which form is cheaper depends on the sizes. The explicit form stores and multiplies an H×H
# matrix per sequence; Eq. 4 stores the t past states and does two products of length t·H per
# inner step:

# %% tags=["hide-input"]
steps = len(TEXT)
rows = []
for size in (20, 50, 100):
    explicit_numbers = size * size  # A(t): H×H per sequence
    efficient_numbers = steps * size  # h(1..T): T×H per sequence
    rows.append(f"| {size} | {explicit_numbers:,} | {efficient_numbers:,} | "
                f"{'Eq. 4' if efficient_numbers < explicit_numbers else 'explicit'} |")
display(Markdown(
    f"Numbers held in memory per sequence at the last of T = {steps} steps:\n\n"
    "| H | explicit A(t) (H²) | Eq. 4 past states (T·H) | smaller |\n|---:|---:|---:|---|\n"
    + "\n".join(rows)
    + f"\n\nEq. 4 wins whenever the sequence is shorter than H; that is why training in this "
      f"book uses it, and the explicit form is kept as the reference it is tested against."))

# %% [markdown]
# ## The inner loop
#
# With S > 1 the fast weights are applied repeatedly within one time step: each inner step
# takes the current guess $h_s(t+1)$, asks the memory for the stored patterns that resemble it
# ($A(t) h_s$), and recomputes the state. The paper likens this to settling into an attractor
# {cite:p}`ba2016fastweights`; it is one step of an iterative associative recall.
#
# The table follows one untrained network with S = 3 through the sequence and measures how far
# each inner step moves the state. The first step is large by construction: $h_0$ is the plain
# ReLU of the slow term, $h_1$ the first layer-normalised state. The later steps measure the
# settling: how much the memory still changes the state.
#
# {numref}`fig-memory-weights-s3` shows the Eq. 4 weights of the same network.

# %% tags=["hide-input"]
model_s3 = untrained(inner_steps=3)
trajectory = equation.inner_loop_trajectory(model_s3, TEXT)
trajectory.round(4)

# %% tags=["hide-input"]
second, third = trajectory.iloc[1:, 3].mean(), trajectory.iloc[1:, 4].mean()
verdict = ("in this untrained network the loop has all but settled after two inner steps"
           if third < 0.1 * second else "the loop is still moving the state at the third step")
display(Markdown(
    f"From the second token on (at t = 1 the memory is still empty and every inner step "
    f"returns the same state) the second inner step moves the state by {second:.3f} on "
    f"average and the third by {third:.4f}: {verdict}."))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Eq. 4 weights of the untrained network with $S = 3$ inner steps reading `c9k8j3f1??c`.", "name": "fig-memory-weights-s3"}, "image": {"alt": "Lower-triangular heatmap of memory weights for a network with three inner steps: each row a token being read, each column an earlier hidden state."}}
equation.plot_memory_weights(model_s3, TEXT)

# %% [markdown]
# One consequence is worth stating before chapter 4 measures it. With η = 0 the fast term
# $A(t) h_s$ is zero, so every inner step computes the *same* $f(\mathrm{LN}[W h(t) + C x(t)])$:
# the network becomes exactly a layer-normalised IRNN, whatever S is. The check below gives a
# fast-weights network with η = 0 and S = 3 and an LN-IRNN the same weights and compares their
# outputs on 64 sequences:

# %% tags=["hide-input"]
difference = eta_zero_equals_ln_irnn(hidden=HIDDEN, seed=seed, inner_steps=3)
print(f"max |logits(fast weights, η = 0, S = 3) − logits(LN-IRNN)| = {difference:.2e}")

# %% [markdown]
# So "the inner loop adds depth" and "the memory helps" cannot be separated by switching the
# memory off *and* keeping an inner loop that does something: with η = 0 there is no inner loop
# left. The η = 0 ablation of chapter 4 is therefore a clean comparison of the full model with
# an LN-IRNN initialised like it.
#
# ## Summary
#
# * The fast weights are a decayed sum of outer products of past hidden states (Eq. 1, 3),
#   rebuilt from zero for every sequence; λ sets how long a write lasts, η how loud the memory is.
# * Multiplying them by the current state is attention to the past states, weighted by
#   similarity and recency (Eq. 4); the explicit and efficient forms agree to rounding error in
#   outputs and gradients (table above), and Eq. 4 is cheaper whenever T < H.
# * The inner loop (S steps of Eq. 2) lets the memory pull the state towards stored patterns; with
#   η = 0 it does nothing at all, which makes η = 0 the clean "memory off" control.
