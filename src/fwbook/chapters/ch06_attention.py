"""What the fast memory attends to (chapter 06).

The efficient form of the fast weights (Eq. 4) is attention over the past hidden states:

    A(t) h_s(t+1) = η Σ_{τ=1..t} λ^(t-τ) h(τ) [h(τ)ᵀ h_s(t+1)]

``model.trace(tokens).memory_weights[b, t, s, τ-1]`` is the weight η λ^(t-τ) h(τ)ᵀ h_s(t+1)
that inner step s of input step t puts on h(τ). This module pulls out the weights of the step
that reads the query key, measures where their mass goes, and draws the figures. The runs it
looks at are trained (or read from their committed records) by
:mod:`fwbook.experiments.attention_runs` (``fwbook attention paper --out results/attention``).

Positions, 0-based, in a sequence ``k1 v1 k2 v2 ... kK vK ? ? q`` (T = 2K + 3 tokens): the key
of pair j sits at position 2j, its value at 2j + 1. Input step t (0-based) reads token t and
produces h(t+1), so the memory slot τ - 1 = t holds the hidden state written right *after*
reading token t. The slot that read the key of pair j is 2j, the one that read its value is
2j + 1 (this holds the whole pair: h(2j+2) in the paper's 1-based time).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from fwbook.core.data import decode, parse_query

# ---------------------------------------------------------------------------------------------
# Where the query's read of the memory goes
# ---------------------------------------------------------------------------------------------

# The role a memory slot plays for the sequence's query: the slot written after reading...
SLOT_ROLES = ("queried key", "queried value", "other keys", "other values", "query marks")
ROLE_COLORS = {"queried key": "#c0392b", "queried value": "#e67e22", "other keys": "#7f8c8d",
               "other values": "#bdc3c7", "query marks": "#2c3e50"}


def _num_pairs(tokens: torch.Tensor) -> int:
    steps = tokens.shape[-1]
    if steps < 5 or (steps - 3) % 2:
        raise ValueError(f"tokens must be retrieval sequences of 2K + 3 steps, got {steps}")
    return (steps - 3) // 2


def queried_pair(tokens: torch.Tensor) -> torch.Tensor:
    """Index j (0-based) of the pair whose key is asked for, (B,) int64.

    Args:
        tokens: (B, T) retrieval sequences ``k v k v ... ? ? q``.
    """
    keys = tokens[:, 0:2 * _num_pairs(tokens):2]  # (B, K)
    hits = keys == tokens[:, -1:]  # (B, K)
    if not bool((hits.sum(1) == 1).all()):
        raise ValueError("every sequence's query must be exactly one of its keys")
    return hits.long().argmax(1)  # (B,)


def slot_roles(tokens: torch.Tensor) -> torch.Tensor:
    """Role (index into ``SLOT_ROLES``) of memory slots 0..T-2 for each sequence, (B, T-1).

    Slot i holds the hidden state written right after reading token i, so slot 2j belongs to
    the key of pair j and slot 2j + 1 to its value; slots 2K and 2K + 1 read the two ``?``.
    """
    batch, steps = tokens.shape
    pairs = _num_pairs(tokens)
    slot = torch.arange(steps - 1).expand(batch, -1)  # (B, T-1)
    key_slot = 2 * queried_pair(tokens).unsqueeze(1)  # (B, 1)
    roles = torch.full((batch, steps - 1), 4, dtype=torch.long)  # query marks by default
    in_pairs = slot < 2 * pairs
    roles[in_pairs & (slot % 2 == 0)] = 2  # other keys
    roles[in_pairs & (slot % 2 == 1)] = 3  # other values
    roles[slot == key_slot] = 0  # queried key
    roles[slot == key_slot + 1] = 1  # queried value
    return roles


@torch.no_grad()
def query_weights(model: torch.nn.Module, tokens: torch.Tensor, inner_step: int = -1
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The Eq. 4 weights of the step that reads the query key, and the logits.

    Args:
        model: a fast-weights model (``model.trace`` returns memory weights).
        tokens: (B, T) int64.
        inner_step: which inner step s (default the last).
    Returns:
        weights (B, T-1): η λ^(T-1-τ) h(τ)ᵀ h_s(T) on slots τ-1 = 0..T-2, and logits (B, V).
    """
    trace = model.trace(tokens)
    if trace.memory_weights is None:
        raise ValueError("this model has no fast memory to attend with (memory_weights is None)")
    weights = trace.memory_weights[:, -1, inner_step, :-1]  # (B, T-1)  t = T-1
    return weights, trace.logits


