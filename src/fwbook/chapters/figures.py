"""Figures and tables of chapters 02 (the A(t) equation) and 03 (training).

Chapter 02 looks inside one fast-weights network while it reads ``c9k8j3f1??c``:

* :func:`plot_fast_weights_accumulation`: Eq. 1 step by step, from the explicit form
  (``FastWeightsCore`` with ``memory="explicit"``, reading ``state.fast_weights``): for every
  token, the decayed old memory λ A(t-1), the new outer product η h(t) h(t)ᵀ and their sum A(t);
* :func:`plot_memory_weights`: the Eq. 4 weights η λ^(t-τ) h(τ)ᵀ h_s(t+1), i.e. how much each
  step attends to each earlier hidden state, for every inner step s;
* :func:`memory_forms_agreement`: explicit A(t) against Eq. 4, outputs and gradients.

Chapter 03 trains the models and asks them questions:

* :func:`plot_learning_curves`: validation error and loss against updates, from run records;
* :func:`predictions_table`: what a trained model answers to sequences a reader types;
* :func:`plot_predictions`: the same as bars of probability over the ten digits.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from fwbook.core.data import DIGITS, LETTERS, SYMBOL_INDEX, encode, parse_query
from fwbook.core.models import FastWeightsRNN, ModelConfig, RecurrentClassifier, build_model
from fwbook.chapters.plots import MODEL_COLORS, MODEL_LABELS, use_house_style

DEFAULT_TEXT = "c9k8j3f1??c"


# ---------------------------------------------------------------- chapter 02: A(t)

def explicit_fast_weights(model: FastWeightsRNN, text: str = DEFAULT_TEXT
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``text`` one step at a time in the explicit form and record A(t).

    The model's own λ, η, S and slow weights are used; its core is copied into an explicit
    ``FastWeightsCore`` so an efficient (Eq. 4) model can be inspected too.

    Returns:
        (fast_weights (T, H, H): A(t) after reading token t, hidden_states (T, H): h(t)).
    """
    from fwbook.core.models import FastWeightsCore

    if not isinstance(model, FastWeightsRNN):
        raise TypeError(f"model must be a FastWeightsRNN, got {type(model).__name__}")
    source = model.core
    core = FastWeightsCore(source.hidden, source.decay, source.fast_lr, source.inner_steps,
                           layer_norm=not isinstance(source.norm, torch.nn.Identity),
                           memory="explicit")
    core.load_state_dict(source.state_dict())  # W and the layer norm
    tokens = encode(text)  # (T,)
    with torch.no_grad():
        drive = model.projected_input(tokens, model.input_weight, model.bias)  # (T, H)  C x(t) + b
        state = core.initial_state(1, drive)
        matrices, states = [], []
        for t in range(drive.shape[0]):
            state, _ = core.step(drive[t].unsqueeze(0), state)  # Eq. 2, then Eq. 1
            matrices.append(state.fast_weights[0].clone())  # (H, H)  A(t)
            states.append(state.h[0].clone())  # (H,)  h(t)
    return torch.stack(matrices).numpy(), torch.stack(states).numpy()


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
    decay, fast_lr = model.core.decay, model.core.fast_lr
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
                 f"(λ = {decay:g}, η = {fast_lr:g}, H = {model.core.hidden})", fontsize=11)
    plt.close(fig)
    return fig


def plot_memory_weights(model: FastWeightsRNN, text: str = DEFAULT_TEXT) -> Figure:
    """Eq. 4 as attention: the weight η λ^(t-τ) h(τ)ᵀ h_s(t+1) on each past state h(τ).

    One panel per inner step s; rows are the step being computed (the token being read),
    columns the past hidden states h(τ) (labelled by the token read to make them).
    """
    use_house_style()
    tokens = encode(text).unsqueeze(0)  # (1, T)
    efficient = _as_efficient(model)
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


def _as_efficient(model: FastWeightsRNN) -> FastWeightsRNN:
    if model.config.memory == "efficient":
        return model
    copy = build_model(ModelConfig(**{**model.config.to_dict(), "memory": "efficient"}))
    copy.load_state_dict(model.state_dict())
    return copy.eval()


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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            explicit = build_model(ModelConfig(hidden=hidden, inner_steps=steps,
                                               memory="explicit")).to(dtype)
        efficient = build_model(ModelConfig(hidden=hidden, inner_steps=steps,
                                            memory="efficient")).to(dtype)
        efficient.load_state_dict(explicit.state_dict())
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


