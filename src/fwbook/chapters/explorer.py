"""The explorers that run in the reader's browser (chapters 2 and 6): no kernel, no network.

The rendered book has no Python kernel, so the live ipywidgets explorers cannot run there. In
their place the book shows explorers written in JavaScript, next to this module, hand-written:
``explorer_maths.js`` runs the forward pass of :class:`fwbook.core.models.FastWeightsRNN`
(Eq. 1-4 with the inner loop's layer norm) on weights exported from the committed trained
model, ``explorer_page.js`` draws the explorers.

At book build time the Sphinx extension :mod:`fwbook.cli.sphinx_explorer` calls
:func:`write_assets`, which writes into the HTML's ``_static/``:

* ``fwbook_explorer.js``: ``explorer_maths.js`` and ``explorer_page.js``, joined
  (:func:`script_text`);
* ``fwbook_explorer_weights.js``: ``window.FWBOOK_MODELS.trained = {...}``, the weights of the
  committed chapter-6 run (``results/attention/paper_fast_weights_K4_seed0.pt``) as base64
  float32, exact to the bit. A script, not a JSON file: ``fetch`` of a local file is blocked
  under ``file://``, a ``<script src>`` is not.

A notebook cell shows an explorer with ``ch06_attention.attention_explorer`` (chapter 6) or
:func:`book_fallback` on :func:`fwbook.chapters.widgets.fast_weights_explorer` (chapter 2): in a live
notebook the ipywidgets view wins; the book drops widget views
(``nb_mime_priority_overrides`` in ``_config.yml``) and renders the ``text/html`` of the same
output, :func:`attention_html` / :func:`fast_weights_html`, which loads the two scripts.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

SCRIPT_SOURCES = tuple(Path(__file__).with_name(name)  # served as one script, in this order
                       for name in ("explorer_maths.js", "explorer_page.js"))
SCRIPT_NAME = "fwbook_explorer.js"
WEIGHTS_NAME = "fwbook_explorer_weights.js"
MAX_ASSET_BYTES = 200_000  # script + weights, the budget of issue 16
TRAINED_RUN = ("fast_weights_K4", "paper", 0)  # (run name, profile, seed) in results/attention
DEFAULT_TEXT = "c9k8j3f1??c"
CORE_PARAMETERS = ("input_weight", "bias", "core.recurrent", "core.norm.weight", "core.norm.bias")


def encode_tensor(tensor: torch.Tensor) -> dict:
    """``{"shape": [...], "data": base64}`` of the tensor as little-endian float32 (exact)."""
    array = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype="<f4")
    return {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_tensor(spec: dict) -> torch.Tensor:
    """Inverse of :func:`encode_tensor` (what ``explorer_maths.js`` does in the browser)."""
    array = np.frombuffer(base64.b64decode(spec["data"]), dtype="<f4").reshape(spec["shape"])
    return torch.from_numpy(array.copy())


def model_spec(model: torch.nn.Module, name: str, label: str, num_pairs: Optional[int] = None,
               summary: Optional[str] = None, readout: bool = True) -> dict:
    """What ``explorer_maths.js`` needs to run a :class:`~fwbook.core.models.FastWeightsRNN`.

    Args:
        model: a fast-weights model (``model.config.model == "fast_weights"``).
        name, label: its key in ``window.FWBOOK_MODELS`` and the text shown to the reader.
        num_pairs: K of the task it was trained on (None: no answer is shown, e.g. untrained).
        summary: one line shown under the explorer (where the weights come from).
        readout: include the read-out (not needed to draw A(t)).
    """
    config = model.config.to_dict()
    if config["model"] != "fast_weights":
        raise ValueError(f"the browser explorer runs fast-weights models only, got {config['model']!r}")
    if config.get("input_embedding"):
        raise ValueError("the browser explorer reads one-hot input only (C x(t) is a row of C); "
                         "this model has a learned input embedding")
    state = model.state_dict()
    names = [key for key in state if key in CORE_PARAMETERS or (readout and key.startswith("readout."))]
    return {"name": name, "label": label, "config": config, "num_pairs": num_pairs,
            "summary": summary, "params": {key: encode_tensor(state[key]) for key in names}}


def trained_model() -> tuple[dict, torch.nn.Module]:
    """The committed chapter-6 run (record, model): the model the book's explorers run."""
    from fwbook.experiments.attention_runs import load_run

    name, profile, seed = TRAINED_RUN
    return load_run(name, profile, seed)


def trained_spec() -> dict:
    """:func:`model_spec` of the committed chapter-6 model, described from its record."""
    record, model = trained_model()
    config = record["config"]
    summary = (f"Weights: the committed fast-weights run of chapter 6 (R = {model.config.hidden}, "
               f"K = {config['num_pairs']}, λ = {model.config.decay:g}, η = {model.config.fast_lr:g}, "
               f"S = {model.config.inner_steps}; {record['steps_done']:,} updates), test error "
               f"{100 * record['test_error']:.2f}% on {config['num_test']:,} sequences; run here, "
               f"in your browser.")
    label = f"trained (chapter 6, test error {100 * record['test_error']:.2f}%)"
    return model_spec(model, "trained", label, config["num_pairs"], summary)