def attention_statistics(weights: torch.Tensor, tokens: torch.Tensor, correct: torch.Tensor
                         ) -> dict:
    """Where the query's weights go, and how that goes with being right.

    Args:
        weights: (B, T-1) weights of the query step on slots 0..T-2 (from :func:`query_weights`).
        tokens: (B, T) the sequences.
        correct: (B,) bool, whether the model answered each sequence right.
    Returns:
        dict with ``n``, ``accuracy``; ``argmax_share`` and ``mass_share`` (role -> fraction of
        sequences whose largest weight is on a slot of that role / mean fraction of the summed
        weights on that role); ``argmax_on_pair`` (largest weight on the queried key or value
        slot), ``pair_argmax`` (the pair with the most summed weight is the queried one),
        ``accuracy_if_on_pair`` and ``accuracy_if_off_pair`` (None where no sequence is in that
        group) and the matching counts ``n_on_pair`` / ``n_off_pair``.
    """
    weights = weights.detach().cpu().double()
    correct = correct.detach().cpu().bool()
    roles = slot_roles(tokens.cpu())  # (B, T-1)
    batch = weights.shape[0]
    pairs = _num_pairs(tokens)
    top_role = roles.gather(1, weights.argmax(1, keepdim=True)).squeeze(1)  # (B,)
    total = weights.abs().sum(1).clamp(min=1e-30)  # (B,)
    argmax_share, mass_share = {}, {}
    for index, role in enumerate(SLOT_ROLES):
        argmax_share[role] = float((top_role == index).double().mean())
        mass_share[role] = float(((weights.abs() * (roles == index)).sum(1) / total).mean())
    on_pair = top_role <= 1  # (B,)
    pair_mass = weights[:, :2 * pairs].reshape(batch, pairs, 2).sum(2)  # (B, K)
    pair_right = pair_mass.argmax(1) == queried_pair(tokens.cpu())  # (B,)

    def rate(mask):
        return float(correct[mask].double().mean()) if bool(mask.any()) else None

    return {"n": batch, "num_pairs": pairs, "accuracy": float(correct.double().mean()),
            "argmax_share": argmax_share, "mass_share": mass_share,
            "argmax_on_pair": float(on_pair.double().mean()),
            "pair_argmax": float(pair_right.double().mean()),
            "accuracy_if_on_pair": rate(on_pair), "accuracy_if_off_pair": rate(~on_pair),
            "n_on_pair": int(on_pair.sum()), "n_off_pair": int((~on_pair).sum()),
            "accuracy_if_pair_argmax": rate(pair_right),
            "accuracy_if_not_pair_argmax": rate(~pair_right)}


@torch.no_grad()
def evaluate_attention(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                       batch_size: int = 2_000) -> dict:
    """:func:`attention_statistics` over a whole split, plus the mean weight profile.

    Returns:
        the statistics dict, with ``mean_weights`` (K, T-1): the mean query weights on every
        slot, averaged separately over the sequences that ask for pair j (row j).
    """
    model.eval()
    weights, correct = [], []
    for start in range(0, inputs.shape[0], batch_size):
        batch = inputs[start:start + batch_size]
        w, logits = query_weights(model, batch)
        weights.append(w.cpu())
        correct.append((logits.argmax(1) == targets[start:start + batch_size]).cpu())
    weights = torch.cat(weights)  # (N, T-1)
    correct = torch.cat(correct)  # (N,)
    inputs = inputs.cpu()
    stats = attention_statistics(weights, inputs, correct)
    pair = queried_pair(inputs)  # (N,)
    pairs = _num_pairs(inputs)
    profile = torch.zeros(pairs, weights.shape[1], dtype=torch.float64)  # (K, T-1)
    for j in range(pairs):
        if bool((pair == j).any()):
            profile[j] = weights[pair == j].double().mean(0)
    stats["mean_weights"] = profile.tolist()
    stats["num_pairs"] = pairs
    return stats


