"""Time to accuracy: updates and wall seconds of FW (Eq. 4) from scratch to an error threshold."""

from __future__ import annotations

import time

import torch

from fwbook.core.models import ModelConfig, build_model
from fwbook.core.train import plain_training_step


def time_to_accuracy(hidden: int = 20, thresholds: tuple[float, ...] = (0.05, 0.02),
                     max_updates: int = 60_000, eval_every: int = 250, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     step: str = "auto", num_validation: int = 10_000) -> dict:
    """Updates and wall seconds for FW (Eq. 4) from scratch to each validation-error threshold.

    The run follows ``fwbook.core.train`` (same data, initialisation, order, Adam, clipping at 5)
    and stops once the last threshold is reached or after ``max_updates``. Wall seconds count
    training and the validation passes (every ``eval_every`` updates), compile time included
    and also given apart. ``step`` is the training step as in ``fwbook.core.train`` ("auto" picks
    what ``train`` would for a run of ``max_updates`` updates).

    Returns:
        ``{"hidden", "step", "compile_s", "thresholds": [{"val_error", "updates",
        "wall_s"} ...], "curve": {"step", "val_error", "wall_s"}}``; a threshold never reached
        has ``updates`` and ``wall_s`` None.
    """
    from fwbook.core.data import make_splits
    from fwbook.core.steps import choose_training_step, compiled_training_step
    from fwbook.core.train import classification_error

    torch_device = torch.device(device)
    data = make_splits(0, 4, 100_000, num_validation, 1)
    train_split, validation = data.train.to(torch_device), data.validation.to(torch_device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(ModelConfig(model="fast_weights", hidden=hidden)).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    step, _ = choose_training_step(step, "fast_weights", max_updates, torch_device)
    if step == "compiled":
        step_function = compiled_training_step(model, optimizer, 5.0)
    else:
        def step_function(inputs, targets):
            return plain_training_step(model, optimizer, inputs, targets, 5.0)
    generator = torch.Generator().manual_seed(seed + 1_000_003)
    permutation, position = torch.randperm(len(train_split), generator=generator), 0
    remaining = sorted(thresholds, reverse=True)
    reached: dict[float, tuple[int, float]] = {}
    curve = {"step": [], "val_error": [], "wall_s": []}
    started = time.perf_counter()
    for update in range(1, max_updates + 1):
        if position + batch_size > len(train_split):
            permutation, position = torch.randperm(len(train_split), generator=generator), 0
        index = permutation[position:position + batch_size].to(torch_device)
        position += batch_size
        step_function(train_split.inputs[index], train_split.targets[index])
        if update % eval_every == 0:
            error, _ = classification_error(model, validation)
            elapsed = time.perf_counter() - started
            curve["step"].append(update)
            curve["val_error"].append(error)
            curve["wall_s"].append(round(elapsed, 2))
            while remaining and error <= remaining[0]:
                reached[remaining.pop(0)] = (update, elapsed)
            if not remaining:
                break
    compile_s = getattr(step_function, "compile_s", None)
    if getattr(step_function, "compiled", None) is False:
        step = "eager"  # compiling failed; the plain step ran
    return {"hidden": hidden, "step": step, "eval_every": eval_every, "lr": lr,
            "batch_size": batch_size, "max_updates": max_updates,
            "compile_s": round(compile_s, 1) if compile_s is not None else None,
            "thresholds": [{"val_error": threshold,
                            "updates": reached[threshold][0] if threshold in reached else None,
                            "wall_s": round(reached[threshold][1], 1) if threshold in reached
                            else None} for threshold in sorted(thresholds, reverse=True)],
            "curve": curve}
