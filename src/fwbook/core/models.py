"""ModelConfig, and the registry that builds every model of the comparison from it.

The models live in their own modules: the fast-weights RNN of Ba et al. (2016) in
:mod:`fwbook.core.fast_weights`, the controls (IRNN, LN-IRNN, LSTM, A-LSTM) in
:mod:`fwbook.core.controls`, the token input and read-out they share in
:mod:`fwbook.core.classifier`. This module imports them (for :func:`build_model`) and none of
them imports this one. Their classes are importable from here too.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional, TypeVar

import torch

from fwbook.core.classifier import RecurrentClassifier, Trace
from fwbook.core.controls import IRNN, AssociativeLSTMClassifier, LSTMClassifier
from fwbook.core.data import VOCAB_SIZE
from fwbook.core.fast_weights import MEMORY_FORMS, FastWeightsCore, FastWeightsRNN, FastWeightsState

T = TypeVar("T")

__all__ = ["MODEL_BUILDERS", "MODEL_NAMES", "MEMORY_FORMS", "READOUT_HIDDEN", "LATER_FIELDS",
           "ModelConfig", "build_model", "seeded", "variant", "RecurrentClassifier", "Trace",
           "FastWeightsCore", "FastWeightsState", "FastWeightsRNN", "IRNN", "LSTMClassifier",
           "AssociativeLSTMClassifier"]

# The registry: ModelConfig.model -> what builds that model from its ModelConfig
MODEL_BUILDERS = {
    "fast_weights": FastWeightsRNN,  # Ba et al. (2016), Eq. 1-4
    "irnn": IRNN,  # Le, Jaitly, Hinton (2015)
    "ln_irnn": functools.partial(IRNN, layer_norm=True),  # fast weights without the memory
    "lstm": LSTMClassifier,
    "alstm": AssociativeLSTMClassifier,  # Danihelka et al. (2016)
}
MODEL_NAMES = tuple(MODEL_BUILDERS)
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


def build_model(config: ModelConfig | dict, seed: Optional[int] = None) -> RecurrentClassifier:
    """Build the model a :class:`ModelConfig` (or its dict form) describes.

    With ``seed`` the initial parameters are those of ``torch.manual_seed(seed)`` followed by
    the build, and the global random state is left as it was.
    """
    if isinstance(config, dict):
        config = ModelConfig(**config)
    build = MODEL_BUILDERS[config.model]  # ModelConfig checked the name
    return build(config) if seed is None else seeded(seed, build, config)


def seeded(seed: int, build: Callable[..., T], *args) -> T:
    """``build(*args)`` right after ``torch.manual_seed(seed)``, the global random state left
    as it was: the one seeded build of every model (the Catch agents' included)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(*args)


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
