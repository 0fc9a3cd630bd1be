"""Sweep throughput of the two backends, local processes against Ray, measured in one run.

``fwbook bench --suite backends --output-dir results/bench`` (:func:`measure_backends`) times
whole ``fwbook sweep`` commands, as a user runs them (a fresh Python, the imports, the
worker processes or the embedded Ray, training, records written), on the first ``runs`` runs
of the quick Table 1 grid (seed 0), each sweep into a fresh folder. The backends alternate in
the order local, ray, ray, local, ... (ABBA), so a load that drifts during the measurement
weighs on both alike. Runs per hour = runs / wall time of the sweep; the verdict compares the
medians. The load average of the machine is recorded before and after every sweep, and the
records of the two backends are compared (same configuration hash, curves and test error).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from fwbook.core.records import provenance

BACKENDS = ("local", "ray")
SAME_FIELDS = ("config_hash", "curves", "test_error")
TARGET_RATIO = 0.9  # the Ray backend's runs per hour at least 90% of the local backend's


def abba_order(rounds: int) -> list[str]:
    """The backends' order for ``rounds`` sweeps each: local ray ray local local ray ..."""
    return [BACKENDS[(i + 1) // 2 % 2] for i in range(2 * rounds)]


def sweep_command(backend: str, directory: Path, runs: int, workers: int,
                  profile: str = "quick") -> list[str]:
    """The ``fwbook sweep`` command line of one timed sweep."""
    return [sys.executable, "-m", "fwbook", "sweep", "table1", "--profile", profile, "--seeds",
            "0", "--limit", str(runs), "--workers", str(workers), "--directory", str(directory),
            "--quiet", "--backend", backend]


def time_sweep(backend: str, directory: Path, runs: int, workers: int, profile: str) -> dict:
    """Run one sweep in a subprocess; returns its wall time, load averages and records."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = subprocess.run(sweep_command(backend, directory, runs, workers, profile),
                            capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{backend} sweep failed ({result.returncode}): "
                           f"{(result.stdout + result.stderr)[-2000:]}")
    records = {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}
    if len(records) != runs:
        raise RuntimeError(f"{backend} sweep wrote {len(records)} records, expected {runs}")
    return {"backend": backend, "wall_s": round(wall, 2),
            "runs_per_hour": round(runs * 3600 / wall, 2),
            "training_s": round(sum(r["wall_s"] for r in records.values()), 2),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "records": records}


def measure_backends(runs: int = 4, rounds: int = 2, workers: int = 2, profile: str = "quick",
                     scratch: Optional[Path] = None) -> dict:
    """Time ``rounds`` sweeps per backend, alternating ABBA; returns the JSON document.

    Args:
        runs: the first ``runs`` runs of the Table 1 grid at ``profile``, seed 0.
        rounds: sweeps per backend.
        workers: worker processes (local) or CPUs of the embedded Ray (ray).
        profile: the grid's profile ("quick" for the published figure).
        scratch: where the sweeps' folders go (default: a temporary folder, removed).
    """
    order = abba_order(rounds)
    with tempfile.TemporaryDirectory(prefix="fwbook-backends-", dir=scratch) as folder:
        sweeps = []
        for index, backend in enumerate(order):
            sweep = time_sweep(backend, Path(folder) / f"{index}-{backend}", runs, workers,
                               profile)
            print(f"sweep {index + 1}/{len(order)} {backend}: {sweep['wall_s']:.1f} s, "
                  f"{sweep['runs_per_hour']:.1f} runs/h, load {sweep['load_before'][0]:.1f} "
                  f"-> {sweep['load_after'][0]:.1f}", flush=True)
            sweeps.append(sweep)
    reference = sweeps[0]["records"]
    identical = all(sweep["records"][name][field] == reference[name][field]
                    for sweep in sweeps for name in reference for field in SAME_FIELDS)
    names = list(reference)
    for sweep in sweeps:
        del sweep["records"]
    medians = {backend: statistics.median(s["runs_per_hour"] for s in sweeps
                                          if s["backend"] == backend) for backend in BACKENDS}
    ratio = medians["ray"] / medians["local"]
    loads = [s["load_before"][0] for s in sweeps] + [s["load_after"][0] for s in sweeps]
    return {
        "suite": "backends",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {"grid": "table1", "profile": profile, "seeds": [0], "runs": names,
                     "workers": workers, "rounds": rounds, "order": order,
                     "command": " ".join(sweep_command("BACKEND", Path("FOLDER"), runs, workers,
                                                       profile)[1:])},
        **provenance("cpu"),
        "timing": "wall time of whole `fwbook sweep` commands (startup included), backends "
                  "alternated ABBA within one run; load averages (1 min) recorded around each",
        "sweeps": sweeps,
        "median_runs_per_hour": {backend: round(value, 2) for backend, value in medians.items()},
        "ray_over_local": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio >= TARGET_RATIO,
        "records_identical": identical,
        "load_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
    }


def summary(document: dict) -> list[str]:
    """The lines the Performance chapter prints for a ``backends`` document."""
    settings = document["settings"]
    medians = document["median_runs_per_hour"]
    load = document["load_1min"]
    lines = [f"{len(settings['runs'])} runs of the {settings['profile']} Table 1 grid, "
             f"{settings['workers']} workers, {settings['rounds']} sweeps per backend "
             f"(order: {' '.join(settings['order'])})", f"runs: {', '.join(settings['runs'])}"]
    for sweep in document["sweeps"]:
        lines.append(f"  {sweep['backend']:<5} {sweep['wall_s']:6.1f} s  "
                     f"{sweep['runs_per_hour']:6.1f} runs/h  (load {sweep['load_before'][0]:.1f}"
                     f" -> {sweep['load_after'][0]:.1f})")
    spread = {backend: [s["runs_per_hour"] for s in document["sweeps"] if s["backend"] == backend]
              for backend in BACKENDS}
    lines.append("spread between sweeps of one backend:")
    lines += [f"  {backend:<5} {min(rates):.1f} to {max(rates):.1f} runs/h "
              f"({max(rates) / min(rates) - 1:.0%})" for backend, rates in spread.items()]
    verdict = "within" if document["within_target"] else "outside"
    lines.append(f"median: local {medians['local']:.1f} runs/h, Ray {medians['ray']:.1f} runs/h")
    lines.append(f"Ray at {document['ray_over_local']:.0%} of local, {verdict} the target "
                 f"(at least {document['target_ratio']:.0%})")
    lines.append(f"load average (1 min) meanwhile: {load['min']:.1f} to {load['max']:.1f} "
                 f"(median {load['median']:.1f}) on {document['device']['cpu_count']} cores")
    lines.append("records of both backends: "
                 + ("identical" if document["records_identical"] else "DIFFERENT"))
    return lines