@torch.no_grad()
def read_strength(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 2_000,
                  inner_step: int = -1) -> torch.Tensor:
    """How strongly each input step reads the memory: the summed Eq. 4 weights, (T,).

    Entry t is the mean over sequences of Σ_τ η λ^(t-τ) h(τ)ᵀ h_s(t+1), the total weight the
    step reading token t puts on the memory (0 at the first step, whose memory is empty).
    """
    totals = []
    for start in range(0, inputs.shape[0], batch_size):
        trace = model.trace(inputs[start:start + batch_size])
        if trace.memory_weights is None:
            raise ValueError("this model has no fast memory to attend with")
        totals.append(trace.memory_weights[:, :, inner_step, :].sum(2).cpu())  # (B, T)
    return torch.cat(totals).double().mean(0)  # (T,)


def plot_read_strength(strengths: dict[str, torch.Tensor]):
    """Bars of :func:`read_strength` per input step for one or more models.

    Args:
        strengths: label -> (T,) summed weights per step (all of the same K).
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    first = next(iter(strengths.values()))
    steps = len(first)
    pairs = (steps - 3) // 2
    labels = [f"k{j + 1}" if i % 2 == 0 else f"v{j + 1}"
              for j in range(pairs) for i in range(2)] + ["?", "?", "q"]
    figure, axis = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
    width = 0.8 / len(strengths)
    for index, (label, strength) in enumerate(strengths.items()):
        positions = np.arange(steps) + (index - (len(strengths) - 1) / 2) * width
        axis.bar(positions, np.asarray(strength, dtype=float), width=width, label=label,
                 color=plt.cm.tab10(index))
    axis.set_xticks(range(steps), labels)
    axis.set_xlabel("the step reading this token")
    axis.set_ylabel("summed weight on the memory")
    axis.set_title("when does the memory get read?", fontsize=10)
    axis.legend(fontsize=8)
    return figure


def dominant_role(stats: dict, key: str = "mass_share") -> str:
    """The slot role with the largest share (``key``: "mass_share" or "argmax_share")."""
    return max(SLOT_ROLES, key=lambda role: stats[key][role])


def check_query_text(text: str) -> tuple[torch.Tensor, str]:
    """Validate a reader's query (``fwbook.core.data.parse_query``); tokens (1, T) and the answer."""
    tokens, answer = parse_query(text)
    return tokens.unsqueeze(0), answer


