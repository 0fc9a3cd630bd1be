"""Explorers of the fast-weight matrix A(t), live and static.

``fast_weights_explorer`` returns an ipywidgets explorer (sliders for λ, η and the step t) for
readers who run a notebook with a live kernel. The rendered book has no kernel, so each
explorer has a static counterpart drawn with matplotlib: ``fast_weights_small_multiples`` (a
grid over λ and η). The book shows the static figure and an in-browser explorer
(:mod:`fwbook.chapters.explorer`); the widget's plain-text fallback tells readers how to get
the live one.

The matrices come from the model's core in its explicit form (``memory="explicit"``)::

    (Eq. 1)  A(t) = λ A(t-1) + η h(t) h(t)ᵀ

An untrained model (seeded) is enough to see the mechanics; pass a trained ``FastWeightsRNN``
to see what learning does to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from fwbook.chapters.explorer import bundle_with_fallback
from fwbook.chapters.plots import use_house_style
from fwbook.core.data import encode
from fwbook.core.models import FastWeightsRNN, ModelConfig, build_model, variant

DEFAULT_TEXT = "c9k8j3f1??c"


@dataclass
class FastWeightsHistory:
    """What the fast weights held while a text was read.

    Attributes:
        text: the text, one token per step.
        fast_weights: (T, H, H) A(t) after reading token t (t = 1..T), i.e. built from h(1..t).
        hidden_states: (T, H) h(t).
        decay: λ.
        fast_lr: η.
    """

    text: str
    fast_weights: np.ndarray
    hidden_states: np.ndarray
    decay: float
    fast_lr: float


def untrained_model(hidden: int = 20, seed: int = 0) -> FastWeightsRNN:
    """A freshly initialised fast-weights RNN, the same for the same ``seed`` (global RNG untouched)."""
    return build_model(ModelConfig(model="fast_weights", hidden=hidden, memory="explicit"),
                       seed=seed).eval()


def fast_weights_history(text: str = DEFAULT_TEXT, decay: float = 0.95, fast_lr: float = 0.5,
                         model: Optional[FastWeightsRNN] = None, hidden: int = 20,
                         seed: int = 0) -> FastWeightsHistory:
    """Run ``model`` over ``text`` with the fast weights set to (λ, η) and record A(t).

    The slow weights (C, W, the layer norm, S) are the model's; λ and η are the arguments,
    so a trained model can be probed at other decays and fast learning rates.

    Args:
        text: symbols from a-z, 0-9 and ``?``.
        decay: λ in [0, 1].
        fast_lr: η >= 0.
        model: a :class:`FastWeightsRNN`; default an untrained one of ``hidden`` units.
        hidden: H of the default model.
        seed: initialisation seed of the default model.
    Returns:
        a :class:`FastWeightsHistory` with A(t) of shape (T, H, H).
    """
    if model is None:
        model = untrained_model(hidden, seed)
    if not isinstance(model, FastWeightsRNN):
        raise TypeError(f"model must be a FastWeightsRNN, got {type(model).__name__}")
    tokens = encode(text)  # (T,)
    # the model's slow weights (C, W, the layer norm, S) under this λ and η, stepped explicitly
    # (ModelConfig rejects a λ outside [0, 1] or a negative η)
    probe = variant(model, memory="explicit", decay=float(decay), fast_lr=float(fast_lr))
    core, parameter = probe.core, probe.input_weight
    with torch.no_grad():
        drive = probe.projected_input(tokens.to(parameter.device), probe.input_weight,
                                       probe.bias)  # (T, H)  C x(t) + b
        state = core.initial_state(1, drive)
        matrices, states = [], []
        for t in range(drive.shape[0]):
            # (Eq. 2) then (Eq. 1) A(t+1) = λ A(t) + η h(t+1) h(t+1)ᵀ, inside core.step
            state, _ = core.step(drive[t].unsqueeze(0), state)
            matrices.append(state.fast_weights[0].cpu())  # (H, H)
            states.append(state.h[0].cpu())  # (H,)
    return FastWeightsHistory(text, torch.stack(matrices).float().numpy(),
                              torch.stack(states).float().numpy(), float(decay), float(fast_lr))


def _draw_matrix(ax, matrix: np.ndarray, limit: float, title: str, nonnegative: bool = False):
    # with f = ReLU every h(t) >= 0, so A(t) >= 0: a sequential scale from 0 reads better
    if nonnegative:
        image = ax.imshow(matrix, cmap="magma_r", vmin=0, vmax=limit, interpolation="nearest")
    else:
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit,
                          interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return image


def fast_weights_small_multiples(decays: Sequence[float] = (0.5, 0.8, 0.95, 1.0),
                                 fast_lrs: Sequence[float] = (0.1, 0.5, 1.0),
                                 text: str = DEFAULT_TEXT,
                                 model: Optional[FastWeightsRNN] = None, step: Optional[int] = None,
                                 hidden: int = 20, seed: int = 0) -> Figure:
    """A(t) on a grid of λ (columns) and η (rows): the static counterpart of the explorer.

    Args:
        decays: λ values, one column each.
        fast_lrs: η values, one row each.
        text: the text read.
        model: a :class:`FastWeightsRNN`; default an untrained one (``hidden``, ``seed``).
        step: t, 1-based; default the last token.
    Returns:
        a matplotlib Figure with len(fast_lrs) x len(decays) heatmaps on one colour scale.
    """
    use_house_style()
    if model is None:
        model = untrained_model(hidden, seed)
    step = len(text) if step is None else int(step)
    if not 1 <= step <= len(text):
        raise ValueError(f"step must lie in 1..{len(text)} for text {text!r}, got {step!r}")
    grid = [[fast_weights_history(text, decay, fast_lr, model).fast_weights[step - 1]
             for decay in decays] for fast_lr in fast_lrs]
    limit = max(float(np.abs(matrix).max()) for row in grid for matrix in row) or 1.0
    nonnegative = all(float(matrix.min()) >= 0 for row in grid for matrix in row)
    fig, axes = plt.subplots(len(fast_lrs), len(decays), squeeze=False,
                             figsize=(2.1 * len(decays) + 1.2, 2.1 * len(fast_lrs) + 0.8),
                             layout="constrained")
    image = None
    for row, fast_lr in enumerate(fast_lrs):
        for column, decay in enumerate(decays):
            matrix = grid[row][column]
            image = _draw_matrix(axes[row, column], matrix, limit,
                                 f"λ = {decay:g}, η = {fast_lr:g}\n‖A‖ = {np.linalg.norm(matrix):.2f}",
                                 nonnegative)
    fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02, label="entry of A(t)")
    fig.suptitle(f"A(t) after reading {text[:step]!r} (t = {step}); one colour scale",
                 fontsize=11)
    plt.close(fig)
    return fig


def _explorer_figure(history: FastWeightsHistory, step: int) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6),
                                      gridspec_kw={"width_ratios": [1, 1.4]},
                                      layout="constrained")
    matrix = history.fast_weights[step - 1]
    limit = float(np.abs(history.fast_weights).max()) or 1.0
    image = _draw_matrix(left, matrix, limit,
                         f"A(t), t = {step}, after {history.text[:step]!r}",
                         bool(history.fast_weights.min() >= 0))
    fig.colorbar(image, ax=left, fraction=0.046, pad=0.04)
    norms = np.linalg.norm(history.fast_weights, axis=(1, 2))  # (T,)
    positions = np.arange(1, len(norms) + 1)
    right.bar(positions, norms, color=["C3" if t == step else "0.65" for t in positions])
    right.set_xticks(positions, list(history.text))
    right.set_xlabel("token read at step t")
    right.set_ylabel("‖A(t)‖ (Frobenius)")
    right.set_title(f"λ = {history.decay:g}, η = {history.fast_lr:g}", fontsize=10)
    plt.close(fig)
    return fig


def fast_weights_explorer(model: Optional[FastWeightsRNN] = None, text: str = DEFAULT_TEXT,
                          decay: float = 0.95, fast_lr: float = 0.5, hidden: int = 20,
                          seed: int = 0):
    """An ipywidgets explorer of A(t): sliders for λ, η and t, a box for the text.

    Needs a live Jupyter kernel. In the rendered book (no kernel) its plain-text form says
    so; show :func:`fast_weights_small_multiples` next to it.

    Args:
        model: a :class:`FastWeightsRNN`; default an untrained one (``hidden``, ``seed``).
        text: the initial text.
        decay, fast_lr: initial λ and η.
    Returns:
        an ``ipywidgets.VBox`` subclass with attributes ``decay_slider``, ``fast_lr_slider``,
        ``step_slider``, ``text_box``, ``output`` and ``update()`` (redraw now).
    """
    import ipywidgets as widgets
    from IPython.display import display

    use_house_style()
    model = untrained_model(hidden, seed) if model is None else model
    encode(text)  # fail early, with the vocabulary in the message

    class FastWeightsExplorer(widgets.VBox):
        def _repr_mimebundle_(self, **kwargs):
            return bundle_with_fallback(  # browser_html: fwbook.chapters.explorer.book_fallback
                super()._repr_mimebundle_(**kwargs), getattr(self, "browser_html", None),
                "[Interactive explorer of A(t): sliders for λ, η and t. It needs a live "
                "Jupyter kernel; run this notebook to use it. The static figures on this "
                "page show the same quantities.]")

    decay_slider = widgets.FloatSlider(value=decay, min=0.0, max=1.0, step=0.01,
                                       description="λ (decay)", continuous_update=False)
    fast_lr_slider = widgets.FloatSlider(value=fast_lr, min=0.0, max=2.0, step=0.05,
                                         description="η (fast lr)", continuous_update=False)
    step_slider = widgets.IntSlider(value=len(text), min=1, max=len(text),
                                    description="step t", continuous_update=False)
    text_box = widgets.Text(value=text, description="text", continuous_update=False)
    message = widgets.HTML()
    output = widgets.Output()

    def update(*_):
        try:
            current = text_box.value
            encode(current)
        except ValueError as error:
            message.value = f"<span style='color:#c0392b'>{error}</span>"
            return
        message.value = ""
        step_slider.max = len(current)
        step_slider.value = min(step_slider.value, len(current))
        history = fast_weights_history(current, decay_slider.value, fast_lr_slider.value, model)
        output.clear_output(wait=True)
        with output:
            display(_explorer_figure(history, step_slider.value))

    for control in (decay_slider, fast_lr_slider, step_slider, text_box):
        control.observe(update, names="value")
    explorer = FastWeightsExplorer([
        widgets.HBox([decay_slider, fast_lr_slider]), widgets.HBox([step_slider, text_box]),
        message, output])
    explorer.decay_slider, explorer.fast_lr_slider = decay_slider, fast_lr_slider
    explorer.step_slider, explorer.text_box, explorer.output = step_slider, text_box, output
    explorer.message, explorer.update = message, update
    update()
    return explorer
