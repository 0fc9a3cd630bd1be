"""``--step auto`` from measured costs: compile only where the compile time is repaid.

The compiled training step (``fwbook.core.steps``) does an update in roughly half the time of the
eager one, but compiling costs a one-off time ``c`` that varies enormously: seconds from
inductor's on-disk cache, 10-45 s cold on a quiet machine, 65-173 s cold on a loaded one
(issue 13, where a fixed "compile from 10,000 updates" rule made a run 1.9x slower than eager).
So ``auto`` predicts both run times and compiles only when it predicts no loss::

    t_eager    = N * s_e                     (s_e: eager seconds per update, measured now)
    t_compiled = c + N * s_c                 (c, s_c: measured before on this machine, cached;
                                              else c = PRIOR_COMPILE_UPDATES * s_e, s_c = PRIOR_RATIO * s_e)
    compile  iff  t_compiled <= t_eager

``s_e`` is timed on a throwaway copy of the model and optimizer (the run itself is not
touched). Every run stores what it measured (``s_e``, or ``c`` and ``s_c``) in a small JSON
cache keyed by model shape, batch, device, threads and torch version, so the next decision uses
this machine's real compile time (a compiled step that turned out no faster than eager makes
later runs stay eager: the switch back). The decision and its numbers go into the run record's
``training_step``; a resumed run keeps the decision of its checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

# A cold compile costs this many eager updates' worth of time when nothing has been measured
# yet: the worst seen (issue 13: a 10,000-update R = 20 run with a 173 s cold compile on a
# loaded machine ran 1.9x as long as eager, i.e. ~14,000 eager updates of compiling).
PRIOR_COMPILE_UPDATES = 15_000
# compiled / eager seconds per update when not measured yet (results/bench/speedup.json:
# 2.57x / 1.39x at R = 50, 2.50x / 1.47x at R = 100, about 0.55; rounded up to be safe)
PRIOR_RATIO = 0.6
# below this many updates not even a warm compile (seconds) is repaid: no probe, eager
PROBE_MIN_UPDATES = 500
PROBE_UPDATES = 20


def cache_file() -> Path:
    """Where measured step costs are kept: ``$FWBOOK_STEP_COSTS`` or
    ``$XDG_CACHE_HOME/fwbook/step_costs.json`` (``~/.cache`` by default)."""
    explicit = os.environ.get("FWBOOK_STEP_COSTS")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fwbook" / "step_costs.json"


def cost_key(config, device, threads: int) -> str:
    """What the costs depend on: model shape, batch, sequence length, device, threads, torch."""
    import torch

    model = config.model
    return (f"{model.model}|{model.memory}|R{model.hidden}|S{model.inner_steps}|"
            f"ln{int(bool(model.layer_norm))}|K{config.num_pairs}|B{config.batch_size}|"
            f"{device.type}|t{threads}|torch{torch.__version__}")


def _read_cache() -> dict:
    try:
        payload = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def cached_costs(key: str) -> dict:
    """What was measured before for ``key`` (possibly empty)."""
    entry = _read_cache().get(key)
    return entry if isinstance(entry, dict) else {}


def remember(key: str, **measured: Optional[float]) -> None:
    """Merge ``measured`` (seconds) into the cache entry for ``key``; never fails a run."""
    from fwbook.core.records import write_json_atomic

    values = {name: round(float(value), 6) for name, value in measured.items()
              if value is not None and value > 0}
    if not values:
        return
    try:
        cache = _read_cache()
        entry = cache.get(key) if isinstance(cache.get(key), dict) else {}
        cache[key] = {**entry, **values}
        write_json_atomic(cache_file(), cache)
    except OSError:
        pass  # a cache that cannot be written only costs a later, less informed decision


def time_eager_updates(model, optimizer, inputs, targets, clip_norm,
                       step: Callable, updates: int = PROBE_UPDATES) -> float:
    """Median seconds of one eager update, timed on copies of ``model`` and ``optimizer``.

    Args:
        inputs: (B, T) one mini-batch; targets: (B,).
        step: ``step(model, optimizer, inputs, targets, clip_norm)``, the plain training step.
    """
    import torch

    model_copy = copy.deepcopy(model)
    optimizer_copy = type(optimizer)(model_copy.parameters(), **optimizer.defaults)
    with torch.random.fork_rng(devices=[]):
        step(model_copy, optimizer_copy, inputs, targets, clip_norm)  # warm-up
        times = []
        for _ in range(updates):
            started = time.perf_counter()
            loss, _ = step(model_copy, optimizer_copy, inputs, targets, clip_norm)
            float(loss)
            times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2]


def decide(updates: int, eager_s: float, cached: dict) -> tuple[str, str, dict]:
    """``("compiled" | "eager", reason, numbers)`` for a run of ``updates`` updates.

    Args:
        updates: updates still to do.
        eager_s: measured eager seconds per update.
        cached: earlier measurements for this key: ``compile_s``, ``compiled_step_s``.
    """
    measured = "compile_s" in cached and "compiled_step_s" in cached
    compile_s = cached["compile_s"] if measured else PRIOR_COMPILE_UPDATES * eager_s
    compiled_s = cached["compiled_step_s"] if measured else PRIOR_RATIO * eager_s
    predicted_eager = updates * eager_s
    predicted_compiled = compile_s + updates * compiled_s
    numbers = {"eager_step_s": round(eager_s, 6), "compiled_step_s": round(compiled_s, 6),
               "compile_s": round(compile_s, 2),
               "source": "measured on this machine" if measured else "prior (nothing measured yet)",
               "predicted_eager_s": round(predicted_eager, 1),
               "predicted_compiled_s": round(predicted_compiled, 1)}
    where = "measured" if measured else "assumed"
    if predicted_compiled <= predicted_eager:
        return "compiled", (f"auto: compiling ({where} {compile_s:.0f} s) is repaid over "
                            f"{updates:,} updates: {predicted_compiled:.0f} s predicted "
                            f"against {predicted_eager:.0f} s eager"), numbers
    return "eager", (f"auto: compiling ({where} {compile_s:.0f} s) would not be repaid over "
                     f"{updates:,} updates: {predicted_compiled:.0f} s predicted against "
                     f"{predicted_eager:.0f} s eager"), numbers


def choose_step(requested: str, config, model, optimizer, inputs, targets, device,
                resumed: Optional[dict] = None) -> dict:
    """The training step of one run of :func:`fwbook.core.train.train`.

    Args:
        requested: "auto", "eager" or "compiled" (the last two are obeyed).
        config: the run's ``TrainConfig``.
        model, optimizer: the run's; only copies of them are stepped (to time the eager step).
        inputs: (B, T) one mini-batch; targets: (B,).
        device: the run's torch device.
        resumed: the ``training_step`` stored in the checkpoint being resumed, if any: an
            "auto" run keeps the decision it took when it started.
    Returns:
        ``{"path": "eager" | "compiled", "reason": text, "decision": numbers behind an auto
        decision (empty when none was measured)}``.
    """
    import torch

    from fwbook.core.steps import choose_training_step, plain_training_step

    if requested == "auto" and resumed and resumed.get("path") in ("eager", "compiled"):
        return {"path": resumed["path"],
                "reason": f"auto, kept from the checkpoint: {resumed.get('reason', '')}",
                "decision": dict(resumed.get("decision") or {})}
    path, reason = choose_training_step(requested, config.model.model, config.steps, device,
                                        min_updates=PROBE_MIN_UPDATES)
    if requested != "auto" or path == "eager":
        return {"path": path, "reason": reason, "decision": {}}
    eager_s = time_eager_updates(model, optimizer, inputs, targets, config.clip_norm,
                                 plain_training_step)
    key = cost_key(config, device, torch.get_num_threads())
    path, reason, decision = decide(config.steps, eager_s, cached_costs(key))
    return {"path": path, "reason": reason, "decision": decision}


def remember_run(config, device, summary: dict) -> None:
    """Store a compiled run's measured compile time and step time (``summary``: the record's
    ``training_step``) for later "auto" decisions. CPU only; the eager step is timed afresh
    by every decision."""
    import torch

    if device.type != "cpu" or not summary.get("step_s") or summary["path"] != "compiled":
        return
    key = cost_key(config, device, torch.get_num_threads())
    remember(key, compile_s=summary.get("compile_s"), compiled_step_s=summary["step_s"])
