"""The fast-weights RNN of Ba et al. (2016) and the control models it is compared with.

Notation follows the paper (Section 2): slow weights ``W`` (H x H) and ``C`` (H x I), fast
weights ``A(t)`` (H x H, one per sequence, reset to 0 for every sequence, never trained),
hidden state ``h(t)``, decay ``λ`` (``decay``), fast learning rate ``η`` (``fast_lr``) and
``S`` inner steps (``inner_steps``).

Every model maps a batch of token sequences (B, T) to class logits (B, V) through the same
read-out: the last hidden state -> 100 ReLU units -> V logits. ``model.trace(tokens)`` also
returns the per-step hidden states and, for fast weights, the Eq. 4 weights that each inner
step puts on every past hidden state (what the memory attends to).

Time indices, exactly as in the paper: the step that computes ``h(t+1)`` reads ``x(t)``, uses
the slow term ``W h(t)`` (the *previous* final state) and the fast weights ``A(t)``, which are
built from ``h(1) .. h(t)``. ``h(0) = 0`` and ``A(0) = 0``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from fwbook.core.data import VOCAB_SIZE

MODEL_NAMES = ("fast_weights", "irnn", "ln_irnn", "lstm", "alstm")
MEMORY_FORMS = ("efficient", "explicit")
READOUT_HIDDEN = 100  # units of the ReLU layer between the last hidden state and the softmax
# Fields added to ModelConfig after records were committed, with the default that reproduces
# the model those records were trained with. At that default a field is left out of
# ``to_dict()`` (and so of every ``config_hash``): existing records keep their hashes.
LATER_FIELDS = {"input_embedding": 0}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model; stored verbatim in every run record."""

    model: str = "fast_weights"  # one of MODEL_NAMES
    hidden: int = 20  # R in the paper: 20, 50 or 100
    decay: float = 0.95  # λ  (fast weights only)
    fast_lr: float = 0.5  # η  (fast weights only; 0 keeps the inner loop, turns the memory off)
    inner_steps: int = 1  # S  (fast weights only)
    layer_norm: bool = True  # LN inside the inner loop (fast weights only)
    memory: str = "efficient"  # "efficient" (Eq. 4) or "explicit" (B x H x H tensor A(t))
    recurrent_init: Optional[float] = None  # W = scale * I; None: 0.05 for FW, 1.0 for IRNNs
    vocab_size: int = VOCAB_SIZE
    num_classes: int = VOCAB_SIZE
    readout_hidden: int = READOUT_HIDDEN
    # Input processing before the recurrent layer, shared by every model: 0 feeds the one-hot
    # x(t) straight into C (what every record before the fair protocol used); E > 0 first maps
    # the token to a learned E-d embedding e(t) (N(0, 1) initialisation), and C reads e(t).
    input_embedding: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)}; got {self.model!r}")
        for name in ("hidden", "vocab_size", "num_classes", "readout_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.inner_steps, bool) or not isinstance(self.inner_steps, int) \
                or self.inner_steps < 1:
            raise ValueError(f"inner_steps (S) must be an integer >= 1, got {self.inner_steps!r}")
        if not 0.0 <= float(self.decay) <= 1.0:
            raise ValueError(f"decay (λ) must lie in [0, 1], got {self.decay!r}")
        if float(self.fast_lr) < 0.0:
            raise ValueError(f"fast_lr (η) must be >= 0, got {self.fast_lr!r}")
        if self.memory not in MEMORY_FORMS:
            raise ValueError(f"memory must be one of {', '.join(MEMORY_FORMS)}; got {self.memory!r}")
        if self.recurrent_init is not None and float(self.recurrent_init) < 0:
            raise ValueError(f"recurrent_init must be >= 0 or None, got {self.recurrent_init!r}")
        value = self.input_embedding
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"input_embedding must be an integer >= 0 (0: one-hot input), "
                             f"got {value!r}")

    @property
    def input_size(self) -> int:
        """Width of what ``C`` reads: the embedding size, or the vocabulary for one-hot x."""
        return self.input_embedding or self.vocab_size

    def to_dict(self) -> dict:
        """All fields, except those of :data:`LATER_FIELDS` still at their default."""
        payload = asdict(self)
        for name, default in LATER_FIELDS.items():
            if payload[name] == default:
                del payload[name]
        return payload


