"""The runs chapters 06 and 07 look inside: what is trained, and how a committed run is read.

Three runs of the associative-retrieval task (:data:`CHAPTER_RUNS`): fast weights at K = 4 (the
model whose memory the chapters read) and, at K = 8, fast weights beside a layer-normalised RNN
without them. ``fwbook attention PROFILE --out DIRECTORY`` trains them and writes, per run, a
record (JSON) and the trained weights (a small ``.pt`` state dict) so the chapters can rebuild
the model exactly::

    fwbook attention paper --out results/attention

In the ``paper`` profile the chapters read the committed runs (:func:`load_run`); in ``smoke``
and ``quick`` they train them on the spot (:func:`chapter_runs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from fwbook.core.data import make_splits
from fwbook.core.models import build_model
from fwbook.core.records import REPO_ROOT, read_record, write_record
from fwbook.core.train import TrainConfig, train
from fwbook.experiments.grids import check_profile, retrieval_config

RESULTS_DIR = REPO_ROOT / "results" / "attention"
COMMAND = "fwbook attention"  # the command that makes these runs (named in error messages)

# The runs the chapters look at: (name, model, K). The first is the one whose memory is read;
# the K = 8 pair shows how fast weights and a layer-normalised RNN without them part.
CHAPTER_RUNS = (("fast_weights_K4", "fast_weights", 4),
                ("fast_weights_K8", "fast_weights", 8),
                ("ln_irnn_K8", "ln_irnn", 8))
RUN_NAMES = tuple(name for name, _, _ in CHAPTER_RUNS)

# Per-profile training budget (on top of fwbook.experiments.grids.PROFILE_SETTINGS).
# smoke: seconds, a barely trained model. quick: minutes on 2 CPU cores. paper: the CLI's
# default recipe (Adam 1e-3, batches of 128; ~1% test error for FW R=20 at K = 4 after 40k
# updates), cut to 10k updates to fit the busy 2-core CPU machine the records were made on;
# the paper's own lr of 1e-4 needs far longer than a CPU chapter can afford.
ATTENTION_OVERRIDES = {
    "smoke": dict(steps=60),
    "quick": dict(steps=3_000, lr=1e-3, eval_every=500, num_validation=2_000,
                  num_test=5_000),
    "paper": dict(steps=10_000, lr=1e-3, eval_every=1_000),
}


def attention_config(model: str = "fast_weights", num_pairs: int = 4, profile: str = "quick",
                     seed: int = 0, hidden: int = 20) -> TrainConfig:
    """The training configuration of one run."""
    check_profile(profile)
    return retrieval_config(model, hidden, profile, seed, num_pairs=num_pairs,
                            **ATTENTION_OVERRIDES[profile])


def run_spec(name: str) -> tuple[str, str, int]:
    """``(name, model, K)`` of a run of :data:`CHAPTER_RUNS`, by name."""
    for run in CHAPTER_RUNS:
        if run[0] == name:
            return run
    raise ValueError(f"run name must be one of {', '.join(RUN_NAMES)}; got {name!r}")


def run_paths(name: str, profile: str, seed: int, directory: str | Path = RESULTS_DIR
              ) -> tuple[Path, Path]:
    """(record JSON, state_dict file) of one run."""
    stem = Path(directory) / f"{profile}_{name}_seed{seed}"
    return stem.with_suffix(".json"), stem.with_suffix(".pt")


def train_run(name: str, model: str, num_pairs: int, profile: str, seed: int = 0,
              device: str = "auto", directory: Optional[str | Path] = None, quiet: bool = True
              ) -> tuple[dict, torch.nn.Module]:
    """Train one run; with ``directory`` also write its record and its weights there.

    Returns:
        (run record, trained model in eval mode).
    """
    config = attention_config(model, num_pairs, profile, seed)
    checkpoint = None
    if directory is not None:  # resumable: a killed run picks up from its last evaluation
        checkpoint = run_paths(name, profile, seed, directory)[1].with_suffix(".ckpt")
    record, trained = train(config, device=device, quiet=quiet, profile=profile,
                            return_model=True, checkpoint=checkpoint)
    record["run_name"] = name
    if directory is not None:
        record_path, weights_path = run_paths(name, profile, seed, directory)
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({key: tensor.detach().cpu() for key, tensor in trained.state_dict().items()},
                   weights_path)  # ~30 KB for R = 20
        record["weights_file"] = weights_path.name
        write_record(record_path, record)
    return record, trained


def load_run(name: str, profile: str = "paper", seed: int = 0,
             directory: str | Path = RESULTS_DIR) -> tuple[dict, torch.nn.Module]:
    """Read a committed run: its record and the model rebuilt from its weights file.

    Raises:
        FileNotFoundError: the record or the weights are missing (say how to make them).
        ValueError: the record was made with another configuration than this module's.
    """
    _, model_name, num_pairs = run_spec(name)
    record_path, weights_path = run_paths(name, profile, seed, directory)
    if not record_path.exists() or not weights_path.exists():
        raise FileNotFoundError(
            f"no committed run {record_path.name} (+ {weights_path.name}) in {directory}; make it "
            f"with `{COMMAND} {profile} --out {directory}`")
    record = read_record(record_path)
    expected = attention_config(model_name, num_pairs, profile, seed).to_dict()
    if record["config"] != expected:
        raise ValueError(f"{record_path} was made with a different configuration than "
                         f"fwbook.experiments.attention_runs.attention_config gives now; re-run "
                         f"`{COMMAND} {profile} --only {name}`")
    model = build_model(record["config"]["model"])
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return record, model.eval()


def chapter_runs(profile: str, seed: int = 0, device: str = "auto",
                 directory: str | Path = RESULTS_DIR) -> dict[str, tuple[dict, torch.nn.Module]]:
    """All runs: trained now (smoke, quick) or read from ``directory`` (paper)."""
    check_profile(profile)
    runs = {}
    for name, model, num_pairs in CHAPTER_RUNS:
        if profile == "paper":
            runs[name] = load_run(name, profile, seed, directory)
        else:
            record, trained = train_run(name, model, num_pairs, profile, seed, device)
            runs[name] = (record, trained.cpu())
    return runs


def record_test_split(record: dict):
    """The test split a run record was evaluated on (regenerated from its seeded config)."""
    config = record["config"]
    return make_splits(config["data_seed"], config["num_pairs"], config["num_train"],
                       config["num_validation"], config["num_test"]).test
