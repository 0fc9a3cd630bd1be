"""bench: the suites run at tiny sizes, their figures draw, the Performance chapter executes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from fwbook.chapters import ch09_performance as chapter  # noqa: E402
from fwbook.core.data import associative_retrieval  # noqa: E402
from fwbook.core.models import ModelConfig, build_model  # noqa: E402
from fwbook.perf import bench, speedup, timing  # noqa: E402
from fwbook.perf.sweep_throughput import grid_hours  # noqa: E402
from fwbook.perf.throughput import format_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_reference_core_equals_package_model():
    """The frozen eager yardstick computes the same function as the package's model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=12))
    reference = speedup.reference_eager_model(12)
    reference.load_state_dict(model.state_dict())
    tokens = associative_retrieval(32, generator=torch.Generator().manual_seed(1)).inputs
    assert torch.allclose(reference(tokens), model(tokens), atol=1e-5)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(1)
    return {suite: bench.run_suite(suite, device="cpu", output_dir=directory, quick=True,
                                   repeats=2, threads=1) for suite in bench.DEFAULT_ALL}, directory


def test_suites_write_documents_with_provenance(documents):
    results, directory = documents
    for suite in bench.DEFAULT_ALL:
        document = json.loads((directory / f"{suite}.json").read_text())
        assert document["suite"] == suite and document["rows"]
        assert {"commit", "versions", "device"} <= set(document)
        assert document["device"]["type"] == "cpu"
        assert document["settings"]["threads"]["chosen"] == 1
        assert set(document["settings"]["load_1min"]) == {"before", "after"}
        if suite != "tta":  # every timed row says which clock read it (1 thread: its CPU time)
            assert {row.get("clock") for row in document["rows"]} == {"thread_cpu"}, suite
    speedup = results["speedup"]["rows"]
    # quick mode compiles nothing: the eager paths only, and train's default here is eager
    assert [r["path"] for r in speedup] == ["reference", "eager", "fused", "fused_bmm",
                                            "batched_seeds"]
    assert [r["path"] for r in speedup if r["default"]] == ["eager"]
    by_path = {r["path"]: r for r in speedup}
    assert by_path["fused"]["compared_with"] == "eager"
    assert by_path["fused"]["gain"] == pytest.approx(
        by_path["fused"]["seq_per_s"] / by_path["eager"]["seq_per_s"], rel=1e-2)
    for row in speedup:
        assert row["seq_per_s_min"] <= row["seq_per_s"] <= row["seq_per_s_max"]
        assert row["gflops"] == pytest.approx(
            row["flops_per_update"] * row["seq_per_s"] / 128 / 1e9, rel=1e-2, abs=0.006)
        assert row["fraction_at_shape"] == pytest.approx(
            row["flops_per_update"] * row["seq_per_s"] / 128 / 1e9
            / row["matmul_gflops_at_shape"], rel=1e-2, abs=0.001)
    target = chapter.target_summary(results["speedup"], target=4.0)
    assert target[0].startswith("R = 8: train's default step: eager ")
    assert "x the reference (" in target[0] and "of torch.mm at its shape" in target[0]
    assert "fastest of all: batched_seeds" in target[0] or "fastest step of one run" in target[0]
    assert target[-1].startswith("(load average over 1 min: ")
    summary = chapter.speedup_summary(results["speedup"])
    assert summary[0].startswith("R = 8, as multiples of the plain eager reference (")
    assert "\n  eager path " in summary[0] and "[train's default]" in summary[0]
    assert all(r["seq_per_s"] > 0 for r in speedup)
    assert {r["memory"] for r in results["cost"]["rows"]} == {"explicit", "efficient"}
    assert {(r["model"], r["hidden"]) for r in results["flops"]["rows"]} == {
        ("fast_weights", 8), ("lstm", 8)}
    hours = grid_hours(results["sweep"]["rows"])
    assert hours["single_hours"] > 0 and hours["batched_hours"] > 0