def weights_script(specs: dict[str, dict]) -> str:
    """A script assigning each spec to ``window.FWBOOK_MODELS[key]``."""
    lines = ["// generated by fwbook.chapters.explorer.write_assets from the committed weights; do not edit",
             "window.FWBOOK_MODELS = window.FWBOOK_MODELS || {};"]
    for key, spec in specs.items():
        lines.append(f"window.FWBOOK_MODELS[{json.dumps(key)}] = "
                     f"{json.dumps(spec, separators=(',', ':'), ensure_ascii=False)};")
    return "\n".join(lines) + "\n"


def script_text() -> str:
    """The explorers' script as the book serves it: :data:`SCRIPT_SOURCES` joined, in order."""
    return "".join(path.read_text(encoding="utf-8") for path in SCRIPT_SOURCES)


def write_assets(directory: Path | str) -> dict[str, Path]:
    """Write ``fwbook_explorer.js`` and ``fwbook_explorer_weights.js`` into ``directory``.

    Returns:
        {"script": path, "weights": path}.
    Raises:
        ValueError: the two files together exceed ``MAX_ASSET_BYTES``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / SCRIPT_NAME
    weights = directory / WEIGHTS_NAME
    script.write_text(script_text(), encoding="utf-8")
    weights.write_text(weights_script({"trained": trained_spec()}), encoding="utf-8")
    size = script.stat().st_size + weights.stat().st_size
    if size > MAX_ASSET_BYTES:
        raise ValueError(f"the explorer's script and weights take {size:,} bytes, more than "
                         f"the {MAX_ASSET_BYTES:,} allowed")
    return {"script": script, "weights": weights}


# ---------------------------------------------------------------------------------------------
# The HTML a notebook output carries for the rendered book
# ---------------------------------------------------------------------------------------------

# Loads the two scripts once per page from <content root>/_static/, found from Sphinx's
# data-content_root (Sphinx >= 7.2) or from documentation_options.js. In a notebook (no
# Sphinx page) nothing is loaded and the fallback text stays.
_LOADER = """<script>
(function () {
  if (window.FWBOOK_EXPLORER_REQUESTED) {
    if (window.fwbookExplorer) window.fwbookExplorer.mountAll();
    return;
  }
  var root = document.documentElement.getAttribute("data-content_root");
  if (root === null) {
    var options = document.querySelector('script[src$="_static/documentation_options.js"]');
    if (!options) return;
    root = options.getAttribute("src").replace(/_static\\/documentation_options\\.js$/, "");
  }
  window.FWBOOK_EXPLORER_REQUESTED = true;
  ["%(weights)s", "%(script)s"].forEach(function (name) {
    var script = document.createElement("script");
    script.src = root + "_static/" + name;
    script.async = false;  // in order: the weights first
    document.head.appendChild(script);
  });
})();
</script>""" % {"weights": WEIGHTS_NAME, "script": SCRIPT_NAME}

_FALLBACK = ("<p class=\"fw-explorer-fallback\"><em>An interactive explorer runs here in the "
             "rendered book (it needs JavaScript). In a live notebook, run this cell for the "
             "ipywidgets explorer.</em></p>")


def attention_html(text: str = DEFAULT_TEXT) -> str:
    """The chapter-6 browser explorer: a text box, the answer (``#fw-answer``), the Eq. 4
    weights as a heatmap. ``?seq=...`` in the page address overrides ``text``."""
    return (f'<div class="fw-explorer" data-fw-kind="attention" data-fw-model="trained" '
            f'data-fw-seq="{html.escape(text, quote=True)}">{_FALLBACK}</div>\n{_LOADER}')


def fast_weights_html(model: torch.nn.Module, text: str = DEFAULT_TEXT, label: str = "untrained"
                      ) -> str:
    """The chapter-2 browser explorer of A(t): sliders for λ, η and t, a text box, and a
    choice between ``model`` (its weights inlined here) and the trained chapter-6 model."""
    spec = model_spec(model, "inline", label, readout=False)
    payload = json.dumps(spec, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    return (f'<div class="fw-explorer" data-fw-kind="fast-weights" '
            f'data-fw-seq="{html.escape(text, quote=True)}">{_FALLBACK}'
            f'<script type="application/json" class="fw-explorer-model">{payload}</script></div>\n'
            f'{_LOADER}')


def book_fallback(widget, browser_html: str):
    """Give an ipywidgets explorer the HTML the rendered book shows in its place.

    Sets ``widget.browser_html``; the explorers of :mod:`fwbook.chapters.widgets` and
    :func:`fwbook.chapters.ch06_attention.attention_explorer` put it in their ``text/html``
    output (:func:`bundle_with_fallback`). Returns the widget.
    """
    widget.browser_html = browser_html
    return widget


def bundle_with_fallback(widget_bundle, browser_html: Optional[str], plain: str) -> dict:
    """A live widget's MIME bundle with ``plain`` as its text and, when given, the rendered
    book's in-browser explorer as its HTML (what the book shows in place of the widget)."""
    if isinstance(widget_bundle, tuple):
        widget_bundle = widget_bundle[0]
    bundle = dict(widget_bundle or {})
    bundle["text/plain"] = plain
    if browser_html:
        bundle["text/html"] = browser_html
    return bundle
