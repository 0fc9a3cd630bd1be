"""The Eq. 4 recurrence with a hand-derived backward, and the training step built on it.

``FastWeightsCore.forward`` (Eq. 4 form) leaves the backward of the T-step recurrence to
autograd, which records every small operation of every step and replays each one backward.
:class:`Eq4Recurrence` computes the same forward (Eq. 1-2 through Eq. 4, the LN inner loop)
and supplies its own backward, derived by hand below:

- the attention of Eq. 4 at step t is two batched products with the past states,
  ``a = η λ^(t-1-τ) (past · h_s)`` and ``fast = a @ past``; backward, the gradient of the
  past states from both products is one batched product ``[a, g_a] @ [g_fast; h_s]``;
- layer norm goes through ATen's own ``native_layer_norm_backward``, its gain and bias
  gradients summed once over all steps at the end;
- the gradient of the recurrent weights, Σ_t g_slow(t)ᵀ h(t-1), is one (H x B·T) @ (B·T x H)
  product after the loop instead of T small ones, and the input gradients of all steps are
  returned as one tensor.

``tests/test_fused_eq4.py`` checks outputs and every parameter gradient against the plain
autograd path (fp32, within 1e-5), for S = 1 and 2 inner steps, with and without layer norm.

:func:`fused_training_step` is the training step around it (same contract as
:func:`fwbook.core.steps.compiled_training_step`): forward, cross-entropy, the hand-derived
backward, foreach clipping and Adam; ``compile=True`` also hands it to ``torch.compile``.
``fwbook bench --suite speedup`` measures every variant against the plain eager reference.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
import torch.nn.functional as F

from fwbook.core.steps import CompiledStep

__all__ = ["Eq4Recurrence", "eq4_states", "fused_loss", "fused_training_step", "supports"]


def _powers(decay: float, fast_lr: float, steps: int, like: torch.Tensor) -> torch.Tensor:
    """η λ^(T-1-k) for k = 0..T-1 (T,), computed exactly as ``FastWeightsCore.decay_powers`` does."""
    return fast_lr * torch.pow(torch.as_tensor(decay, dtype=like.dtype, device=like.device),
                               torch.arange(steps - 1, -1, -1, dtype=like.dtype,
                                            device=like.device))


class Eq4Recurrence(torch.autograd.Function):
    """hidden states (B, T, H) = Eq. 4 recurrence(drive (B, T, H), W (H, H), LN gain, bias).

    ``gain`` and ``bias`` (H,) are the layer norm's, or both None for no layer norm.
    ``bmm=True`` computes the attention with batched matrix products instead of element-wise
    products and sums (the same numbers within rounding; kept because ``bench`` measures it:
    at these sizes it is the slower of the two).
    """

    @staticmethod
    def forward(ctx, drive, recurrent, gain, bias, decay: float, fast_lr: float,
                inner_steps: int, eps: float, bmm: bool = False):
        batch, steps, hidden = drive.shape
        powers = _powers(decay, fast_lr, steps, drive)  # (T,)
        states = drive.new_empty(batch, steps, hidden)  # (B, T, H)  h(1) .. h(T)
        weight_t = recurrent.t()
        saved = []  # per step: [(h_s in, a, z, mean, rstd, u) for each inner step]
        for t in range(steps):
            if t == 0:
                slow = drive[:, 0]  # (B, H)  W h(0) + C x(0) with h(0) = 0
            else:
                slow = torch.addmm(drive[:, t], states[:, t - 1], weight_t)  # W h(t) + C x(t)
            hs = torch.relu(slow)  # (B, H)  h_0(t+1)
            past = states[:, :t]  # (B, t, H)  h(1) .. h(t), a view
            decay_weights = powers[steps - t:]  # (t,)  η λ^(t-τ)
            inner = []
            for _ in range(inner_steps if t else 1):  # A(0) = 0: every inner step is the same
                if t:
                    # (Eq. 4) A(t) h_s = η Σ_τ λ^(t-τ) h(τ) [h(τ)ᵀ h_s]
                    # element-wise products and sums: cheaper than batched matrix-vector
                    # products at t <= a few dozen (and the same operations as the plain path)
                    if bmm:
                        a = torch.bmm(past, hs.unsqueeze(2)).squeeze(2) * decay_weights
                        z = torch.baddbmm(slow.unsqueeze(1), a.unsqueeze(1), past).squeeze(1)
                    else:
                        a = (past * hs.unsqueeze(1)).sum(2) * decay_weights  # (B, t)
                        z = slow + (a.unsqueeze(2) * past).sum(1)  # (B, H)
                else:
                    a, z = None, slow  # (B, H)
                if gain is not None:
                    u, mean, rstd = torch.native_layer_norm(z, [hidden], gain, bias, eps)
                else:
                    u, mean, rstd = z, None, None
                inner.append((hs, a, z, mean, rstd, u))
                hs = torch.relu(u)  # (Eq. 2) h_{s+1}(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s])
            states[:, t] = hs
            saved.append((slow, inner))
        ctx.saved = saved
        ctx.powers = powers
        ctx.layer_norm = gain is not None
        ctx.eps = eps
        ctx.bmm = bmm
        ctx.save_for_backward(states, recurrent, gain, bias)
        return states

    @staticmethod
    def backward(ctx, grad_states):
        states, recurrent, gain, bias = ctx.saved_tensors
        batch, steps, hidden = states.shape
        powers = ctx.powers
        # dL/dh(t) from the outputs; the attention of later steps adds into it in place
        grad_h = grad_states.contiguous().clone()  # (B, T, H)
        grad_slow = grad_states.new_empty(batch, steps, hidden)  # (B, T, H) = dL/d drive
        grad_u_all, z_all, mean_all, rstd_all = [], [], [], []
        for t in range(steps - 1, -1, -1):
            slow, inner = ctx.saved[t]
            if t < steps - 1:  # h(t) also feeds slow(t+1) = W h(t) + ...
                gh = torch.addmm(grad_h[:, t], grad_slow[:, t + 1], recurrent)  # (B, H)
            else:
                gh = grad_h[:, t]
            past = states[:, :t]  # (B, t, H)
            decay_weights = powers[steps - t:]
            g_slow = None
            for hs, a, z, mean, rstd, u in reversed(inner):
                g_u = torch.ops.aten.threshold_backward(gh, u, 0)  # relu
                if ctx.layer_norm:
                    g_z = torch.ops.aten.native_layer_norm_backward(
                        g_u, z, [hidden], mean, rstd, gain, bias, [True, False, False])[0]
                    grad_u_all.append(g_u)
                    z_all.append(z)
                    mean_all.append(mean)
                    rstd_all.append(rstd)
                else:
                    g_z = g_u
                g_slow = g_z if g_slow is None else g_slow + g_z  # z = slow + fast
                if not t:
                    break
                if ctx.bmm:
                    g_sim = torch.bmm(past, g_z.unsqueeze(2)).squeeze(2) * decay_weights
                    gh = torch.bmm(g_sim.unsqueeze(1), past).squeeze(1)
                    # both outer products as one batched product into the strided view
                    grad_h[:, :t].baddbmm_(torch.stack((a, g_sim), 2), torch.stack((g_z, hs), 1))
                    continue
                g_sim = (past * g_z.unsqueeze(1)).sum(2) * decay_weights  # (B, t)  fast = a past
                gh = (g_sim.unsqueeze(2) * past).sum(1)  # (B, H)  a = η λ^(t-τ) past · h_s
                # the past states get a ⊗ g_fast (from fast) and g_sim ⊗ h_s (from a)
                grad_h[:, :t].addcmul_(a.unsqueeze(2), g_z.unsqueeze(1))
                grad_h[:, :t].addcmul_(g_sim.unsqueeze(2), hs.unsqueeze(1))
            if t:
                g_slow = g_slow + torch.ops.aten.threshold_backward(gh, slow, 0)  # h_0 = f(slow)
            grad_slow[:, t] = g_slow
        # Σ_t g_slow(t)ᵀ h(t-1): one product over all steps and sequences
        grad_recurrent = grad_slow[:, 1:].reshape(-1, hidden).t().mm(
            states[:, :-1].reshape(-1, hidden))  # (H, H)
        grad_gain = grad_bias = None
        if ctx.layer_norm:
            g_u = torch.cat(grad_u_all)  # (N, H)
            normed = (torch.cat(z_all) - torch.cat(mean_all)) * torch.cat(rstd_all)  # x̂
            grad_gain = (g_u * normed).sum(0)
            grad_bias = g_u.sum(0)
        ctx.saved = None
        return grad_slow, grad_recurrent, grad_gain, grad_bias, None, None, None, None, None


def supports(model: torch.nn.Module) -> bool:
    """True for a fast-weights classifier in the Eq. 4 form (what :class:`Eq4Recurrence` computes)."""
    core = getattr(model, "core", None)
    return (hasattr(model, "input_weight") and core is not None
            and getattr(core, "memory", None) == "efficient"
            and isinstance(core.norm, (torch.nn.LayerNorm, torch.nn.Identity)))


def eq4_states(core, drive: torch.Tensor, bmm: bool = False) -> torch.Tensor:
    """``core(drive)[0]`` for a ``FastWeightsCore`` in the Eq. 4 form, through :class:`Eq4Recurrence`.

    Args:
        core: a :class:`fwbook.core.models.FastWeightsCore` with ``memory="efficient"``.
        drive: (B, T, H) input projections C x(t) + b.
    Returns:
        hidden states (B, T, H).
    """
    norm = core.norm
    if isinstance(norm, torch.nn.LayerNorm):
        gain, bias, eps = norm.weight, norm.bias, norm.eps
    else:
        gain, bias, eps = None, None, 0.0
    return Eq4Recurrence.apply(drive, core.recurrent, gain, bias, core.decay, core.fast_lr,
                               core.inner_steps, eps, bmm)


def fused_loss(model, inputs: torch.Tensor, targets: torch.Tensor, bmm: bool = False
               ) -> torch.Tensor:
    """Mean cross-entropy of a fast-weights classifier, its recurrence through Eq4Recurrence.

    Args:
        model: a :class:`fwbook.core.models.FastWeightsRNN` with ``memory="efficient"``.
        inputs: (B, T) tokens; targets: (B,) classes.
    """
    drive = model.input_weight[inputs] + model.bias  # (B, T, H)  C x(t) + b
    states = eq4_states(model.core, drive, bmm)  # (B, T, H)
    return F.cross_entropy(model.readout(states[:, -1]), targets)


class FusedStep(CompiledStep):
    """``step(inputs, targets) -> (loss, grad_norm)``: :func:`fused_loss` with its hand-derived
    backward, foreach clipping and Adam; when ``compile``, the loss, clipping and Adam compiled
    by ``torch.compile`` as in the default compiled step.

    ``compile_s`` is the first call's time (compiling included when ``compile``).
    """

    def __init__(self, model, optimizer, clip_norm: Optional[float], compile: bool = False,
                 fallback: bool = True, bmm: bool = False, backend: str = "inductor"):
        if not supports(model):
            raise ValueError("the fused step needs a fast-weights model with memory='efficient'")
        super().__init__(model, optimizer, clip_norm, fallback=fallback, backend=backend,
                         compile_update=compile)
        loss = functools.partial(fused_loss, model, bmm=bmm)
        self._eager_loss = loss
        self._compiled_loss = (torch.compile(loss, fullgraph=True, dynamic=False,
                                             backend=backend) if compile else loss)
        self._loss = self._compiled_loss
        self.compile = compile


def fused_training_step(model, optimizer, clip_norm: Optional[float], compile: bool = False,
                        fallback: bool = True, bmm: bool = False, backend: str = "inductor"
                        ) -> FusedStep:
    """The hand-derived-backward training step (see the module docstring).

    Args:
        model: a fast-weights classifier in the Eq. 4 form, on its device, in training mode.
        optimizer: its Adam optimizer (switched to the foreach implementation).
        clip_norm: global gradient-norm threshold, None for no clipping.
        compile: also ``torch.compile`` the loss (forward and the hand-derived backward).
        fallback: on a compile failure warn and run it eagerly (False: raise).
        bmm: the attention as batched matrix products (slower here; for the benchmark).
        backend: torch.compile backend ("aot_eager" only checks the tracing).
    Returns:
        a :class:`FusedStep`; calling it returns (loss, gradient norm before clipping).
    """
    return FusedStep(model, optimizer, clip_norm, compile, fallback, bmm, backend)