@dataclass
class Trace:
    """What a model computed for one batch.

    Attributes:
        logits: (B, V) class scores from the last hidden state.
        hidden_states: (B, T, H) final hidden state after each input step.
        memory_weights: (B, T, S, T) for fast weights, else None. Entry [b, t, s, τ-1] is
            η λ^(t-τ) h(τ)ᵀ h_s(t+1): the weight inner step s of input step t puts on the past
            hidden state h(τ) (Eq. 4). Entries with τ > t are 0.
    """

    logits: torch.Tensor
    hidden_states: torch.Tensor
    memory_weights: Optional[torch.Tensor] = None


def _init_input_weight(weight: torch.Tensor, hidden: int) -> None:
    # uniform input weights scaled by 1/sqrt(H) (paper, appendix A.1 as corrected in arXiv v3)
    bound = 1.0 / hidden**0.5
    nn.init.uniform_(weight, -bound, bound)


@dataclass
class FastWeightsState:
    """Recurrent state of one batch: ``h`` (B, H) and the fast memory.

    ``past`` (B, t, H) holds h(1)..h(t) for the efficient form; ``fast_weights`` (B, H, H) is
    A(t) for the explicit form. Only one of the two is set.
    """

    h: torch.Tensor
    past: Optional[torch.Tensor] = None
    fast_weights: Optional[torch.Tensor] = None


