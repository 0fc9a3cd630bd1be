"""What every model of the comparison shares: token input, read-out, and the :class:`Trace`.

Every model maps a batch of token sequences (B, T) to class logits (B, V) the same way:
tokens -> (optional learned embedding) -> its own recurrence -> the last hidden state ->
100 ReLU units -> V logits. :class:`RecurrentClassifier` holds the shared parts; a model adds
its recurrence and implements :meth:`RecurrentClassifier.encode`.

Why a module of its own: ``models.py`` holds ``ModelConfig`` and the ``build_model`` registry,
so it imports every model; the models (``fast_weights.py``, ``controls.py``) import this base
instead of ``models.py``, and no import cycle exists. The base reads a ``ModelConfig`` only
through its attributes (``hidden``, ``vocab_size``, ``input_embedding``, ...), so it needs no
import of ``models.py`` either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn


@dataclass
class Trace:
    """What a model computed for one batch.

    Attributes:
        logits: (B, V) class scores from the last hidden state.
        hidden_states: (B, T, H) final hidden state after each input step.
        memory_weights: (B, T, S, T) for fast weights, else None. Entry [b, t, s, τ-1] is
            η λ^(t-τ) h(τ)ᵀ h_s(t+1): the weight inner step s of input step t puts on the past
            hidden state h(τ) (Eq. 4). Entries with τ > t are 0.
        inner_states: (B, T, S+1, H) for fast weights, else None. Entry [b, t, s] is the
            inner-loop state h_s(t+1); s = 0 is the preliminary f(W h(t) + C x(t)) and s = S
            is h(t+1).
    """

    logits: torch.Tensor
    hidden_states: torch.Tensor
    memory_weights: Optional[torch.Tensor] = None
    inner_states: Optional[torch.Tensor] = None


def check_tokens(tokens: torch.Tensor) -> None:
    """Raise ValueError unless ``tokens`` is an int64 (batch, time) tensor."""
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be an int64 tensor of shape (batch, time), got "
                         f"{tokens.dtype} of shape {tuple(tokens.shape)}")


class RecurrentClassifier(nn.Module):
    """Token input -> recurrence (the subclass's) -> read-out of the last hidden state.

    Args:
        config: a :class:`fwbook.core.models.ModelConfig`.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.readout = nn.Sequential(
            nn.Linear(config.hidden, config.readout_hidden), nn.ReLU(),
            nn.Linear(config.readout_hidden, config.num_classes))
        # e(t) (V -> E), only with input processing: the one-hot models keep their parameters
        # (and their initialisation's random numbers) exactly as before
        self.embedding = (nn.Embedding(config.vocab_size, config.input_embedding)
                          if config.input_embedding else None)

    def add_input_weights(self, size: int) -> None:
        """Create ``input_weight`` Cᵀ (I, size) and ``bias`` b (size,) for :meth:`projected_input`.

        C is uniform in ±1/√H (paper, appendix A.1 as corrected in arXiv v3), b is 0.
        """
        self.input_weight = nn.Parameter(torch.empty(self.config.input_size, size))  # Cᵀ (I, size)
        bound = 1.0 / self.config.hidden**0.5
        nn.init.uniform_(self.input_weight, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(size))  # b (size,)

    def projected_input(self, tokens: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor) -> torch.Tensor:
        """``C x(t) + b`` (B, T, out) for tokens (B, T): a row of ``weight`` (V, out) for one-hot
        x, or ``e(t) @ weight`` (E, out) after the learned embedding."""
        if self.embedding is None:
            return weight[tokens] + bias  # one-hot x: C x(t) is the token's row of Cᵀ
        return self.embedding(tokens) @ weight + bias  # (B, T, E) @ (E, out)

    def encode(self, tokens: torch.Tensor, record: bool = False) -> tuple[torch.Tensor, Optional[tuple]]:
        """Hidden states (B, T, H), and with ``record`` the model's (memory_weights,
        inner_states) for :class:`Trace`, or None when it has neither."""
        raise NotImplementedError

    def trace(self, tokens: torch.Tensor) -> Trace:
        """Logits, per-step hidden states and (fast weights) the Eq. 4 weights and inner states."""
        check_tokens(tokens)
        states, recorded = self.encode(tokens, record=True)
        return Trace(self.readout(states[:, -1]), states, *(recorded or ()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Args: tokens (B, T) int64. Returns: logits (B, V)."""
        states, _ = self.encode(tokens)
        return self.readout(states[:, -1])  # (B, V)
