"""Chapter 03 (training): learning curves from run records, and a trained model questioned.

* :func:`plot_learning_curves`: validation error and loss against updates, from run records;
* :func:`predictions_table`: what a trained model answers to sequences a reader types;
* :func:`plot_predictions`: the same as bars of probability over the ten digits;
* :func:`most_attended`: where the memory looks when the query key is read (Eq. 4).
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from fwbook.chapters.plots import MODEL_COLORS, MODEL_LABELS, use_house_style
from fwbook.core.data import DIGITS, SYMBOL_INDEX, encode, parse_query
from fwbook.core.models import FastWeightsRNN, RecurrentClassifier, variant

SYMBOL_INDEX_INV = {index: symbol for symbol, index in SYMBOL_INDEX.items()}


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


def answer_probabilities(model: RecurrentClassifier, texts: Sequence[str] | str
                         ) -> list[tuple[str, str, torch.Tensor]]:
    """The model's probabilities over the vocabulary for each reader-typed query.

    Every text is checked by :func:`fwbook.core.data.parse_query` (a clear ValueError names the
    bad one). Sequences may have any number K of pairs the model's vocabulary allows, but a
    model trained at K = 4 has only seen 11-token sequences.

    Returns:
        ``[(text, answer, probabilities (V,) on the CPU)]`` in the order of ``texts``.
    """
    if isinstance(texts, str):
        texts = [texts]
    parsed = []
    for text in texts:
        try:
            parsed.append((text, *parse_query(text)))
        except ValueError as error:
            raise ValueError(f"sequence {text!r}: {error}") from None
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [(text, answer,
                     torch.softmax(model(tokens.unsqueeze(0).to(parameter.device))[0].float(),
                                   dim=0).cpu())  # (V,)
                    for text, tokens, answer in parsed]
    finally:
        model.train(was_training)


def predictions_table(model: RecurrentClassifier, texts: Sequence[str] | str
                      ) -> "pandas.DataFrame":  # noqa: F821
    """What ``model`` answers to reader-typed sequences such as ``"c9k8j3f1??c"``.

    Returns:
        a DataFrame with columns sequence, answer, prediction, p(prediction), p(answer),
        correct, and the runner-up guess (see :func:`answer_probabilities` for the checks).
    """
    import pandas as pd

    rows = []
    for text, answer, probabilities in answer_probabilities(model, texts):
        top = torch.topk(probabilities, 2)
        best, second = (SYMBOL_INDEX_INV[int(i)] for i in top.indices)
        rows.append({"sequence": text, "answer": answer, "prediction": best,
                     "p(prediction)": round(float(top.values[0]), 4),
                     "p(answer)": round(float(probabilities[SYMBOL_INDEX[answer]]), 4),
                     "correct": best == answer,
                     "runner-up": f"{second} ({float(top.values[1]):.3f})"})
    return pd.DataFrame(rows)


def plot_predictions(model: RecurrentClassifier, texts: Sequence[str] | str) -> Figure:
    """For each typed sequence, the model's probability of each digit; the answer in colour."""
    use_house_style()
    answered = answer_probabilities(model, texts)
    columns = min(len(answered), 5)
    rows = -(-len(answered) // columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, sharey=True,
                             figsize=(3.2 * columns, 2.5 * rows))
    digit_index = [SYMBOL_INDEX[d] for d in DIGITS]
    color = MODEL_COLORS.get(getattr(model, "config", None) and model.config.model, "C0")
    for ax, (text, answer, probabilities) in zip(axes.flat, answered):
        bars = probabilities.numpy()[digit_index]
        ax.bar(list(DIGITS), bars, color=["0.7" if d != answer else color for d in DIGITS])
        other = 1.0 - float(bars.sum())  # probability put on letters and '?'
        ax.set_title(f"{text} → {answer}", fontsize=10, family="monospace")
        ax.set_ylim(0, 1)
        if other > 0.01:
            ax.text(0.98, 0.95, f"non-digits: {other:.2f}", ha="right", va="top",
                    transform=ax.transAxes, fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("probability")
    for ax in list(axes.flat)[len(answered):]:
        ax.set_visible(False)
    plt.close(fig)
    return fig


def random_queries(count: int, seed: int = 0, num_pairs: int = 4) -> list[str]:
    """``count`` fresh sequences as strings without the answer (for the prediction table)."""
    from fwbook.core.data import associative_retrieval

    generator = torch.Generator().manual_seed(10_000 + seed)
    split = associative_retrieval(count, num_pairs, generator)
    return [text.split("->")[0] for text in split.strings()]


def most_attended(model: FastWeightsRNN, text: str = "c9k8j3f1??c", inner_step: int = -1
                  ) -> tuple[int, str, float]:
    """Where the memory looks at the last token: the past state with the largest Eq. 4 weight.

    Returns:
        (τ, 1-based position of that state; the token read to make it; its weight).
    """
    tokens = encode(text).unsqueeze(0)  # (1, T)
    efficient = variant(model, memory="efficient")  # the form that records the Eq. 4 weights
    with torch.no_grad():
        weights = efficient.trace(tokens).memory_weights[0, -1, inner_step]  # (T,)
    position = int(weights.argmax())
    return position + 1, text[position], float(weights[position])
