"""bench: the suites run at tiny sizes, their figures draw, the Performance chapter executes."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from fwbook import bench  # noqa: E402
from fwbook.data import associative_retrieval  # noqa: E402
from fwbook.models import ModelConfig, build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_reference_core_equals_package_model():
    """The frozen eager yardstick computes the same function as the package's model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=12))
    reference = bench.reference_eager_model(12)
    reference.load_state_dict(model.state_dict())
    tokens = associative_retrieval(32, generator=torch.Generator().manual_seed(1)).inputs
    assert torch.allclose(reference(tokens), model(tokens), atol=1e-5)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(1)
    return {suite: bench.run_suite(suite, device="cpu", output_dir=directory, quick=True,
                                   repeats=1) for suite in bench.SUITES}, directory


def test_suites_write_documents_with_provenance(documents):
    results, directory = documents
    for suite in bench.SUITES:
        document = json.loads((directory / f"{suite}.json").read_text())
        assert document["suite"] == suite and document["rows"]
        assert {"commit", "versions", "device"} <= set(document)
        assert document["device"]["type"] == "cpu"
    speedup = results["speedup"]["rows"]
    assert {r["path"] for r in speedup} == {"reference", "eager"}
    # quick mode compiles nothing, so train's default here is the eager path
    assert [r["path"] for r in speedup if r["default"]] == ["eager"]
    summary = bench.speedup_summary(results["speedup"])
    assert summary[0].startswith("R = 8, as multiples of the plain eager reference (")
    assert "\n  eager path " in summary[0] and summary[0].endswith("[train's default]")
    assert all(r["seq_per_s"] > 0 for r in speedup)
    assert {r["memory"] for r in results["cost"]["rows"]} == {"explicit", "efficient"}
    hours = bench.grid_hours(results["sweep"]["rows"])
    assert hours["single_hours"] > 0 and hours["batched_hours"] > 0


def test_grid_hours_use_the_profile_budget():
    rows = [{"single_updates_per_s": 10.0, "batched_updates_per_s": 20.0},
            {"single_updates_per_s": 5.0, "batched_updates_per_s": 5.0}]
    # 3,600 updates: 360 s + 720 s one by one, 180 s + 720 s batched
    assert bench.grid_hours(rows, steps=3_600) == {"single_hours": 0.3, "batched_hours": 0.25,
                                                   "steps": 3_600}
    assert bench.grid_hours(rows)["steps"] == 40_000  # the paper profile's budget


@pytest.mark.parametrize("suite, draw", [("speedup", bench.plot_speedup),
                                         ("cost", bench.plot_memory_cost),
                                         ("sweep", bench.plot_sweep),
                                         ("tta", bench.plot_time_to_accuracy)])
def test_figures_name_the_hardware(documents, suite, draw):
    figure = draw(documents[0][suite])
    titles = [axis.get_title() for axis in figure.axes] + [
        figure._suptitle.get_text() if figure._suptitle else ""]
    assert any("cpu" in title for title in titles)


def test_committed_results_are_readable():
    for suite in bench.SUITES:
        document = bench.load_bench(suite)
        if document is not None:
            assert document["rows"] and document["device"]["name"]
