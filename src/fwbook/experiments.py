"""Named configurations and profiles: what every chapter, sweep and table trains.

A profile fixes the budget of a run:

* ``smoke``: seconds, small data; for tests that only check that things run.
* ``quick``: minutes on 2 CPU cores; for CI figure regeneration and readers without a GPU.
* ``paper``: the paper's data sizes and learning rate; the published book reads these runs'
  committed records.

A notebook never trains with hidden settings of its own: it asks this module for a
configuration by name and profile.
"""

from __future__ import annotations

from typing import Any

from .models import ModelConfig
from .train import TrainConfig, with_overrides

PROFILES = ("smoke", "quick", "paper")

# Per-profile training budget. "paper" keeps the paper's learning rate of 1e-4 (PAPER.md).
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": dict(num_train=2_000, num_validation=500, num_test=500, steps=60, eval_every=20),
    "quick": dict(num_train=100_000, num_validation=10_000, num_test=20_000, steps=4_000,
                  eval_every=250),
    "paper": dict(num_train=100_000, num_validation=10_000, num_test=20_000, steps=100_000,
                  eval_every=2_000, lr=1e-4),
}

TABLE1_MODELS = ("irnn", "lstm", "alstm", "fast_weights")
TABLE1_HIDDEN = (20, 50, 100)

# Table 1 of Ba et al. (2016), test classification error in %, as transcribed in PAPER.md.
PAPER_TABLE1 = {
    ("irnn", 20): 62.11, ("irnn", 50): 60.23, ("irnn", 100): 0.34,
    ("lstm", 20): 60.81, ("lstm", 50): 1.85, ("lstm", 100): 0.0,
    ("alstm", 20): 60.13, ("alstm", 50): 1.62, ("alstm", 100): 0.0,
    ("fast_weights", 20): 1.81, ("fast_weights", 50): 0.0, ("fast_weights", 100): 0.0,
}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    return profile


def retrieval_config(model: str = "fast_weights", hidden: int = 20, profile: str = "quick",
                     seed: int = 0, **overrides: Any) -> TrainConfig:
    """The configuration of one associative-retrieval run.

    Args:
        model: one of ``fwbook.models.MODEL_NAMES``.
        hidden: R, the number of hidden units.
        profile: smoke, quick or paper.
        seed: initialisation and data-order seed (the data set itself is fixed by data_seed).
        overrides: further fields, top-level (``lr=3e-4``) or of the model (``model.fast_lr=0``
            spelled ``fast_lr=0``: names that belong to ``ModelConfig`` go to the model).
    """
    check_profile(profile)
    model_fields = set(ModelConfig.__dataclass_fields__)
    model_changes = {key: value for key, value in overrides.items() if key in model_fields}
    top = {key: value for key, value in overrides.items() if key not in model_fields}
    settings = {**PROFILE_SETTINGS[profile], **top}
    base = TrainConfig(model=ModelConfig(model=model, hidden=hidden, **model_changes), seed=seed)
    return with_overrides(base, **settings)