def test_timed_blocks_interleave_and_wide_spreads_are_flagged():
    calls, sleeps = [], iter([0.001, 0.001, 0.001, 0.05])

    def steady():
        calls.append("steady")

    def bursty():
        calls.append("bursty")
        time.sleep(next(sleeps))

    # a sleep stands for a core taken by another process: only the wall clock sees it
    stats = timing.interleaved_rates({"steady": steady, "bursty": bursty}, 1, 4, 1,
                                     wall_clock=True)
    assert stats["bursty"]["clock"] == "wall"
    assert calls == ["steady", "bursty"] * 4  # block r of each before block r + 1 of any
    assert stats["bursty"]["unsteady"] and stats["bursty"]["spread"] > timing.SPREAD_LIMIT
    assert stats["bursty"]["min"] < stats["bursty"]["median"] < stats["bursty"]["max"]
    # the flag and the note, on fixed numbers
    steady_stats = {"min": 95.0, "median": 100.0, "max": 110.0, "spread": 0.15,
                    "unsteady": False}
    rows = [{"model": "m", "memory": "-", "hidden": 1, **timing.rate_fields(value)}
            for value in (steady_stats, stats["bursty"])]
    assert rows[0] == {"model": "m", "memory": "-", "hidden": 1, "seq_per_s": 100.0,
                       "seq_per_s_min": 95.0, "seq_per_s_max": 110.0, "spread": 0.15,
                       "unsteady": False, "clock": "wall"}
    assert "(1 of 2 rows)" in timing.spread_note(rows)
    assert timing.spread_note(rows).startswith("timed by the wall clock; ")
    lines = format_table(rows).splitlines()
    assert lines[1].endswith(" ") and lines[2].endswith("!")


def test_thread_count_is_measured_and_printed():
    choice = timing.measure_threads("cpu", candidates=(1, 2), hidden=8, repeats=1,
                                   steps_per_repeat=1)
    assert choice["chosen"] in (1, 2) and set(choice["seq_per_s"]) == {"1", "2"}
    assert choice["chosen"] == timing.pick_threads(
        {int(t): rate for t, rate in choice["seq_per_s"].items()})
    line = timing.threads_line(choice)
    assert line.startswith(f"torch threads: {choice['chosen']} (measured: 1 thread ")
    assert timing.threads_line({"chosen": 3, "how": "asked for (--threads)"}) == \
        "torch threads: 3 (asked for (--threads))"


def test_more_threads_only_for_a_clear_win():
    """A narrow win of 2 threads is noise on a shared machine, and would cost the CPU clock."""
    assert timing.pick_threads({1: 14_906.0, 2: 15_165.0}) == 1  # seen: 2 chosen by 1.7%
    assert timing.pick_threads({1: 10_000.0, 2: 11_600.0}) == 2
    assert timing.pick_threads({1: 10_000.0, 2: 9_000.0}) == 1
    assert timing.pick_threads({1: 10_000.0, 2: 11_000.0, 4: 13_000.0}) == 4
    assert timing.pick_threads({1: 10_000.0, 2: 20_000.0, 4: 21_000.0}) == 2
    assert timing.pick_threads({2: 5.0}) == 2


def test_json_paths_one_file_per_suite(tmp_path):
    assert bench.json_paths(tmp_path / "b.json", ("speedup",)) == {
        "speedup": tmp_path / "b.json"}
    assert bench.json_paths(tmp_path / "b.json", ("flops", "tta")) == {
        "flops": tmp_path / "b.flops.json", "tta": tmp_path / "b.tta.json"}


def test_grid_hours_use_the_profile_budget():
    rows = [{"single_updates_per_s": 10.0, "batched_updates_per_s": 20.0},
            {"single_updates_per_s": 5.0, "batched_updates_per_s": 5.0}]
    # 3,600 updates: 360 s + 720 s one by one, 180 s + 720 s batched
    assert grid_hours(rows, steps=3_600) == {"single_hours": 0.3, "batched_hours": 0.25,
                                                   "steps": 3_600}
    assert grid_hours(rows)["steps"] == 40_000  # the paper profile's budget


