"""The fast-weights RNN of Ba et al. (2016), Section 2: Eq. 1-4 and the layer-normalised inner loop.

Notation follows the paper: slow weights ``W`` (H x H) and ``C`` (H x I), fast weights ``A(t)``
(H x H, one per sequence, reset to 0 for every sequence, never trained), hidden state ``h(t)``,
decay ``λ`` (``decay``), fast learning rate ``η`` (``fast_lr``), ``S`` inner steps
(``inner_steps``), f = ReLU.

Time indices, exactly as in the paper: the step that computes ``h(t+1)`` reads ``x(t)``, uses
the slow term ``W h(t)`` (the *previous* final state) and the fast weights ``A(t)``, which are
built from ``h(1) .. h(t)``. ``h(0) = 0`` and ``A(0) = 0``.

One inner loop (:meth:`FastWeightsCore.inner_loop`) serves every path; only the memory it
reads differs (:meth:`FastWeightsCore.read`):

- ``memory="explicit"``: the B x H x H tensor A(t) of Eq. 1, read as A(t) h_s.
- ``memory="efficient"``: the past states h(1) .. h(t), read through Eq. 4 without ever forming
  A(t). It is the training hot path, and the only form that can record the Eq. 4 weights
  (:meth:`fwbook.core.classifier.RecurrentClassifier.trace`).

At t = 0 the memory is empty (A(0) = 0): the loop takes one inner step, as every further one
would give the same h. ``tests/test_models.py`` checks the two forms against each other and
against an independent float64 reference written from the equations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from fwbook.core.classifier import RecurrentClassifier

MEMORY_FORMS = ("efficient", "explicit")


@dataclass
class FastWeightsState:
    """Recurrent state of one batch after ``steps`` = t input steps.

    ``h`` (B, H) is h(t). ``past`` (B, t, H) holds h(1)..h(t) for the efficient form;
    ``fast_weights`` (B, H, H) is A(t) for the explicit form. Only one of the two is set.
    """

    h: torch.Tensor
    past: Optional[torch.Tensor] = None
    fast_weights: Optional[torch.Tensor] = None
    steps: int = 0
    history: tuple[torch.Tensor, ...] = ()  # h(1) .. h(t) (B, H) each, stacked into ``past``


class InnerLoopRecord(NamedTuple):
    """What the inner loop did, for one input step (B, S, t) / (B, S+1, H) or a whole
    sequence (B, T, S, T) / (B, T, S+1, H); see :class:`fwbook.core.classifier.Trace`."""

    memory_weights: torch.Tensor  # η λ^(t-τ) h(τ)ᵀ h_s(t+1), the Eq. 4 weight on h(τ)
    inner_states: torch.Tensor  # h_0(t+1) .. h_S(t+1)


class FastWeightsCore(nn.Module):
    """The recurrence of Eq. 1-2 (or Eq. 4) on pre-projected inputs ``C x(t) + b`` (B, T, H).

    Kept apart from the token input so the same core drives other inputs (the Catch agents feed
    it observations). Parameters: ``recurrent`` (W) and ``norm`` (the inner loop's layer norm).
    """

    def __init__(self, hidden: int, decay: float = 0.95, fast_lr: float = 0.5,
                 inner_steps: int = 1, layer_norm: bool = True, memory: str = "efficient",
                 recurrent_init: float = 0.05):
        super().__init__()
        if memory not in MEMORY_FORMS:
            raise ValueError(f"memory must be one of {', '.join(MEMORY_FORMS)}; got {memory!r}")
        self.hidden = hidden
        self.decay = float(decay)
        self.fast_lr = float(fast_lr)
        self.inner_steps = int(inner_steps)
        self.memory = memory  # may be switched between the forms at any time: same parameters
        self.recurrent = nn.Parameter(recurrent_init * torch.eye(hidden))  # W (H, H)
        # per-sample layer norm over the H units, learned gain and bias (Ba, Kiros, Hinton 2016)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()

    def initial_state(self, batch: int, like: torch.Tensor) -> FastWeightsState:
        """h(0) = 0 and an empty memory, A(0) = 0, in the form ``self.memory`` names."""
        h = like.new_zeros(batch, self.hidden)  # (B, H)
        if self.memory == "explicit":
            return FastWeightsState(h, fast_weights=like.new_zeros(batch, self.hidden, self.hidden))
        return FastWeightsState(h, past=like.new_zeros(batch, 0, self.hidden))

    def decay_powers(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        """η λ^(steps-1-k) for k = 0 .. steps-1 (steps,): its last t entries are the Eq. 3 / Eq. 4
        coefficients η λ^(t-τ) of h(1) .. h(t), oldest first."""
        decay = torch.as_tensor(self.decay, dtype=like.dtype, device=like.device)  # λ
        exponents = torch.arange(steps - 1, -1, -1, dtype=like.dtype, device=like.device)
        return self.fast_lr * torch.pow(decay, exponents)  # (Eq. 3) A(t) = η Σ_τ λ^(t-τ) h(τ) h(τ)ᵀ

    def read(self, state: FastWeightsState, hs: torch.Tensor,
             coefficients: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The fast term A(t) h_s(t+1) (B, H), and for the efficient form its weights (B, t).

        Args:
            state: the state after t >= 1 steps (A(0) = 0 is never read).
            hs: (B, H) the inner-loop state h_s(t+1).
            coefficients: (t,) η λ^(t-τ) for τ = 1..t (efficient form; None for the explicit).
        """
        if state.past is None:  # explicit A(t) of Eq. 1: a batched matrix-vector product
            return torch.bmm(state.fast_weights, hs.unsqueeze(2)).squeeze(2), None  # (B, H)
        past = state.past  # (B, t, H)  h(1) .. h(t)
        # element-wise products and sums: cheaper than batched matrix-vector products at these
        # sizes (t <= a few dozen)
        weights = (past * hs.unsqueeze(1)).sum(2) * coefficients  # (B, t)  η λ^(t-τ) h(τ)ᵀ h_s
        fast = (weights.unsqueeze(2) * past).sum(1)  # (Eq. 4) A(t) h_s = η Σ_τ λ^(t-τ) h(τ) [h(τ)ᵀ h_s]
        return fast, weights  # (B, H), (B, t)

    def inner_loop(self, slow: torch.Tensor, state: FastWeightsState,
                   coefficients: Optional[torch.Tensor] = None, record: bool = False
                   ) -> tuple[torch.Tensor, Optional[InnerLoopRecord]]:
        """The S inner steps from the slow term W h(t) + C x(t) (B, H) to h(t+1) (B, H).

        With A(0) = 0 (t = 0) every inner step gives the same state: one is taken, and h_0,
        which only the fast term reads, is computed for the record alone.

        Args:
            slow: (B, H) W h(t) + C x(t).
            state: the state after t steps, whose memory :meth:`read` reads.
            coefficients: (t,) η λ^(t-τ), for the efficient form.
            record: also return the :class:`InnerLoopRecord` of this step.
        Returns:
            h(t+1), and with ``record`` the weights (B, S, t) and h_0 .. h_S (B, S+1, H).
        """
        memory = state.steps > 0  # A(t) ≠ 0
        hs = F.relu(slow) if memory or record else None  # (B, H)  h_0(t+1) = f(W h(t) + C x(t))
        states, weights = [hs], []
        for _ in range(self.inner_steps if memory else 1):
            fast, step_weights = self.read(state, hs, coefficients) if memory else (None, None)
            normed = self.norm(slow if fast is None else slow + fast)  # (LN) per sample, over H
            hs = F.relu(normed)  # (Eq. 2) h_{s+1}(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s(t+1)])
            states.append(hs)
            weights.append(step_weights)
        if not record:
            return hs, None  # h(t+1) = h_S(t+1)
        if not memory:  # no weights on an empty memory; h_1 = .. = h_S
            weights = [slow.new_zeros(slow.shape[0], 0)] * self.inner_steps
            states += states[-1:] * (self.inner_steps - 1)
        return hs, InnerLoopRecord(torch.stack(weights, 1), torch.stack(states, 1))

    def step(self, drive: torch.Tensor, state: FastWeightsState, record: bool = False,
             powers: Optional[torch.Tensor] = None
             ) -> tuple[FastWeightsState, Optional[InnerLoopRecord]]:
        """One input step: from h(t), A(t) and ``drive`` = C x(t) + b to h(t+1), A(t+1).

        Args:
            drive: (B, H) input projection C x(t) + b.
            state: the state after step t.
            record: also return the :class:`InnerLoopRecord` (efficient form only).
            powers: :meth:`decay_powers` of at least t steps (computed here when None), to
                compute them once for a whole sequence.
        Returns:
            (the state after step t+1, the record or None).
        """
        if record and state.past is None:
            raise ValueError("memory weights are recorded by the efficient form only; "
                             "use memory='efficient' to trace them (both forms compute the same h)")
        coefficients = None
        if state.past is not None:  # η λ^(t-τ) for τ = 1..t: the last t powers
            powers = self.decay_powers(state.steps, drive) if powers is None else powers
            coefficients = powers[powers.shape[0] - state.steps:]  # (t,)
        # W h(t) + C x(t); h(0) = 0 contributes nothing
        slow = drive if state.steps == 0 else state.h @ self.recurrent.T + drive  # (B, H)
        h, recorded = self.inner_loop(slow, state, coefficients, record)  # (B, H)  h(t+1)
        if state.past is not None:  # keep h(1) .. h(t+1) for Eq. 4
            history = state.history + (h,)
            return FastWeightsState(h, past=torch.stack(history, 1), history=history,
                                    steps=state.steps + 1), recorded
        outer = h.unsqueeze(2) * h.unsqueeze(1)  # (B, H, H)  h(t+1) h(t+1)ᵀ
        a_next = self.decay * state.fast_weights + self.fast_lr * outer  # (Eq. 1) A(t+1) = λ A(t) + η h hᵀ
        return FastWeightsState(h, fast_weights=a_next, steps=state.steps + 1), recorded

    def forward(self, drive: torch.Tensor, record: bool = False
                ) -> tuple[torch.Tensor, Optional[InnerLoopRecord]]:
        """Run a whole sequence.

        Args:
            drive: (B, T, H) input projections C x(t) + b.
            record: also return the :class:`InnerLoopRecord` of every step (efficient form).
        Returns:
            hidden states h(1) .. h(T) (B, T, H), and the record (B, T, S, T) / (B, T, S+1, H)
            or None.
        """
        batch, steps, _ = drive.shape
        state = self.initial_state(batch, drive)
        powers = self.decay_powers(steps, drive) if state.past is not None else None  # (T,)
        outputs, records = [], []
        for drive_t in drive.unbind(1):  # unbind: one gradient copy, not T
            state, recorded = self.step(drive_t, state, record, powers)
            outputs.append(state.h)
            records.append(recorded)
        hidden = state.past if state.past is not None else torch.stack(outputs, 1)  # (B, T, H)
        if not record:
            return hidden, None
        weights = torch.stack([F.pad(r.memory_weights, (0, steps - r.memory_weights.shape[2]))
                               for r in records], 1)  # (B, T, S, T)
        return hidden, InnerLoopRecord(weights, torch.stack([r.inner_states for r in records], 1))


class FastWeightsRNN(RecurrentClassifier):
    """Ba et al. (2016) on tokens: C x(t) + b -> :class:`FastWeightsCore` -> the shared read-out.

    Args:
        config: a :class:`fwbook.core.models.ModelConfig` with ``model="fast_weights"``.
    """

    def __init__(self, config):
        super().__init__(config)
        self.add_input_weights(config.hidden)  # Cᵀ (I, H), b (H,)
        scale = 0.05 if config.recurrent_init is None else config.recurrent_init  # W = 0.05 I
        self.core = FastWeightsCore(config.hidden, config.decay, config.fast_lr,
                                    config.inner_steps, config.layer_norm, config.memory, scale)

    def encode(self, tokens: torch.Tensor, record: bool = False
               ) -> tuple[torch.Tensor, Optional[InnerLoopRecord]]:
        """Hidden states (B, T, H) for tokens (B, T), and with ``record`` the inner loop's."""
        drive = self.projected_input(tokens, self.input_weight, self.bias)  # (B, T, H)  C x(t) + b
        return self.core(drive, record)
