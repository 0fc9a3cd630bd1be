"""Floating-point work of one training update, and what this machine's matrix kernels reach.

:func:`training_flops` counts, analytically, the floating-point operations of one training
update (forward, backward, gradient clipping, Adam) of each Table 1 model at batch B, R = H
hidden units and T = 2K + 3 steps, op by op as the package computes it:

- a matrix product (m x k) @ (k x n) is 2·m·k·n FLOPs (a multiply-add counts 2). Backward, a
  product costs one product per operand that needs a gradient; a product with h(0) = 0, or
  with one-hot inputs, has no gradient to give there.
- the Eq. 4 attention is a contraction too (past · h_s and weights · past, 2·B·t·H each), even
  where the package computes it with element-wise products and sums; backward, each of its
  two products gives two gradients (3x the forward).
- element-wise work (adds, ReLU, sigmoid, layer norm, the loss, the embedding gather) is
  counted per output element with the per-element costs below and doubled for the backward;
  it is a small share, given apart (``elementwise``), and an estimate, since a fused kernel
  may do more or less than the textbook operation count.
- the optimizer: global-norm clipping and Adam, per parameter.

``tests/test_flops.py`` checks every matrix-product count against
``torch.utils.flop_counter.FlopCounterMode`` on a real forward and backward (the Eq. 4
attention through :class:`fwbook.perf.speedup.ReferenceEagerCore`, which computes it with ``bmm``).

:func:`matmul_rate` times ``torch.mm`` at a given shape; the ``flops`` suite of
``fwbook bench`` (:func:`flops_table`) divides the FLOPs a training step does per second by
it, timed in the same interleaved blocks as the steps.
"""

from __future__ import annotations

import statistics
from typing import Iterable

import torch

from fwbook.core.data import VOCAB_SIZE, associative_retrieval, sequence_length
from fwbook.core.models import READOUT_HIDDEN, ModelConfig, build_model
from fwbook.perf.timing import (interleaved_rates, plain_step_of, rate_fields, spread_note,
                                timing_clock, unsteady_mark)

__all__ = ["FLOP_MODELS", "LARGE", "count_matmul_flops", "flops_table", "format_flops",
           "matmul_call", "matmul_rate", "parameter_count", "products_for", "training_flops"]

LARGE = 512  # the "large" product: (512 x 512) @ (512 x 512), 268 MFLOP

FLOP_MODELS = ("fast_weights", "irnn", "ln_irnn", "lstm", "alstm")
# per output element, forward; the backward is counted as twice the forward
LAYER_NORM = 8  # mean, centre, square, variance sum, scale by 1/σ, gain, bias, + rsqrt share
SIGMOID = 4  # exp, add, divide, negate
TANH = 5
SOFTMAX_CROSS_ENTROPY = 5  # max, subtract, exp, sum, log (per logit)
ADAM = 11  # per parameter: two moment updates (5), sqrt, bias corrections, eps, divide, step
CLIP = 3  # per parameter: square and sum for the norm, scale