@pytest.mark.parametrize("suite, draw", [("speedup", chapter.plot_speedup),
                                         ("cost", chapter.plot_memory_cost),
                                         ("sweep", chapter.plot_sweep),
                                         ("tta", chapter.plot_time_to_accuracy)])
def test_figures_name_the_hardware(documents, suite, draw):
    figure = draw(documents[0][suite])
    titles = [axis.get_title() for axis in figure.axes] + [
        figure._suptitle.get_text() if figure._suptitle else ""]
    assert any("cpu" in title for title in titles)


def test_committed_results_are_readable():
    found = [suite for suite in bench.SUITES if bench.load_bench(suite) is not None]
    assert set(found) >= {"speedup", "flops", "throughput"}, "results/bench lost its records"
    for suite in found:
        document = bench.load_bench(suite)
        assert document["rows" if suite != "backends" else "sweeps"]
        assert document["device"]["name"]


def test_reruns_spread_is_computed_per_row():
    def document(rates, unsteady=False, load=1.0):
        return {"settings": {"load_1min": {"before": load}},
                "rows": [{"model": "fast_weights", "memory": memory, "hidden": 20,
                          "seq_per_s": rate, "unsteady": unsteady}
                         for memory, rate in rates.items()]}

    runs = [document({"efficient": 100.0, "explicit": 50.0}),
            document({"efficient": 110.0, "explicit": 80.0}, True, 4.0),
            document({"efficient": 105.0, "explicit": 60.0})]
    spreads = chapter.rerun_spread(runs)
    assert [item["spread"] for item in spreads] == [0.1, 0.6]
    assert [item["unsteady_in"] for item in spreads] == [1, 1]
    # explicit against the first row of its R (efficient) in each run: 0.5, 0.727, 0.571
    assert spreads[1]["ratios"] == [0.5, 0.727, 0.571] and spreads[0]["ratio_spread"] is None
    assert spreads[1]["ratio_spread"] == pytest.approx((80 / 110 - 0.5) / 0.5, abs=1e-3)
    lines = chapter.rerun_summary(runs)
    assert lines[0] == "3 reruns; load average (1 min) at their start: 1.0, 4.0, 1.0"
    assert lines[-2].startswith("medians: 1 of 2 rows within 15% across the reruns (widest 60%")
    assert lines[-1] == "ratios: 0 of 1 rows within 15% across the reruns (widest 46%, median 46%)"


def test_unknown_suite_is_refused():
    with pytest.raises(ValueError, match="suite must be one of throughput, speedup"):
        bench.run_suite("nonsense", device="cpu", threads=1)


def test_one_thread_on_the_cpu_is_timed_by_the_threads_cpu_clock(monkeypatch):
    """Time the timing thread did not run (another process held the core) is not counted."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert timing.timing_clock(torch.device("cpu"))[0] == "thread_cpu"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert timing.timing_clock(torch.device("cpu"))[0] == "wall"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    work = torch.randn(64, 64)

    def busy():
        for _ in range(20):
            work @ work

    def busy_then_descheduled():
        busy()
        time.sleep(0.02)  # off the core: as if another process held it

    stats = timing.interleaved_rates({"busy": busy, "waits": busy_then_descheduled}, 1, 5, 1)
    assert stats["waits"]["clock"] == "thread_cpu"
    wall = timing.interleaved_rates({"busy": busy, "waits": busy_then_descheduled}, 1, 5, 1,
                                    wall_clock=True)
    # the CPU clock sees the two as the same work; the wall clock sees the wait
    assert stats["waits"]["median"] > 0.5 * stats["busy"]["median"]
    assert wall["waits"]["median"] < 0.5 * wall["busy"]["median"]
