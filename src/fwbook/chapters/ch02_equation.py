"""Chapter 02 (the A(t) equation): one fast-weights network, looked inside while it reads.

* :func:`plot_fast_weights_accumulation`: Eq. 1 step by step, from the explicit form
  (``memory="explicit"``, reading ``state.fast_weights``): for every token, the decayed old
  memory λ A(t-1), the new outer product η h(t) h(t)ᵀ and their sum A(t);
* :func:`plot_memory_weights`: the Eq. 4 weights η λ^(t-τ) h(τ)ᵀ h_s(t+1), i.e. how much each
  step attends to each earlier hidden state, for every inner step s;
* :func:`memory_forms_agreement`: explicit A(t) against Eq. 4, outputs and gradients;
* :func:`inner_loop_trajectory`: how far each inner step moves the hidden state.

The λ/η explorers of the chapter are in :mod:`fwbook.chapters.widgets` (live) and
:mod:`fwbook.chapters.explorer` (in the browser).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from fwbook.chapters.plots import use_house_style
from fwbook.chapters.widgets import fast_weights_history
from fwbook.core.data import encode
from fwbook.core.models import FastWeightsRNN, ModelConfig, build_model, variant

DEFAULT_TEXT = "c9k8j3f1??c"


def explicit_fast_weights(model: FastWeightsRNN, text: str = DEFAULT_TEXT
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``text`` one step at a time in the explicit form and record A(t).

    The model's own λ, η, S and slow weights are used (either memory form may be passed).

    Returns:
        (fast_weights (T, H, H): A(t) after reading token t, hidden_states (T, H): h(t)).
    """
    if not isinstance(model, FastWeightsRNN):
        raise TypeError(f"model must be a FastWeightsRNN, got {type(model).__name__}")
    history = fast_weights_history(text, model.config.decay, model.config.fast_lr, model)
    return history.fast_weights, history.hidden_states


def _heatmap(ax, matrix: np.ndarray, limit: float, cmap: str = "magma_r"):
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return image


def plot_fast_weights_accumulation(model: FastWeightsRNN, text: str = DEFAULT_TEXT,
                                   steps: Optional[Sequence[int]] = None) -> Figure:
    """Eq. 1 made visible: λ A(t-1) + η h(t) h(t)ᵀ = A(t) for each step t of ``text``.

    Args:
        model: a fast-weights RNN (trained or not).
        text: the sequence read.
        steps: 1-based steps to show (default every step).
    Returns:
        a Figure with three rows (old memory decayed, new outer product, A(t)) and one column
        per step, all on one colour scale (every entry is >= 0 because h = ReLU(...) >= 0).
    """
    use_house_style()
    fast_weights, hidden = explicit_fast_weights(model, text)  # (T, H, H), (T, H)
    decay, fast_lr = model.config.decay, model.config.fast_lr
    steps = list(range(1, len(text) + 1)) if steps is None else [int(s) for s in steps]
    for step in steps:
        if not 1 <= step <= len(text):
            raise ValueError(f"steps must lie in 1..{len(text)}, got {step}")
    rows = []
    for step in steps:
        previous = fast_weights[step - 2] if step > 1 else np.zeros_like(fast_weights[0])
        h = hidden[step - 1]  # (H,)
        rows.append((decay * previous, fast_lr * np.outer(h, h), fast_weights[step - 1]))
    limit = max(float(part.max()) for row in rows for part in row) or 1.0
    fig, axes = plt.subplots(3, len(steps), squeeze=False,
                             figsize=(1.25 * len(steps) + 1.4, 4.4), layout="constrained")
    names = ("λ A(t−1)", "+ η h(t) h(t)ᵀ", "= A(t)")
    image = None
    for column, (step, parts) in enumerate(zip(steps, rows)):
        for row, part in enumerate(parts):
            image = _heatmap(axes[row, column], part, limit)
        axes[0, column].set_title(f"t={step}  '{text[step - 1]}'", fontsize=9)
    for row, name in enumerate(names):
        axes[row, 0].set_ylabel(name, fontsize=10)
    fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="entry of the H×H matrix")
    fig.suptitle(f"(Eq. 1) A(t) = λ A(t−1) + η h(t) h(t)ᵀ while reading {text!r} "
                 f"(λ = {decay:g}, η = {fast_lr:g}, H = {model.config.hidden})", fontsize=11)
    plt.close(fig)
    return fig