def _matmul(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


def parameter_count(model: str, hidden: int) -> int:
    """Trainable parameters of the Table 1 model ``model`` at R = ``hidden``."""
    return sum(p.numel() for p in build_model(ModelConfig(model=model, hidden=hidden))
               .parameters())


def training_flops(model: str, hidden: int, batch: int = 128, num_pairs: int = 4,
                   inner_steps: int = 1, readout: int = READOUT_HIDDEN,
                   vocab: int = VOCAB_SIZE, classes: int = VOCAB_SIZE) -> dict:
    """FLOPs of one training update of ``model`` at R = ``hidden`` (see the module docstring).

    Returns:
        ``{"recurrent", "attention", "readout", "elementwise", "optimizer", "total",
        "matmul", "per_sequence"}``: the first three are matrix-product work (forward +
        backward), ``matmul`` their sum; ``total`` adds the element-wise and optimizer work.
    """
    if model not in FLOP_MODELS:
        raise ValueError(f"model must be one of {', '.join(FLOP_MODELS)}; got {model!r}")
    B, H, T, S = batch, hidden, sequence_length(num_pairs), inner_steps
    # read-out: Linear(H, D) -> ReLU -> Linear(D, V); backward: weight gradients and the
    # gradients of both inputs (the last hidden state needs one)
    readout_forward = _matmul(B, H, readout) + _matmul(B, readout, classes)
    readout_flops = 3 * readout_forward
    attention = 0
    elementwise = B * T * H  # C x(t) + b: gather plus the bias (forward)
    elementwise += SOFTMAX_CROSS_ENTROPY * B * classes + 2 * B * readout  # loss; bias + ReLU
    if model == "fast_weights":
        # W h(t) for t = 1..T-1 (h(0) = 0 is skipped): forward, dW, dh
        recurrent = 3 * (T - 1) * _matmul(B, H, H)
        pairs = T * (T - 1) // 2  # Σ_{t=1}^{T-1} t past states
        # (Eq. 4) past · h_s and weights · past, per inner step: 2·B·t·H each
        attention = 3 * S * 2 * 2 * B * H * pairs
        # per step: + drive, ReLU; per inner step: × η λ^k (B·t), + slow, LN, ReLU
        elementwise += (T - 1) * 2 * B * H + S * B * pairs \
            + (1 + S * (T - 1)) * (2 + LAYER_NORM) * B * H
    elif model in ("irnn", "ln_irnn"):
        # h(t) @ Wᵀ for t = 0..T-1 (h(0) = 0 still multiplied): forward T, dW T, dh T-1
        recurrent = (3 * T - 1) * _matmul(B, H, H)
        elementwise += T * (2 + (LAYER_NORM if model == "ln_irnn" else 0)) * B * H
    elif model == "lstm":
        # gates = x W_ihᵀ + h W_hhᵀ (4H each): x is one-hot (no input gradient), h(0) = 0
        recurrent = T * (2 * _matmul(B, vocab, 4 * H) + 2 * _matmul(B, H, 4 * H)) \
            + (T - 1) * _matmul(B, 4 * H, H)
        elementwise += T * B * (4 * H + 3 * SIGMOID * H + 2 * TANH * H + 3 * H)
    else:  # alstm: pre = drive + h W (H x 4.5H); 4 copies of the holographic cell
        pre = 3 * (H // 2) + 3 * H
        recurrent = (3 * T - 1) * _matmul(B, H, pre)
        copies = 4
        # gates (3 sigmoids on n), three bounds (~6 per complex unit), 2 complex products per
        # copy (6 per unit), forget and write (2 per copy unit), mean over copies, read gate
        n = H // 2
        elementwise += T * B * (pre + 3 * SIGMOID * n + 3 * 6 * n + copies * (2 * 6 * n + 2 * H)
                                + copies * H + 6 * n + H)
    elementwise *= 3  # forward + a backward of twice the forward
    parameters = parameter_count(model, hidden)
    optimizer = (ADAM + CLIP) * parameters
    matmul = recurrent + attention + readout_flops
    total = matmul + elementwise + optimizer
    return {"recurrent": recurrent, "attention": attention, "readout": readout_flops,
            "matmul": matmul, "elementwise": elementwise, "optimizer": optimizer,
            "total": total, "per_sequence": total / B}


def count_matmul_flops(function) -> int:
    """Matrix-product FLOPs ``function()`` performs, as ``FlopCounterMode`` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def matmul_rate(m: int, k: int, n: int, seconds: float = 0.2, repeats: int = 5) -> dict:
    """GFLOP/s of ``torch.mm`` on (m x k) @ (k x n) fp32 here: min / median / max over
    ``repeats`` blocks of about ``seconds`` each (one warm-up block first)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    flops = _matmul(m, k, n)
    clock_name, clock = timing_clock(torch.device("cpu"))  # the clock the training rows use
    start = clock()
    calls = 0
    while clock() - start < seconds / 2 or calls < 2:  # warm-up, size the blocks
        torch.mm(a, b, out=out)
        calls += 1
    per_call = (clock() - start) / calls
    count = max(1, int(seconds / per_call))
    rates = []
    for _ in range(repeats):
        start = clock()
        for _ in range(count):
            torch.mm(a, b, out=out)
        rates.append(count * flops / (clock() - start) / 1e9)
    return {"shape": [m, k, n], "gflops": round(statistics.median(rates), 2),
            "gflops_min": round(min(rates), 2), "gflops_max": round(max(rates), 2),
            "clock": clock_name}


def matmul_call(m: int, k: int, n: int, products: int = 1):
    """A callable doing ``products`` fp32 ``torch.mm`` (m x k) @ (k x n), and its FLOPs, for
    timing matrix kernels in the same interleaved blocks as training steps.

    Returns:
        ``(function, flops per call)``.
    """
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)

    def run() -> None:
        for _ in range(products):
            torch.mm(a, b, out=out)

    return run, products * _matmul(m, k, n)


def products_for(flops: float, m: int, k: int, n: int) -> int:
    """How many (m x k) @ (k x n) products make about ``flops`` FLOPs (at least one): a matmul
    call sized like one update, so its timed blocks last about as long as the steps' (a block
    much shorter than a scheduler time slice escapes the machine's load)."""
    return max(1, round(flops / _matmul(m, k, n)))


def flops_table(models: Iterable[str] | None = None, hidden_sizes: Iterable[int] = (20, 50, 100),
                batch_size: int = 128, device: str = "cpu", repeats: int = 5,
                steps_per_repeat: int = 5, warmup: int = 2) -> list[dict]:
    """How far each model's training step is from what this machine's matrix kernels reach.

    For every model and R: the analytic FLOPs of one update (:func:`training_flops`), the plain
    eager step's rate (all rows timed in interleaved blocks), the GFLOP/s that makes, and its
    fraction of ``torch.mm``'s rate at the model's recurrent product (B x H) @ (H x G)
    (G = H, 4H for the LSTM, 4.5H for the A-LSTM) and at 512³, timed in the same
    interleaved blocks as the steps.

    Returns:
        rows ``{"model", "hidden", "flops_per_update", "matmul_share", "seq_per_s" (+ min,
        max, spread, unsteady), "gflops", "mm_shape", "matmul_gflops_at_shape",
        "fraction_at_shape", "matmul_gflops_large", "fraction_of_large"}``.
    """
    models = tuple(models or FLOP_MODELS)
    torch_device = torch.device(device)
    batch = associative_retrieval(batch_size, generator=torch.Generator().manual_seed(0))
    batch = batch.to(torch_device)
    paths, keys = {}, {}
    for hidden in hidden_sizes:
        for model_name in models:
            name = f"{model_name}/{hidden}"
            paths[name] = plain_step_of(ModelConfig(model=model_name, hidden=hidden), batch,
                                        torch_device)
            keys[name] = (model_name, hidden)
    width = {"lstm": 4.0, "alstm": 4.5}
    shapes = sorted({(batch_size, h, int(width.get(m, 1.0) * h)) for m, h in keys.values()})
    items = {name: batch_size for name in paths}
    update_flops = {h: training_flops("fast_weights", h, batch_size)["total"]
                    for _, h in keys.values()}
    for shape in shapes:  # the matrix kernels, in the same interleaved blocks (FLOP/s)
        paths[f"mm{shape}"], items[f"mm{shape}"] = matmul_call(
            *shape, products_for(update_flops[shape[1]], *shape))
    paths["mm@large"], items["mm@large"] = matmul_call(
        LARGE, LARGE, LARGE, products_for(max(update_flops.values()), LARGE, LARGE, LARGE))
    for run_one in paths.values():
        for _ in range(warmup):
            run_one()
    stats = interleaved_rates(paths, items, repeats, steps_per_repeat, torch_device)
    rates = {shape: round(stats.pop(f"mm{shape}")["median"] / 1e9, 2) for shape in shapes}
    large = round(stats.pop("mm@large")["median"] / 1e9, 2)
    rows = []
    for name, (model_name, hidden) in keys.items():
        counts = training_flops(model_name, hidden, batch_size)
        shape = (batch_size, hidden, int(width.get(model_name, 1.0) * hidden))
        gflops = counts["total"] * stats[name]["median"] / batch_size / 1e9
        rows.append({"model": model_name, "hidden": hidden,
                     "flops_per_update": counts["total"],
                     "matmul_share": round(counts["matmul"] / counts["total"], 3),
                     **rate_fields(stats[name]), "gflops": round(gflops, 2),
                     "mm_shape": list(shape), "matmul_gflops_at_shape": rates[shape],
                     "fraction_at_shape": round(gflops / rates[shape], 3),
                     "matmul_gflops_large": large,
                     "fraction_of_large": round(gflops / large, 3)})
    return rows


def format_flops(rows: list[dict]) -> str:
    """The flops suite as text: work per update, rate, achieved GFLOP/s and fractions."""
    lines = [f"{'model':<13}{'R':>4} {'MFLOP/upd':>10} {'mm share':>8} {'seq/s':>8} "
             f"{'GFLOP/s':>8} {'mm@shape':>9} {'fraction':>8} {'of 512³':>8}"]
    for r in rows:
        lines.append(f"{r['model']:<13}{r['hidden']:>4} {r['flops_per_update'] / 1e6:>10.1f} "
                     f"{r['matmul_share']:>8.0%} {r['seq_per_s']:>8,.0f}{unsteady_mark(r)}"
                     f"{r['gflops']:>7.2f} {r['matmul_gflops_at_shape']:>9.1f} "
                     f"{r['fraction_at_shape']:>8.1%} {r['fraction_of_large']:>8.1%}")
    if rows:
        lines.append(f"plain eager training step (forward, backward, clip, Adam), batch 128; "
                     f"torch.mm at 512³: {rows[0]['matmul_gflops_large']:.1f} GFLOP/s; "
                     f"mm@shape: (B x H) @ (H x G), the model's recurrent product")
    lines.append(spread_note(rows))
    return "\n".join(lines)