def slot_labels(text: str) -> list[str]:
    """Axis labels for the memory slots of a query string: the token each slot read."""
    return [f"{symbol}" for symbol in text[:-1]]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def plot_sequence_attention(model: torch.nn.Module, text: str, inner_step: int = -1):
    """The Eq. 4 weights of every step of one sequence, and the query step's row as bars.

    Args:
        model: a trained fast-weights model.
        text: a query such as ``"c9k8j3f1??c"`` (checked by ``fwbook.core.data.parse_query``).
        inner_step: the inner step s whose weights are shown (default the last).
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import seaborn  # noqa: F401  (registers the "rocket" colour maps)
    from matplotlib.colors import Normalize

    tokens, answer = check_query_text(text)
    with torch.no_grad():
        trace = model.trace(tokens)
    if trace.memory_weights is None:
        raise ValueError("this model has no fast memory to attend with")
    grid = trace.memory_weights[0, :, inner_step].cpu().numpy()  # (T, T)  [t, τ-1]
    steps = grid.shape[0]
    predicted = decode(trace.logits.argmax(1)[0])
    roles = slot_roles(tokens)[0].tolist()  # (T-1,)

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained",
                                         gridspec_kw={"width_ratios": [1.1, 1.3]})
    masked = np.ma.masked_where(np.tril(np.ones_like(grid), -1) == 0, grid)  # only τ ≤ t
    image = left.imshow(masked, cmap="rocket_r",
                        norm=Normalize(vmin=0, vmax=max(float(grid.max()), 1e-12)), aspect="equal")
    left.set_xticks(range(steps), [f"{c}" for c in text], fontsize=9)
    left.set_yticks(range(steps), [f"{c}" for c in text], fontsize=9)
    left.set_xlabel("memory slot: state written after reading this token")
    left.set_ylabel("step reading this token (query h_s)")
    left.set_title("Eq. 4 weights η λ^(t−τ) h(τ)ᵀ h_s(t+1)", fontsize=10)
    left.add_patch(plt.Rectangle((-0.5, steps - 1.5), steps - 1, 1, fill=False, lw=2,
                                 ec=ROLE_COLORS["queried key"]))
    left.grid(False)
    figure.colorbar(image, ax=left, fraction=0.046, pad=0.04)

    row = grid[-1, :-1]  # (T-1,)
    colors = [ROLE_COLORS[SLOT_ROLES[r]] for r in roles]
    right.bar(range(steps - 1), row, color=colors)
    right.set_xticks(range(steps - 1), slot_labels(text))
    right.set_xlabel("memory slot (token read before writing it)")
    right.set_ylabel("weight on that slot")
    right.set_title(f"query '{text[-1]}': answer {answer}, model says {predicted}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ROLE_COLORS[role]) for role in SLOT_ROLES]
    right.legend(handles, SLOT_ROLES, fontsize=8, ncol=3, loc="upper center",
                 bbox_to_anchor=(0.5, -0.16), frameon=False)
    return figure


def plot_mean_query_weights(stats: dict, title: str = ""):
    """Mean query-step weights on each slot (columns), one row per queried pair.

    Args:
        stats: a dict from :func:`evaluate_attention`.
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import seaborn  # noqa: F401  (registers the "rocket" colour maps)

    profile = np.asarray(stats["mean_weights"])  # (K, T-1)
    pairs = stats["num_pairs"]
    labels = [f"k{j + 1}" if i % 2 == 0 else f"v{j + 1}"
              for j in range(pairs) for i in range(2)] + ["?", "?"]
    figure, axis = plt.subplots(figsize=(1.5 + 0.55 * len(labels), 1.2 + 0.45 * pairs),
                                layout="constrained")
    image = axis.imshow(profile, cmap="rocket_r", aspect="auto")
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(pairs), [f"asks k{j + 1}" for j in range(pairs)])
    for j in range(pairs):
        for i in (2 * j, 2 * j + 1):
            axis.add_patch(plt.Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, lw=1.5,
                                         ec="#2980b9"))
    axis.set_xlabel("memory slot (the token read before it was written)")
    axis.set_title(title or "mean weight of the query step on each slot", fontsize=10)
    axis.grid(False)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return figure


def plot_role_shares(results: dict[str, dict]):
    """Where the query's weight goes, by slot role, for one or more runs.

    Args:
        results: run label -> dict from :func:`evaluate_attention` / :func:`attention_statistics`.
    Returns:
        a matplotlib Figure with two panels: the mean share of the summed weight on each role,
        and the fraction of sequences whose largest weight falls on each role. A black tick on
        each bar marks what weights spread evenly over the slots would give.
    """
    import matplotlib.pyplot as plt

    names = list(results)
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True, layout="constrained")
    width = 0.8 / len(names)
    for panel, (key, title) in zip(axes, (("mass_share", "share of the summed weight"),
                                          ("argmax_share", "where the largest weight falls"))):
        for index, name in enumerate(names):
            values = [results[name][key][role] for role in SLOT_ROLES]
            positions = np.arange(len(SLOT_ROLES)) + (index - (len(names) - 1) / 2) * width
            panel.bar(positions, values, width=width, label=name,
                      color=plt.cm.tab10(index), alpha=0.9)
            pairs = results[name]["num_pairs"]
            slots = np.array([1, 1, pairs - 1, pairs - 1, 2]) / (2 * pairs + 2)  # even spread
            panel.hlines(slots, positions - width / 2, positions + width / 2, color="black",
                         lw=2, label="even spread" if index == 0 and key == "mass_share" else None)
        panel.set_xticks(range(len(SLOT_ROLES)), SLOT_ROLES, rotation=20)
        panel.set_title(title, fontsize=10)
        panel.set_ylim(0, 1)
    axes[0].set_ylabel("fraction")
    axes[0].legend(fontsize=8)
    return figure


