"""Causal linear attention with decay, computed directly (chapter 07).

For queries q_t, keys k_τ, values v_τ and a decay λ in [0, 1]:

    out_t = Σ_{τ ≤ t} λ^(t-τ) (q_t · k_τ) v_τ                      (linear attention, LA)

Three ways to compute the same thing, tested equal to each other:

* :func:`linear_attention_masked`: the O(T²) matrix form, (Q Kᵀ ∘ D) V with the decay mask
  D[t, τ] = λ^(t-τ) for τ ≤ t and 0 above the diagonal (how a transformer computes it);
* :func:`linear_attention_recurrent`: the state form S_t = λ S_{t-1} + v_t k_tᵀ,
  out_t = S_t q_t, one step at a time (a fast-weight memory, Eq. 1);
* :func:`linear_attention_chunked`: the chunked form linear-transformer kernels use: inside a
  chunk the masked form, across chunks the state carried forward. It needs the keys and values
  of a whole chunk before it can produce any output in that chunk.

The fast weights of Ba et al. (2016) are this with the sequence index t = 0..T-1 of the input
steps, q_t = h_s(t+1), k_τ = h(τ), v_τ = η h(τ) and h(0) = 0 (so the first key is zero and the
query of step t sees h(1)..h(t), exactly A(t) of Eq. 3): see
:func:`fast_weights_as_linear_attention`.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F

from fwbook.core.models import variant


def _check_inputs(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                  decay: float) -> None:
    if queries.dim() != 3 or keys.dim() != 3 or values.dim() != 3:
        raise ValueError("queries, keys and values must be 3-d tensors (B, T, D); got shapes "
                         f"{tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}")
    if queries.shape != keys.shape or values.shape[:2] != keys.shape[:2]:
        raise ValueError("queries and keys must have the same shape (B, T, D) and values the "
                         f"same (B, T); got {tuple(queries.shape)}, {tuple(keys.shape)}, "
                         f"{tuple(values.shape)}")
    if not 0.0 <= float(decay) <= 1.0:
        raise ValueError(f"decay (λ) must lie in [0, 1], got {decay!r}")


def decay_mask(steps: int, decay: float,
               dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """D (T, T) with D[t, τ] = λ^(t-τ) where τ ≤ t, else 0."""
    index = torch.arange(steps, device=device)
    lag = (index.unsqueeze(1) - index.unsqueeze(0)).to(dtype)  # (T, T)  t - τ
    allowed = lag >= 0  # (T, T)
    # λ^(t-τ); the clamp keeps 0^negative (masked-out entries) from becoming inf
    powers = torch.pow(torch.as_tensor(float(decay), dtype=dtype, device=device), lag.clamp(min=0))
    return torch.where(allowed, powers, torch.zeros((), dtype=dtype, device=device))


def linear_attention_weights(queries: torch.Tensor, keys: torch.Tensor, decay: float
                             ) -> torch.Tensor:
    """The attention matrix λ^(t-τ) (q_t · k_τ), (B, T, T), zero for τ after t."""
    scores = queries @ keys.transpose(1, 2)  # (B, T, T)  q_t · k_τ
    mask = decay_mask(queries.shape[1], decay, queries.dtype, queries.device)
    return scores * mask  # (B, T, T)


def linear_attention_masked(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                            decay: float) -> torch.Tensor:
    """(LA) as one masked matrix product, O(T² D).

    Args:
        queries, keys: (B, T, D). values: (B, T, Dv). decay: λ in [0, 1].
    Returns:
        (B, T, Dv).
    """
    _check_inputs(queries, keys, values, decay)
    return linear_attention_weights(queries, keys, decay) @ values  # (B, T, Dv)


def linear_attention_recurrent(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                               decay: float) -> torch.Tensor:
    """(LA) as a recurrence on the state S_t (B, Dv, D): a fast-weight matrix.

    S_t = λ S_{t-1} + v_t k_tᵀ,  out_t = S_t q_t.
    """
    _check_inputs(queries, keys, values, decay)
    batch, steps, _ = queries.shape
    state = queries.new_zeros(batch, values.shape[2], keys.shape[2])  # (B, Dv, D)  S_0 = 0
    outputs = []
    for t in range(steps):
        write = values[:, t].unsqueeze(2) * keys[:, t].unsqueeze(1)  # (B, Dv, D)  v_t k_tᵀ
        state = decay * state + write  # S_t = λ S_{t-1} + v_t k_tᵀ
        outputs.append(torch.bmm(state, queries[:, t].unsqueeze(2)).squeeze(2))  # (B, Dv)  S_t q_t
    return torch.stack(outputs, 1)  # (B, T, Dv)


def linear_attention_chunked(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                             decay: float, chunk: int = 4) -> torch.Tensor:
    """(LA) chunk by chunk: masked form inside a chunk, the state S carried across chunks.

    This is the parallel form linear transformers use: all queries, keys and values of a chunk
    must be known before any output of that chunk is computed.
    """
    _check_inputs(queries, keys, values, decay)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    batch, steps, _ = queries.shape
    state = queries.new_zeros(batch, values.shape[2], keys.shape[2])  # (B, Dv, D)
    outputs = []
    for start in range(0, steps, chunk):
        q, k, v = (x[:, start:start + chunk] for x in (queries, keys, values))  # (B, C, ·)
        size = q.shape[1]
        # from earlier chunks: λ^(i+1) S q_i for the i-th query of the chunk (0-based)
        carried_decay = torch.pow(torch.as_tensor(float(decay), dtype=q.dtype, device=q.device),
                                  torch.arange(1, size + 1, dtype=q.dtype, device=q.device))  # (C,)
        carried = (q @ state.transpose(1, 2)) * carried_decay.view(1, -1, 1)  # (B, C, Dv)
        inside = linear_attention_masked(q, k, v, decay)  # (B, C, Dv)
        outputs.append(carried + inside)
        # S ← λ^C S + Σ_i λ^(C-1-i) v_i k_iᵀ
        write_decay = torch.pow(torch.as_tensor(float(decay), dtype=q.dtype, device=q.device),
                                torch.arange(size - 1, -1, -1, dtype=q.dtype, device=q.device))
        state = decay**size * state + torch.einsum("bcv,bcd,c->bvd", v, k, write_decay)
    return torch.cat(outputs, 1)  # (B, T, Dv)


def fast_weights_as_linear_attention(model: torch.nn.Module, tokens: torch.Tensor
                                     ) -> dict[str, torch.Tensor]:
    """Run a fast-weights model and recast its memory read as linear attention.

    The core is stepped in its *explicit* form (the B x H x H matrix A(t) of Eq. 1), and at
    every input step the preliminary vector h_0(t+1) and the read A(t) h_0(t+1) are recorded.
    Only the first inner step (s = 0) is compared: later inner steps re-read the same A(t)
    with a new query.

    Args:
        model: a ``FastWeightsRNN`` (either memory form).
        tokens: (B, T) int64.
    Returns:
        dict with (B, T, H) tensors ``queries`` (h_0(t+1)), ``hidden`` (h(t+1)), ``fast_term``
        (A(t) h_0(t+1) from the core) and ``linear_attention`` (the same from
        :func:`linear_attention_masked` with q_t = h_0(t+1), k_t = h(t), v_t = η h(t),
        t = 0..T-1, h(0) = 0), plus ``memory_weights`` (B, T, T) from ``model.trace`` (s = 0;
        column τ-1 is the weight on h(τ)) and ``attention_weights`` (B, T, T), the same
        η λ^(t-τ) q_t · k_τ from the linear-attention side, shifted to the same columns.
    """
    explicit = variant(model, memory="explicit")  # the B x H x H matrix A(t) of Eq. 1
    core = explicit.core
    with torch.no_grad():
        drive = explicit.projected_input(tokens, explicit.input_weight, explicit.bias)  # (B, T, H)  C x(t) + b
        state = core.initial_state(tokens.shape[0], drive)
        queries, hidden, fast_terms = [], [], []
        for t in range(tokens.shape[1]):
            h0 = F.relu(state.h @ core.recurrent.T + drive[:, t])  # (B, H)  h_0(t+1)
            fast = torch.bmm(state.fast_weights, h0.unsqueeze(2)).squeeze(2)  # (B, H)  A(t) h_0
            state, _ = core.step(drive[:, t], state)
            queries.append(h0)
            hidden.append(state.h)
            fast_terms.append(fast)
        queries = torch.stack(queries, 1)  # (B, T, H)
        hidden = torch.stack(hidden, 1)  # (B, T, H)  h(1) .. h(T)
        # keys k_t = h(t) for t = 0..T-1: h(0) = 0, then h(1) .. h(T-1)
        keys = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], 1)  # (B, T, H)
        # (LA) out_t = Σ_{τ≤t} λ^(t-τ) (q_t · k_τ) v_τ with v = η h  ==  A(t) h_0(t+1)  (Eq. 4)
        attended = linear_attention_masked(queries, keys, core.fast_lr * keys, core.decay)
        weights = core.fast_lr * linear_attention_weights(queries, keys, core.decay)  # (B, T, T)
        # column τ of `weights` is the weight on h(τ); the trace stores it in column τ-1
        weights = F.pad(weights[:, :, 1:], (0, 1))  # (B, T, T)
        # the efficient form records the Eq. 4 weights
        trace = variant(model, memory="efficient").trace(tokens)
    return {"queries": queries, "hidden": hidden, "fast_term": torch.stack(fast_terms, 1),
            "linear_attention": attended, "attention_weights": weights,
            "memory_weights": trace.memory_weights[:, :, 0, :],
            "trace_hidden": trace.hidden_states}


def time_forms(batch: int = 64, steps: int = 11, dim: int = 20, decay: float = 0.95,
               repeats: int = 20, chunk: int = 4, seed: int = 0) -> dict[str, float]:
    """Median seconds per call of the three forms on random inputs, measured in one run.

    Returns:
        {"masked": s, "recurrent": s, "chunked": s}.
    """
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, steps, dim, generator=generator) for _ in range(3))
    forms: dict[str, Callable[[], torch.Tensor]] = {
        "masked": lambda: linear_attention_masked(q, k, v, decay),
        "recurrent": lambda: linear_attention_recurrent(q, k, v, decay),
        "chunked": lambda: linear_attention_chunked(q, k, v, decay, chunk),
    }
    timings = {}
    with torch.no_grad():
        for name, form in forms.items():
            form()  # warm-up
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                form()
                samples.append(time.perf_counter() - started)
            timings[name] = sorted(samples)[len(samples) // 2]
    return timings


@torch.no_grad()
def key_dependence(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """How much the keys h(t) depend on earlier memory reads, per step, (T,).

    Runs the model as it is and again with the memory read switched off (η = 0, everything
    else equal) and returns the mean absolute difference of h(t+1) at every step. In a linear
    transformer the keys k_t = W_k x_t would not move at all; here they do from the second step
    on, because h(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s(t+1)]) feeds the read back in.
    """
    switched_off = variant(model, fast_lr=0.0)
    with_memory = model.trace(tokens).hidden_states  # (B, T, H)
    without = switched_off.trace(tokens).hidden_states  # (B, T, H)
    return (with_memory - without).abs().mean(dim=(0, 2))  # (T,)


def plot_equivalence(result: dict, index: int = 0, labels: str | None = None):
    """Eq. 4 weights from the model's trace beside the same weights computed as linear
    attention, and the two reads A(t) h_0(t+1) plotted against each other.

    Args:
        result: a dict from :func:`fast_weights_as_linear_attention`.
        index: which sequence of the batch to show.
        labels: the sequence as a string, for the axis ticks (optional).
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn  # noqa: F401  (registers the "rocket" colour maps)

    traced = result["memory_weights"][index].cpu().numpy()  # (T, T)
    direct = result["attention_weights"][index].cpu().numpy()  # (T, T)
    steps = traced.shape[0]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.1), layout="constrained")
    top = max(float(traced.max()), float(direct.max()), 1e-12)
    for axis, grid, title in ((axes[0], traced, "model.trace: η λ^(t−τ) h(τ)ᵀ h_s(t+1)"),
                              (axes[1], direct, "linear attention: η λ^(t−τ) q_t · k_τ")):
        image = axis.imshow(grid, cmap="rocket_r", vmin=0, vmax=top)
        axis.set_title(title, fontsize=10)
        ticks = list(labels) if labels else [str(i) for i in range(steps)]
        axis.set_xticks(range(steps), ticks, fontsize=8)
        axis.set_yticks(range(steps), ticks, fontsize=8)
        axis.set_xlabel("memory slot (state written after this token)")
        axis.set_ylabel("step reading this token")
        axis.grid(False)
    figure.colorbar(image, ax=axes[1], fraction=0.046, pad=0.04)
    core = result["fast_term"].flatten().cpu().numpy()
    attended = result["linear_attention"].flatten().cpu().numpy()
    difference = float(np.abs(core - attended).max())
    axes[2].scatter(core, attended, s=6, alpha=0.5, color="#c0392b")
    low, high = float(min(core.min(), attended.min())), float(max(core.max(), attended.max()))
    axes[2].plot([low, high], [low, high], color="black", lw=0.8)
    axes[2].set_xlabel("A(t) h_0(t+1), explicit fast-weight matrix")
    axes[2].set_ylabel("(Q Kᵀ ∘ D) V, masked linear attention")
    axes[2].set_title(f"every unit, step and sequence: max |diff| = {difference:.1e}",
                      fontsize=10)
    return figure


def plot_key_dependence(shifts: dict[str, torch.Tensor]):
    """Bars of :func:`key_dependence` for one or more models, on a log scale.

    Args:
        shifts: label -> (T,) mean |h with memory − h without| per step.
    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(7.5, 3.4), layout="constrained")
    width = 0.8 / len(shifts)
    colors = ("#7f8c8d", "#c0392b", "#2980b9", "#8e44ad")
    for index, (label, shift) in enumerate(shifts.items()):
        steps = np.arange(1, len(shift) + 1) + (index - (len(shifts) - 1) / 2) * width
        values = np.asarray(shift, dtype=float)
        axis.bar(steps, np.where(values > 0, values, np.nan), width=width, label=label,
                 color=colors[index % len(colors)])
    axis.set_yscale("log")
    axis.set_xlabel("key h(t): the state written after reading token t")
    axis.set_ylabel("mean |h with read − h without|")
    axis.set_title("how far the keys move when the memory read is switched off (η = 0)",
                   fontsize=10)
    axis.legend(fontsize=8)
    return figure
