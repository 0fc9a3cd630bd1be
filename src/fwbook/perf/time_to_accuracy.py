"""Time to accuracy: updates and wall seconds of FW (Eq. 4) from scratch to an error threshold."""

from __future__ import annotations

from fwbook.core.models import ModelConfig


def time_to_accuracy(hidden: int = 20, thresholds: tuple[float, ...] = (0.05, 0.02),
                     max_updates: int = 60_000, eval_every: int = 250, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     step: str = "auto", num_validation: int = 10_000) -> dict:
    """Updates and wall seconds for FW (Eq. 4) from scratch to each validation-error threshold.

    One run of ``fwbook.core.train.train`` (K = 4, 100,000 training sequences, Adam, clipping
    at 5), stopped by its ``on_evaluation`` hook once the last threshold is reached, or after
    ``max_updates``. Wall seconds count training and the validation passes (every
    ``eval_every`` updates) from the first update, compile time included and also given
    apart. ``step`` is ``train``'s training step ("auto" decides as ``train`` does for a run of
    ``max_updates`` updates).

    Returns:
        ``{"hidden", "step", "compile_s", "thresholds": [{"val_error", "updates",
        "wall_s"} ...], "curve": {"step", "val_error", "wall_s"}}``; a threshold never reached
        has ``updates`` and ``wall_s`` None.
    """
    from fwbook.core.train import TrainConfig, train

    config = TrainConfig(model=ModelConfig(model="fast_weights", hidden=hidden), num_pairs=4,
                         num_train=100_000, num_validation=num_validation, num_test=1,
                         data_seed=0, seed=seed, lr=lr, batch_size=batch_size,
                         steps=max_updates, clip_norm=5.0, eval_every=eval_every)
    remaining = sorted(thresholds, reverse=True)
    reached: dict[float, tuple[int, float]] = {}
    curve = {"step": [], "val_error": [], "wall_s": []}

    def note(point) -> bool:
        curve["step"].append(point.step)
        curve["val_error"].append(point.val_error)
        curve["wall_s"].append(round(point.elapsed_s, 2))
        while remaining and point.val_error <= remaining[0]:
            reached[remaining.pop(0)] = (point.step, point.elapsed_s)
        return not remaining  # every threshold reached: stop

    record = train(config, device=device, quiet=True, step=step, on_evaluation=note)
    compile_s = record["training_step"].get("compile_s")
    return {"hidden": hidden, "step": record["training_step"]["path"], "eval_every": eval_every,
            "lr": lr, "batch_size": batch_size, "max_updates": max_updates,
            "compile_s": round(compile_s, 1) if compile_s is not None else None,
            "thresholds": [{"val_error": threshold,
                            "updates": reached[threshold][0] if threshold in reached else None,
                            "wall_s": round(reached[threshold][1], 1) if threshold in reached
                            else None} for threshold in sorted(thresholds, reverse=True)],
            "curve": curve}
