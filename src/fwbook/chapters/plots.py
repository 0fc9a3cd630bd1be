"""The house plotting style and the figures the book shows.

Every figure in the book is drawn by a function in ``fwbook`` that a test also calls; this
module holds the shared theme and the figures about training runs.
"""

from __future__ import annotations


import seaborn as sns

# one colour per model, used by every figure so a model is recognisable across chapters
MODEL_COLORS = {
    "fast_weights": "#c0392b",
    "irnn": "#7f8c8d",
    "ln_irnn": "#2c3e50",
    "lstm": "#2980b9",
    "alstm": "#8e44ad",
}
MODEL_LABELS = {
    "fast_weights": "Fast weights",
    "irnn": "IRNN",
    "ln_irnn": "LN-IRNN",
    "lstm": "LSTM",
    "alstm": "A-LSTM",
}


def use_house_style() -> None:
    """Apply the book's seaborn theme (white grid, colour-blind-safe palette, readable sizes)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "bold",
                      "figure.autolayout": True})
