"""THE record format (fwbook.core.records): every committed record loads, the Table 1 and
ablation records keep their config_hash, the committed weights load; write, read and hash."""

from __future__ import annotations

import json

import pytest
import torch

from fwbook.core.models import build_model
from fwbook.core.records import (REPO_ROOT, config_hash, provenance, read_record, utc_now,
                                 write_record)
from fwbook.core.train import RETIRED_TRAIN_FIELDS, TrainConfig
from fwbook.experiments.grids import retrieval_config

RESULTS = REPO_ROOT / "results"
# folders of benchmark documents (rows + provenance), not run records; bench/grid holds records
DOCUMENT_FOLDERS = ("bench",)


def committed(folder: str) -> list:
    """The JSON files under ``results/<folder>``; fails (never passes vacuously) when none."""
    directory = RESULTS / folder
    assert directory.is_dir(), f"{directory} is missing: the committed records are gone"
    paths = sorted(directory.rglob("*.json"))
    assert paths, f"{directory} holds no records"
    return paths


def is_retrieval_record(record: dict) -> bool:
    """An associative-retrieval run record (a ``TrainConfig``), not a Catch agent's."""
    return isinstance(record.get("config"), dict) and isinstance(record["config"].get("model"), dict)


def test_every_committed_json_file_loads():
    paths = committed(".")
    records = 0
    for path in paths:
        folder = path.relative_to(RESULTS).parts[0]
        if folder in DOCUMENT_FOLDERS and "config" not in json.loads(path.read_text()):
            assert json.loads(path.read_text()), path  # a benchmark document, not empty
            continue
        record = read_record(path)  # raises for a file that is not a run record
        assert record["config_hash"] and "seed" in record, path
        records += 1
    assert records >= 100  # Table 1 alone has 57 committed records


@pytest.mark.parametrize("folder", ["table1", "ablations"])
def test_table1_and_ablation_records_keep_their_config_hash(folder):
    for path in committed(folder):
        record = read_record(path)
        stored = record["config_hash"]
        assert config_hash(record["config"]) == stored, path
        # the configuration rebuilt today hashes the same: fields added later (at their
        # default) and fields retired (at their one value) leave the hash alone
        config = TrainConfig.from_dict(record["config"])
        assert config_hash(config) == config_hash(config.to_dict()) == stored, path


def test_every_committed_retrieval_record_rebuilds_its_configuration():
    records = [(path, read_record(path)) for path in committed(".")
               if "config" in json.loads(path.read_text())]
    retrieval = [(path, record) for path, record in records if is_retrieval_record(record)]
    assert len(retrieval) >= 100
    for path, record in retrieval:
        config = TrainConfig.from_dict(record["config"])
        assert config.to_dict() == record["config"], path
        assert config_hash(config) == record["config_hash"], path


def test_committed_weights_load_into_the_model_of_their_record():
    weights = sorted(RESULTS.rglob("*.pt"))
    assert weights, "results/ holds no committed weights"
    for path in weights:
        record = read_record(path.with_suffix(".json"))
        model = build_model(record["config"]["model"])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))  # strict


def test_retired_fast_path_is_hashed_at_its_one_value_and_refused_otherwise():
    config = retrieval_config(profile="smoke")
    assert not hasattr(config, "fast_path")
    assert config.to_dict()["fast_path"] is False  # every committed record stores it
    assert RETIRED_TRAIN_FIELDS == {"fast_path": False}
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="fast_path=True is no longer a training setting"):
        TrainConfig.from_dict({**config.to_dict(), "fast_path": True})


def test_config_hash_of_an_object_and_of_its_stored_dict_agree():
    config = retrieval_config(profile="smoke")
    stored = json.loads(json.dumps(config.to_dict()))  # as a record holds it
    reordered = dict(reversed(list(stored.items())))
    assert config_hash(config) == config_hash(stored) == config_hash(reordered)
    assert len(config_hash(config)) == 16
    assert config_hash(retrieval_config(profile="smoke", seed=1)) != config_hash(config)


def test_records_are_written_whole_and_read_back(tmp_path):
    config = retrieval_config(profile="smoke")
    record = {"schema": 1, "config": config.to_dict(), "config_hash": config_hash(config),
              "seed": 0, "started_at": utc_now(), **provenance("cpu", ["src/fwbook/core"])}
    path = write_record(tmp_path / "sub" / "run.json", record)
    assert read_record(path) == record
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]  # no temporary left
    assert {"commit", "versions", "device", "host"} <= set(record)
    assert record["device"]["type"] == "cpu" and record["versions"]["torch"] == torch.__version__
    (tmp_path / "truncated.json").write_text(json.dumps(record)[:40])
    with pytest.raises(ValueError, match="not valid JSON"):
        read_record(tmp_path / "truncated.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a fwbook run record"):
        read_record(tmp_path / "other.json")