class FastWeightsCore(nn.Module):
    """The recurrence of Eq. 1-2 on pre-projected inputs ``C x(t) + b`` (B, T, H).

    Kept apart from the token embedding so the same core drives other inputs (the Catch
    agents feed it observations).
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
        self.memory = memory
        self.recurrent = nn.Parameter(recurrent_init * torch.eye(hidden))  # W (H, H)
        # per-sample layer norm over the H units, learned gain and bias (Ba, Kiros, Hinton 2016)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()

    def initial_state(self, batch: int, like: torch.Tensor) -> FastWeightsState:
        h = like.new_zeros(batch, self.hidden)  # h(0) = 0
        if self.memory == "explicit":
            return FastWeightsState(h, fast_weights=like.new_zeros(batch, self.hidden, self.hidden))
        return FastWeightsState(h, past=like.new_zeros(batch, 0, self.hidden))

    def _fast_term(self, state: FastWeightsState, hs: torch.Tensor,
                   decay_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A(t) h_s(t+1) (B, H) and the Eq. 4 weights on h(1)..h(t) (B, t)."""
        if state.past is not None:
            past = state.past  # (B, t, H) = h(1) .. h(t)
            # element-wise products and sums: cheaper than batched matrix-vector products for
            # these sizes, and the same operations as _forward_efficient (identical numbers)
            similarity = (past * hs.unsqueeze(1)).sum(2)  # (B, t)  h(τ)ᵀ h_s
            weights = similarity * (self.fast_lr * decay_weights)  # (B, t)  η λ^(t-τ) h(τ)ᵀ h_s
            # (Eq. 4) A(t) h_s = η Σ_τ λ^(t-τ) h(τ) [h(τ)ᵀ h_s]
            return (weights.unsqueeze(2) * past).sum(1), weights  # (B, H)
        # explicit form: A(t) h_s as a batched matrix-vector product
        return torch.bmm(state.fast_weights, hs.unsqueeze(2)).squeeze(2), None  # (B, H)

    def step(self, drive: torch.Tensor, state: FastWeightsState, record: bool = False
             ) -> tuple[FastWeightsState, Optional[torch.Tensor]]:
        """One input step: from h(t), A(t) and ``drive`` = C x(t) + b to h(t+1), A(t+1).

        Args:
            drive: (B, H) input projection C x(t) + b.
            state: the state after step t.
            record: also return the Eq. 4 weights (B, S, t) on h(1)..h(t).
        Returns:
            (new state, weights or None).
        """
        h = state.h  # (B, H) h(t)
        slow = h @ self.recurrent.T + drive  # (B, H)  W h(t) + C x(t)
        hs = F.relu(slow)  # (B, H)  preliminary h_0(t+1) = f(W h(t) + C x(t))
        if record and state.past is None:
            raise ValueError("memory weights are recorded by the efficient form only; "
                             "use memory='efficient' to trace them (both forms compute the same h)")
        decay_weights = None
        if state.past is not None:
            steps_seen = state.past.shape[1]
            # λ^(t-τ) for τ = 1..t  (oldest first)
            exponents = torch.arange(steps_seen - 1, -1, -1, device=h.device, dtype=h.dtype)
            decay_weights = torch.pow(torch.as_tensor(self.decay, dtype=h.dtype), exponents)
        recorded = []
        for _ in range(self.inner_steps):
            fast, weights = self._fast_term(state, hs, decay_weights)
            # (Eq. 2) h_{s+1}(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s(t+1)])
            hs = F.relu(self.norm(slow + fast))
            if record:
                recorded.append(weights)
        h_next = hs  # (B, H)  h(t+1) = h_S(t+1)
        if state.past is not None:
            new_state = FastWeightsState(h_next, past=torch.cat([state.past, h_next.unsqueeze(1)], 1))
        else:
            # (Eq. 1) A(t+1) = λ A(t) + η h(t+1) h(t+1)ᵀ
            outer = h_next.unsqueeze(2) * h_next.unsqueeze(1)  # (B, H, H)
            new_state = FastWeightsState(h_next, fast_weights=self.decay * state.fast_weights
                                         + self.fast_lr * outer)
        weights = torch.stack(recorded, 1) if record else None  # (B, S, t)
        return new_state, weights

    def forward(self, drive: torch.Tensor, record: bool = False
                ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Run a whole sequence.

        Args:
            drive: (B, T, H) input projections.
            record: also return the Eq. 4 weights.
        Returns:
            hidden states (B, T, H) and weights (B, T, S, T) or None.
        """
        batch, steps, _ = drive.shape
        if not record and self.memory == "efficient":
            return self._forward_efficient(drive), None
        state = self.initial_state(batch, drive)
        outputs, all_weights = [], []
        for t, drive_t in enumerate(drive.unbind(1)):  # unbind: one gradient copy, not T
            state, weights = self.step(drive_t, state, record)
            outputs.append(state.h)
            if record:
                all_weights.append(F.pad(weights, (0, steps - weights.shape[2])))  # (B, S, T)
        weights = torch.stack(all_weights, 1) if record else None  # (B, T, S, T)
        return torch.stack(outputs, 1), weights  # (B, T, H)


    def _forward_efficient(self, drive: torch.Tensor) -> torch.Tensor:
        """Eq. 4 over a whole sequence, the same maths as :meth:`step` with fewer operations.

        The training hot path (measured by ``fwbook bench``): η λ^k is computed once, h(0) = 0
        and A(0) = 0 skip their zero terms, and the attention over T <= a few dozen past
        states uses element-wise products and sums, cheaper than batched matrix-vector
        products at these sizes. ``tests/test_models.py`` checks it against the explicit form,
        which runs through :meth:`step`.

        Args:
            drive: (B, T, H) input projections.
        Returns:
            hidden states (B, T, H).
        """
        steps = drive.shape[1]
        # η λ^(T-1-k) for k = 0..T-1; its last t entries are η λ^(t-τ) for τ = 1..t
        powers = self.fast_lr * torch.pow(
            torch.as_tensor(self.decay, dtype=drive.dtype, device=drive.device),
            torch.arange(steps - 1, -1, -1, dtype=drive.dtype, device=drive.device))
        outputs: list[torch.Tensor] = []
        past = None  # (B, t, H) = h(1) .. h(t)
        for t, drive_t in enumerate(drive.unbind(1)):
            if t == 0:
                slow = drive_t  # (B, H)  W h(0) + C x(0) with h(0) = 0
                hs = slow
                for _ in range(self.inner_steps):
                    hs = F.relu(self.norm(slow))  # A(0) = 0: no fast term
            else:
                slow = outputs[-1] @ self.recurrent.T + drive_t  # (B, H)  W h(t) + C x(t)
                hs = F.relu(slow)  # (B, H)  h_0(t+1)
                decay_weights = powers[steps - t:]  # (t,)  η λ^(t-τ)
                for _ in range(self.inner_steps):
                    # (Eq. 4) A(t) h_s = η Σ_τ λ^(t-τ) h(τ) [h(τ)ᵀ h_s]
                    weights = (past * hs.unsqueeze(1)).sum(2) * decay_weights  # (B, t)
                    fast = (weights.unsqueeze(2) * past).sum(1)  # (B, H)
                    hs = F.relu(self.norm(slow + fast))  # (Eq. 2)
            outputs.append(hs)
            past = torch.stack(outputs, 1)  # (B, t+1, H)
        return past


class RecurrentClassifier(nn.Module):
    """Token embedding -> recurrent core -> read-out of the last hidden state."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden
        self.readout = nn.Sequential(
            nn.Linear(hidden, config.readout_hidden), nn.ReLU(),
            nn.Linear(config.readout_hidden, config.num_classes))
        # e(t) (V -> E), only with input processing: the one-hot models keep their parameters
        # (and their initialisation's random numbers) exactly as before
        self.embedding = (nn.Embedding(config.vocab_size, config.input_embedding)
                          if config.input_embedding else None)

    def projected_input(self, tokens: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor) -> torch.Tensor:
        """``C x(t) + b`` (B, T, out) for tokens (B, T): a row of ``weight`` (V, out) for one-hot
        x, or ``e(t) @ weight`` (E, out) after the learned embedding."""
        if self.embedding is None:
            return weight[tokens] + bias  # one-hot x: C x(t) is the token's row of Cᵀ
        return self.embedding(tokens) @ weight + bias  # (B, T, E) @ (E, out)

    def encode(self, tokens: torch.Tensor, record: bool = False
               ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Hidden states (B, T, H) and memory weights (B, T, S, T) or None."""
        raise NotImplementedError

    def trace(self, tokens: torch.Tensor) -> Trace:
        """Logits, per-step hidden states and (fast weights) the Eq. 4 memory weights."""
        _check_tokens(tokens, self.config.vocab_size)
        states, weights = self.encode(tokens, record=True)
        return Trace(self.readout(states[:, -1]), states, weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Args: tokens (B, T) int64. Returns: logits (B, V)."""
        states, _ = self.encode(tokens)
        return self.readout(states[:, -1])  # (B, V)


def _check_tokens(tokens: torch.Tensor, vocab_size: int) -> None:
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be an int64 tensor of shape (batch, time), got "
                         f"{tokens.dtype} of shape {tuple(tokens.shape)}")


class FastWeightsRNN(RecurrentClassifier):
    """Ba et al. (2016), Eq. 1-2 (explicit A(t)) or Eq. 4 (attention to past states)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        hidden = config.hidden
        self.input_weight = nn.Parameter(torch.empty(config.input_size, hidden))  # Cᵀ (I, H)
        _init_input_weight(self.input_weight, hidden)
        self.bias = nn.Parameter(torch.zeros(hidden))
        scale = 0.05 if config.recurrent_init is None else config.recurrent_init
        self.core = FastWeightsCore(hidden, config.decay, config.fast_lr, config.inner_steps,
                                    config.layer_norm, config.memory, scale)

    def encode(self, tokens, record=False):
        drive = self.projected_input(tokens, self.input_weight, self.bias)  # (B, T, H)  C x(t) + b
        return self.core(drive, record)


class IRNN(RecurrentClassifier):
    """ReLU RNN with identity-initialised recurrence (Le, Jaitly, Hinton 2015).

    With ``layer_norm=True`` it is the LN-IRNN: h(t+1) = f(LN[W h(t) + C x(t)]), i.e. the fast
    weights model with the memory and inner loop removed.
    """

    def __init__(self, config: ModelConfig, layer_norm: bool = False):
        super().__init__(config)
        hidden = config.hidden
        self.input_weight = nn.Parameter(torch.empty(config.input_size, hidden))  # Cᵀ (I, H)
        _init_input_weight(self.input_weight, hidden)
        self.bias = nn.Parameter(torch.zeros(hidden))
        scale = 1.0 if config.recurrent_init is None else config.recurrent_init
        self.recurrent = nn.Parameter(scale * torch.eye(hidden))  # W (H, H)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()

    def encode(self, tokens, record=False):
        drive = self.projected_input(tokens, self.input_weight, self.bias)  # (B, T, H)
        h = drive.new_zeros(drive.shape[0], drive.shape[2])  # (B, H)
        outputs = []
        for t in range(drive.shape[1]):
            h = F.relu(self.norm(h @ self.recurrent.T + drive[:, t]))  # h(t+1) = f(W h(t) + C x(t))
            outputs.append(h)
        return torch.stack(outputs, 1), None  # (B, T, H)


class LSTMClassifier(RecurrentClassifier):
    """``nn.LSTM`` over one-hot inputs (or the learned embedding), with the shared read-out."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.lstm = nn.LSTM(config.input_size, config.hidden, batch_first=True)

    def encode(self, tokens, record=False):
        if self.embedding is not None:
            inputs = self.embedding(tokens)  # (B, T, E)
        else:
            inputs = F.one_hot(tokens, self.config.vocab_size).to(self.lstm.weight_ih_l0.dtype)
        states, _ = self.lstm(inputs)  # (B, T, H)
        return states, None


def build_model(config: ModelConfig | dict, seed: Optional[int] = None) -> RecurrentClassifier:
    """Build the model a :class:`ModelConfig` (or its dict form) describes.

    With ``seed`` the initial parameters are those of ``torch.manual_seed(seed)`` followed by
    the build, and the global random state is left as it was.
    """
    if isinstance(config, dict):
        config = ModelConfig(**config)
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(config)
    if config.model == "fast_weights":
        return FastWeightsRNN(config)
    if config.model == "irnn":
        return IRNN(config, layer_norm=False)
    if config.model == "ln_irnn":
        return IRNN(config, layer_norm=True)
    if config.model == "lstm":
        return LSTMClassifier(config)
    if config.model == "alstm":
        from fwbook.core.controls import AssociativeLSTMClassifier
        return AssociativeLSTMClassifier(config)
    raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)}; got {config.model!r}")


def variant(model: RecurrentClassifier, **changes) -> RecurrentClassifier:
    """The same trained parameters under other settings: the one way to re-form a model.

    ``changes`` are :class:`ModelConfig` fields that change no parameter's shape (``memory``,
    ``fast_lr``, ``decay``, ``inner_steps``, ...). The result is a new model whose ``config``
    says what it computes; ``model`` itself is left untouched. It sits on the same device, in
    the same dtype and the same train/eval mode.

    Raises:
        ValueError: a change that alters the parameters (another model, another R, ...).
    """
    config = replace(model.config, **changes)
    reference = next(model.parameters())
    # seeded: the global RNG is left alone; moved first so float64 values load without rounding
    derived = build_model(config, seed=0).to(device=reference.device, dtype=reference.dtype)
    try:
        derived.load_state_dict(model.state_dict())
    except RuntimeError as error:
        raise ValueError(f"variant: {', '.join(f'{k}={v!r}' for k, v in changes.items())} "
                         f"changes the model's parameters, not only its settings") from error
    return derived.train(model.training)