def plot_k_comparison(records: dict[str, dict]):
    """Validation error against updates for the chapter's runs, and their test errors.

    Args:
        records: run label -> run record (from :func:`fwbook.core.train.train`).
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import MODEL_COLORS

    figure, (curves, bars) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained",
                                          gridspec_kw={"width_ratios": [1.6, 1]})
    styles = {4: "-", 8: "--"}
    for label, record in records.items():
        pairs = record["config"]["num_pairs"]
        curves.plot(record["curves"]["step"], np.asarray(record["curves"]["val_error"]) * 100,
                    styles.get(pairs, ":"), color=MODEL_COLORS.get(record["model"], "black"),
                    label=label)
    curves.set_xlabel("updates")
    curves.set_ylabel("validation error (%)")
    curves.set_ylim(0, 100)
    curves.legend(fontsize=8)
    labels = list(records)
    errors = [100 * (records[label]["test_error"] if records[label]["test_error"] is not None
                     else float("nan")) for label in labels]
    bars.bar(range(len(labels)), errors,
             color=[MODEL_COLORS.get(records[label]["model"], "black") for label in labels])
    for index, error in enumerate(errors):
        bars.text(index, error + 1, f"{error:.1f}%", ha="center", fontsize=9)
    bars.set_xticks(range(len(labels)), labels, rotation=15, fontsize=8)
    bars.set_ylabel("test error (%)")
    bars.set_ylim(0, 100)
    return figure


def attention_explorer(model: torch.nn.Module, text: str = "c9k8j3f1??c", num_pairs: int = 4,
                       browser_html: Optional[str] = None):
    """The live (ipywidgets) explorer of chapter 6: a text box, the answer and the Eq. 4
    weights figure of :func:`plot_sequence_attention`, redrawn as you type.

    Args:
        model: a trained fast-weights model.
        text: the initial query.
        num_pairs: K the model was trained on (sequences of 2K + 3 symbols).
        browser_html: what the rendered book shows instead (default
            :func:`fwbook.chapters.explorer.attention_html`).
    Returns:
        an ``ipywidgets.VBox`` with ``text_box``, ``answer``, ``message``, ``output`` and
        ``update()``.
    """
    import html

    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from fwbook.chapters.explorer import attention_html, bundle_with_fallback

    class AttentionExplorer(widgets.VBox):
        def _repr_mimebundle_(self, **kwargs):
            return bundle_with_fallback(
                super()._repr_mimebundle_(**kwargs), getattr(self, "browser_html", None),
                "[Interactive explorer: type a sequence, see the answer and the Eq. 4 weights. "
                "It needs a live Jupyter kernel, or the rendered book.]")

    text_box = widgets.Text(value=text, description="sequence", continuous_update=True)
    answer = widgets.HTML()
    message = widgets.HTML()
    output = widgets.Output()

    def update(*_):
        current = text_box.value.strip()
        try:
            tokens, expected = check_query_text(current)
            if tokens.shape[1] != 2 * num_pairs + 3:
                raise ValueError(f"the model was trained on {2 * num_pairs + 3}-symbol sequences "
                                 f"({num_pairs} pairs, ??, a key); this one has {tokens.shape[1]}")
        except ValueError as error:
            message.value = f"<span style='color:#b42318'>{html.escape(str(error))}</span>"
            return
        message.value = ""
        with torch.no_grad():
            probabilities = torch.softmax(model(tokens), 1)[0]
        best = int(probabilities.argmax())
        answer.value = (f"<b>The model answers {decode(torch.tensor(best))} with probability "
                        f"{100 * float(probabilities[best]):.1f}%</b> (the stored value is {expected})")
        output.clear_output(wait=True)
        with output:
            figure = plot_sequence_attention(model, current)
            display(figure)
            plt.close(figure)

    text_box.observe(update, names="value")
    explorer = AttentionExplorer([text_box, answer, message, output])
    explorer.text_box, explorer.answer, explorer.message = text_box, answer, message
    explorer.output, explorer.update = output, update
    explorer.browser_html = attention_html(text) if browser_html is None else browser_html
    update()
    return explorer

