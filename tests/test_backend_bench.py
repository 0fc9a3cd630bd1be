"""The committed local-vs-Ray sweep measurement: its figures follow from its own sweeps."""

import statistics

import pytest

from fwbook.perf import backend_bench
from fwbook.perf.bench import load_bench


def test_sweeps_alternate_abba_and_name_a_real_command(tmp_path):
    assert backend_bench.abba_order(3) == ["local", "ray", "ray", "local", "local", "ray"]
    command = backend_bench.sweep_command("ray", tmp_path, 4, 2)
    assert command[1:4] == ["-m", "fwbook", "sweep"] and command[-2:] == ["--backend", "ray"]
    assert ["--limit", "4"] == command[command.index("--limit"):command.index("--limit") + 2]


def test_the_committed_measurement_is_consistent_with_its_sweeps():
    document = load_bench("backends")
    assert document is not None, "results/bench/backends.json is missing"
    settings = document["settings"]
    runs = len(settings["runs"])
    assert settings["order"][:4] == ["local", "ray", "ray", "local"]
    assert [s["backend"] for s in document["sweeps"]] == settings["order"]
    for sweep in document["sweeps"]:
        assert sweep["runs_per_hour"] == pytest.approx(runs * 3600 / sweep["wall_s"], rel=1e-3)
    medians = {backend: statistics.median(s["runs_per_hour"] for s in document["sweeps"]
                                          if s["backend"] == backend)
               for backend in backend_bench.BACKENDS}
    assert document["median_runs_per_hour"] == pytest.approx(medians, rel=1e-3)
    ratio = medians["ray"] / medians["local"]
    assert document["ray_over_local"] == pytest.approx(ratio, abs=1e-3)
    assert document["within_target"] == (ratio >= document["target_ratio"])
    assert document["records_identical"] is True
    lines = backend_bench.summary(document)
    assert any(line.startswith(f"Ray at {ratio:.0%} of local") for line in lines)
    assert lines[-1] == "records of both backends: identical"
