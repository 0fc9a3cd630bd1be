# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Memories in weights, not in activity
#
# Ordinary recurrent networks have two kinds of memory. The hidden activities $h(t)$ change at
# every step and hold what is happening *now*; the weights change slowly, by gradient descent,
# and hold what was learned over the whole training set. {cite:t}`ba2016fastweights` argue
# that there is room, and a use, for a third kind in between: **fast weights** that change
# quickly during a sequence and decay just as quickly, holding a temporary memory of the
# recent past. The idea is old {cite:p}`hinton1987fastweights,schmidhuber1992fastweights`;
# its appeal is partly physiological: synapses change on many time scales, from milliseconds
# to months {cite:p}`zucker2002shortterm`, and short-term synaptic facilitation has been
# proposed as a substrate for working memory that needs no persistent firing
# {cite:p}`mongillo2008synaptic`.
#
# This chapter shows, with no neural network at all, the mechanism the paper relies on: a
# memory held by **associative weights** rather than by stored copies of activity. A layer of
# $D$ units can hold one activity pattern at a time, but a $D \times D$ matrix of weights can
# hold many superimposed patterns, and return any of them when cued with part of it
# {cite:p}`hebb1949,kohonen1972,hopfield1982`.
#
# **What runs here.** Everything below is a few matrix products on the CPU: the `smoke`
# profile takes well under a second, `quick` (the default) about a second, `paper` a few
# seconds. The paper has no such experiment, so `paper` only means "the largest sizes".
# All logic is in `fwbook.chapters.ch01_memory`; this notebook only calls it.

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
import torch

from fwbook.chapters import ch01_memory as memory

torch.set_num_threads(1)  # tiny problems; leave the other cores alone
settings = memory.chapter_settings(profile)
print(f"profile {profile!r}, seed {seed}, CPU only (device {device!r} unused)")
print(f"D = {settings.dim} units, {settings.trials} memories per point, "
      f"{settings.cue_noise:.0%} of cue units flipped")

# %% [markdown]
# ## Writing: one outer product per memory
#
# Take patterns $p \in \{-1, +1\}^D$. Writing a pattern adds its outer product to the weights
# and lets the old contents fade by a factor $\lambda$ — this is the paper's fast-weight update
# with the hidden state $h$ replaced by the pattern $p$:
#
# $$
# M(t) = \lambda\, M(t-1) + \eta\, p(t)\, p(t)^\top \qquad \text{(Eq. 1)}
# $$
#
# Unrolled from $M(0) = 0$ the matrix is a decayed sum over everything written so far,
#
# $$
# M(t) = \eta \sum_{\tau=1}^{t} \lambda^{t-\tau}\, p(\tau)\, p(\tau)^\top \qquad \text{(Eq. 3)}
# $$
#
# We use $\eta = 1/D$, so a freshly written pattern is returned with gain one. {numref}`fig-pattern-completion` writes five $10 \times 10$ random patterns into one $100 \times 100$ matrix, then cues each
# with a corrupted copy and cleans up the answer with the sign of $M c$:

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Pattern completion: five random $10 \\times 10$ patterns written into one $100 \\times 100$ matrix by Eq. 1, each recalled from a corrupted cue with one sign step.", "name": "fig-pattern-completion"}, "image": {"alt": "Three rows of five 10 by 10 black-and-white pixel patterns: the stored patterns, the noisy cues with some pixels flipped, and the patterns recalled as the sign of M c, each labelled with how many of its 100 units are wrong; beside them, a heatmap of the 100 by 100 weight matrix M."}}
memory.plot_pattern_completion(dim_side=10, count=5, decay=1.0, cue_noise=settings.cue_noise,
                               seed=seed)

# %% [markdown]
# No unit of any layer holds the five patterns: they exist only as a pattern of weights, and
# a cue *reconstructs* the matching one. One synchronous sign step is usually enough to repair
# the flipped units, though not always: an unlucky cue can leave some units wrong.
#
# ## Reading is attention
#
# Multiplying Eq. 3 by a cue $c$ gives the read-out without ever forming the matrix:
#
# $$
# M(t)\, c = \eta \sum_{\tau=1}^{t} \lambda^{t-\tau}\, p(\tau)\, \big[p(\tau)^\top c\big]
# \qquad \text{(Eq. 4)}
# $$
#
# a sum of the stored patterns weighted by their similarity to the cue and by their recency.
# This is the sense in which fast weights "attend to the recent past", and the identity that
# links them to linear attention {cite:p}`schlag2021linear` (chapter 7). Both routes give the
# same numbers:

# %%
difference = memory.check_attention_form(seed=seed)
print(f"largest |M c (Eq. 1 writes) - Eq. 4 attention| = {difference:.1e}")

# %% [markdown]
# ## How much fits: recall against load
#
# Every stored pattern adds crosstalk to the recall of every other. With $\lambda = 1$ the
# crosstalk on a unit is close to Gaussian with variance $(P-1)/D$ for $P$ stored patterns, and
# the diagonal of $M$ (each $p p^\top$ has ones on it) pulls the answer toward the cue. In {numref}`fig-recall-load` the dashed line is that prediction (`predicted_bits_correct`), the dots are measured:

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Recall against load ($\\lambda = 1$): the fraction of units recalled correctly as more patterns are stored; dots measured, dashed line the Gaussian crosstalk prediction.", "name": "fig-recall-load"}, "image": {"alt": "Chart of the fraction of units recalled correctly against the number of stored patterns, measured values as dots beside a dashed predicted curve."}}
load = memory.recall_vs_load(settings.dim, settings.loads, settings.trials,
                             settings.cue_noise, seed=seed)
memory.plot_recall_vs_load(load, settings.dim)

# %% tags=["hide-input"]
load.round(3)

# %% [markdown]
# Individual units degrade gracefully, but *perfect* recall of a whole pattern is lost once
# $P$ is a small fraction of $D$ (the `perfect` column of the table).
# A $D \times D$ matrix can hold several patterns where activity holds one, but not $D$ of them
# (the classical capacity of an iterated Hopfield network is about $0.14\,D$
# {cite:p}`amit1985storing`). This is one reason the fast memory must forget.
#
# ## What is remembered: recall against age
#
# Now write a stream of patterns one after another and ask, after the last one, how well each
# can still be recalled. The decay $\lambda$ trades the far past for the recent past: old
# memories shrink as $\lambda^{\text{age}}$ and stop drowning the new ones in crosstalk.
#
# {numref}`fig-recall-age` shows recall against the age of each memory.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Recall against age: the fraction of units of each pattern recalled correctly, by how many writes ago it was stored, for several decays $\\lambda$.", "name": "fig-recall-age"}, "image": {"alt": "Line chart with one line per decay lambda: fraction of units recalled correctly against the age of the pattern, from the newest write to the oldest; chance level is one half."}}
age = memory.recall_vs_age(settings.dim, settings.age_patterns, settings.decays,
                           settings.trials, settings.cue_noise, seed=seed)
memory.plot_recall_vs_age(age, settings.dim)

# %% tags=["hide-input"]
recent = age[age["age"] == 0].set_index("decay")["bits_correct"]
old = age[age["age"] == age["age"].max()].set_index("decay")["bits_correct"]
print("fraction of units recalled correctly, newest vs oldest pattern, and the last age at")
print("which at least 95% of units are still recalled:")
for decay in sorted(recent.index, reverse=True):
    part = age[age["decay"] == decay]
    good = part[part["bits_correct"] >= 0.95]["age"]
    reach = f"ages 0-{good.max()}" if len(good) else "none"
    print(f"  λ = {decay:<5g} newest {recent[decay]:.3f}   oldest {old[decay]:.3f}   "
          f"≥ 95%: {reach}")

# %% [markdown]
# Without decay ($\lambda = 1$) every pattern is recalled equally — equally badly once many are
# stored. With decay, the last few patterns are recalled almost perfectly and old ones fade to
# chance (0.5, slightly above because of the cue's own contribution through the diagonal).
# The printout gives, for each $\lambda$, how many of the most recent writes stay in reach at
# this size; compare it with the eleven symbols of a sequence such as `c9k8j3f1??c` and the
# paper's default $\lambda = 0.95$ (in the network the "patterns" are hidden states, which are
# neither random nor of this size, so this is an analogy, not a prediction).
#
# ## Summary
#
# - A matrix of weights written by outer products (Eq. 1) holds many superimposed patterns;
#   a cue recovers the matching one. The memory is in the weights, not in any unit's activity.
# - Reading the matrix is the same as attending to the stored patterns by similarity and
#   recency (Eq. 4), without storing copies of them.
# - Capacity is limited by crosstalk; the decay $\lambda$ spends it on the recent past.
#
# Chapter 2 puts this memory inside a recurrent network: the stored patterns become the
# network's own hidden states $h(\tau)$, and the cue becomes the state being computed.