# ---------------------------------------------------------------- chapter 03: training

def plot_learning_curves(records: Sequence[dict], title: Optional[str] = None) -> Figure:
    """Validation error (left) and validation loss (right) against updates, one line per run.

    Runs of the same model share a colour (``MODEL_COLORS``); seeds are drawn thinner.
    Hidden sizes are told apart by line style when several are present.
    """
    use_house_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9))
    sizes = sorted({record.get("hidden") for record in records})
    styles = dict(zip(sizes, ["-", "--", ":", "-."]))
    labelled = set()
    for record in sorted(records, key=lambda r: (r.get("model"), r.get("hidden"), r.get("seed"))):
        curves = record.get("curves") or {}
        if not curves.get("step"):
            continue
        model, hidden = record.get("model"), record.get("hidden")
        key = (model, hidden)
        label = None
        if key not in labelled:
            label = MODEL_LABELS.get(model, model) + (f" R={hidden}" if len(sizes) > 1 else "")
            labelled.add(key)
        style = dict(color=MODEL_COLORS.get(model, "k"), ls=styles.get(hidden, "-"), lw=1.8)
        left.plot(curves["step"], 100 * np.asarray(curves["val_error"]), label=label, **style)
        right.plot(curves["step"], curves["val_loss"], **style)
    left.set_ylabel("validation error (%)")
    left.set_ylim(0, 100)
    right.set_ylabel("validation loss (nats)")
    right.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    right.yaxis.set_major_formatter(plain)
    low, high = right.get_ylim()
    # label minor ticks only when the axis spans less than a decade (else they crowd)
    right.yaxis.set_minor_formatter(plain if high / max(low, 1e-12) < 10
                                    else matplotlib.ticker.NullFormatter())
    for ax in (left, right):
        ax.set_xlabel("updates")
    if labelled:
        left.legend(fontsize=9)
    chance = 90.0  # ten equally likely digits
    left.axhline(chance, color="0.5", ls=":", lw=1)
    left.text(0.99, chance, "chance (90%)", ha="right", va="bottom", fontsize=8, color="0.4",
              transform=left.get_yaxis_transform())
    if title:
        fig.suptitle(title, fontweight="bold")
    plt.close(fig)
    return fig


def predictions_table(model: RecurrentClassifier, texts: Sequence[str]) -> "pandas.DataFrame":  # noqa: F821
    """What ``model`` answers to reader-typed sequences such as ``"c9k8j3f1??c"``.

    Every text is checked by :func:`fwbook.core.data.parse_query` (a clear ValueError names the
    bad one). Sequences may have any number K of pairs the model's vocabulary allows, but a
    model trained at K = 4 has only seen 11-token sequences.

    Returns:
        a DataFrame with columns sequence, answer, prediction, p(prediction), p(answer),
        correct, and the runner-up guess.
    """
    import pandas as pd

    if isinstance(texts, str):
        texts = [texts]
    rows = []
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        for text in texts:
            try:
                tokens, answer = parse_query(text)
            except ValueError as error:
                raise ValueError(f"sequence {text!r}: {error}") from None
            with torch.no_grad():
                logits = model(tokens.unsqueeze(0).to(parameter.device))[0]  # (V,)
            probabilities = torch.softmax(logits.float(), dim=0).cpu()  # (V,)
            top = torch.topk(probabilities, 2)
            best, second = (SYMBOL_INDEX_INV[int(i)] for i in top.indices)
            rows.append({"sequence": text, "answer": answer, "prediction": best,
                         "p(prediction)": round(float(top.values[0]), 4),
                         "p(answer)": round(float(probabilities[SYMBOL_INDEX[answer]]), 4),
                         "correct": best == answer,
                         "runner-up": f"{second} ({float(top.values[1]):.3f})"})
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


SYMBOL_INDEX_INV = {index: symbol for symbol, index in SYMBOL_INDEX.items()}