def plot_memory_weights(model: FastWeightsRNN, text: str = DEFAULT_TEXT) -> Figure:
    """Eq. 4 as attention: the weight η λ^(t-τ) h(τ)ᵀ h_s(t+1) on each past state h(τ).

    One panel per inner step s; rows are the step being computed (the token being read),
    columns the past hidden states h(τ) (labelled by the token read to make them).
    """
    use_house_style()
    tokens = encode(text).unsqueeze(0)  # (1, T)
    efficient = variant(model, memory="efficient")  # the form that records the Eq. 4 weights
    with torch.no_grad():
        weights = efficient.trace(tokens).memory_weights[0].numpy()  # (T, S, T)
    steps, inner, _ = weights.shape
    limit = float(np.abs(weights).max()) or 1.0
    fig, axes = plt.subplots(1, inner, squeeze=False, figsize=(3.9 * inner + 0.8, 3.9),
                             layout="constrained")
    image = None
    for s in range(inner):
        ax = axes[0, s]
        shown = np.ma.masked_where(np.tril(np.ones((steps, steps)), k=-1) == 0, weights[:, s])
        image = ax.imshow(shown, cmap="magma_r", vmin=0, vmax=limit, interpolation="nearest")
        ax.set_xticks(range(steps), list(text))
        ax.set_yticks(range(steps), list(text))
        ax.set_xlabel("past state h(τ), made by reading …")
        if s == 0:
            ax.set_ylabel("now reading x(t)")
        ax.set_title(f"inner step s = {s + 1} of {inner}", fontsize=10)
        ax.grid(False)
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="η λ^(t−τ) h(τ)ᵀ h_s(t+1)")
    fig.suptitle("(Eq. 4) How much each step attends to each earlier hidden state", fontsize=11)
    plt.close(fig)
    return fig


def memory_forms_agreement(hidden: int = 20, inner_steps: Iterable[int] = (1, 2, 3),
                           batch: int = 64, seed: int = 0, dtype: torch.dtype = torch.float64
                           ) -> "pandas.DataFrame":  # noqa: F821
    """Explicit A(t) (Eq. 1-2) against the efficient form (Eq. 4) on the same weights.

    For each S, builds the two models with identical parameters, runs a batch of random
    associative-retrieval sequences, backpropagates the same loss through both and reports
    the largest absolute differences.

    Returns:
        a DataFrame with columns S, max |Δ logits|, max |Δ gradient| and the largest logit
        (to put the differences in scale).
    """
    import pandas as pd

    from fwbook.core.data import associative_retrieval

    rows = []
    generator = torch.Generator().manual_seed(seed)
    data = associative_retrieval(batch, generator=generator)  # inputs (B, 11)
    for steps in inner_steps:
        explicit = build_model(ModelConfig(hidden=hidden, inner_steps=steps, memory="explicit"),
                               seed=seed).to(dtype)
        efficient = variant(explicit, memory="efficient")  # the same parameters, Eq. 4
        outputs, gradients = [], []
        for model in (explicit, efficient):
            logits = model(data.inputs)  # (B, V)
            loss = torch.nn.functional.cross_entropy(logits, data.targets)
            grads = torch.autograd.grad(loss, list(model.parameters()))
            outputs.append(logits.detach())
            gradients.append(torch.cat([g.flatten() for g in grads]))
        rows.append({"S": steps,
                     "max |Δ logits|": float((outputs[0] - outputs[1]).abs().max()),
                     "max |Δ gradient|": float((gradients[0] - gradients[1]).abs().max()),
                     "max |logit|": float(outputs[0].abs().max()),
                     "max |gradient|": float(gradients[0].abs().max()),
                     "dtype": str(dtype).replace("torch.", "")})
    return pd.DataFrame(rows)


def inner_loop_trajectory(model: FastWeightsRNN, text: str = DEFAULT_TEXT) -> "pandas.DataFrame":  # noqa: F821
    """How far each inner step moves the hidden state, at every token.

    Returns a DataFrame with one row per token and one column per inner step s = 1..S giving
    ‖h_s(t+1) − h_{s−1}(t+1)‖ (h_0 is the preliminary ReLU(W h(t) + C x(t))).
    """
    import pandas as pd

    with torch.no_grad():
        inner = model.trace(encode(text)[None]).inner_states[0]  # (T, S+1, H)  h_0 .. h_S
    rows = []
    for t, states in enumerate(inner):
        row = {"t": t + 1, "token": text[t]}
        for s in range(1, states.shape[0]):
            row[f"‖h_{s} − h_{s - 1}‖"] = float((states[s] - states[s - 1]).norm())
        rows.append(row)
    return pd.DataFrame(rows)