def plot_predictions(model: RecurrentClassifier, texts: Sequence[str]) -> Figure:
    """For each typed sequence, the model's probability of each digit; the answer in colour."""
    use_house_style()
    if isinstance(texts, str):
        texts = [texts]
    parsed = []
    for text in texts:
        try:
            parsed.append(parse_query(text))
        except ValueError as error:
            raise ValueError(f"sequence {text!r}: {error}") from None
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probabilities = [torch.softmax(model(tokens.unsqueeze(0).to(parameter.device))[0].float(),
                                       0).cpu().numpy() for tokens, _ in parsed]
    model.train(was_training)
    columns = min(len(texts), 5)
    rows = -(-len(texts) // columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, sharey=True,
                             figsize=(3.2 * columns, 2.5 * rows))
    digit_index = [SYMBOL_INDEX[d] for d in DIGITS]
    color = MODEL_COLORS.get(getattr(model, "config", None) and model.config.model, "C0")
    for ax, text, (_, answer), p in zip(axes.flat, texts, parsed, probabilities):
        bars = p[digit_index]
        ax.bar(list(DIGITS), bars, color=["0.7" if d != answer else color for d in DIGITS])
        other = 1.0 - float(bars.sum())  # probability put on letters and '?'
        ax.set_title(f"{text} → {answer}", fontsize=10, family="monospace")
        ax.set_ylim(0, 1)
        if other > 0.01:
            ax.text(0.98, 0.95, f"non-digits: {other:.2f}", ha="right", va="top",
                    transform=ax.transAxes, fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("probability")
    for ax in list(axes.flat)[len(texts):]:
        ax.set_visible(False)
    plt.close(fig)
    return fig


def random_queries(count: int, seed: int = 0, num_pairs: int = 4) -> list[str]:
    """``count`` fresh sequences as strings without the answer (for the prediction table)."""
    from fwbook.core.data import associative_retrieval

    generator = torch.Generator().manual_seed(10_000 + seed)
    split = associative_retrieval(count, num_pairs, generator)
    return [text.split("->")[0] for text in split.strings()]


__all__ = [
    "explicit_fast_weights", "plot_fast_weights_accumulation", "plot_memory_weights",
    "memory_forms_agreement", "inner_loop_trajectory", "plot_learning_curves",
    "predictions_table", "plot_predictions", "random_queries", "LETTERS",
]


def load_table1_records(profile: str = "paper", directory=None, seeds: Sequence[int] = range(10),
                        **match) -> list[dict]:
    """Committed Table 1 records (``results/table1/``) made with exactly the profile's recipe.

    A record is used only when its ``config_hash`` equals that of a configuration of
    ``fwbook.experiments.grids.table1_configs(profile, seeds, paper_recipe=False)``: runs with the
    paper's own lr of 1e-4 (``paper_recipe_*``) or any other configuration are left out.

    Args:
        profile: the profile whose recipe the records must match.
        directory: default ``results/table1`` in the repository.
        seeds: the seeds to accept.
        match: further top-level fields to select on (``model="ln_irnn"``, ``hidden=20``).
    Returns:
        the matching records (an empty list when there are none or the folder is missing).
    """
    from pathlib import Path

    from fwbook.experiments.grids import table1_configs
    from fwbook.core.records import REPO_ROOT, config_hash, load_records

    directory = Path(directory) if directory is not None else REPO_ROOT / "results" / "table1"
    if not directory.exists():
        return []
    wanted = {config_hash(config.to_dict())
              for config in table1_configs(profile, seeds=tuple(seeds),
                                           paper_recipe=False).values()}
    return [record for record in load_records(directory, **match)
            if record.get("config_hash") in wanted]


def most_attended(model: FastWeightsRNN, text: str = DEFAULT_TEXT, inner_step: int = -1
                  ) -> tuple[int, str, float]:
    """Where the memory looks at the last token: the past state with the largest Eq. 4 weight.

    Returns:
        (τ, 1-based position of that state; the token read to make it; its weight).
    """
    tokens = encode(text).unsqueeze(0)  # (1, T)
    with torch.no_grad():
        weights = _as_efficient(model).trace(tokens).memory_weights[0, -1, inner_step]  # (T,)
    position = int(weights.argmax())
    return position + 1, text[position], float(weights[position])
