"""One check for every fast training step: it equals the plain eager step of core.steps.

Each update both steps see the same batch; the losses, gradient norms, clipped gradients and
the parameters after Adam must agree in fp32 within ``TOLERANCE``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.steps import plain_training_step

TOLERANCE = 1e-5


def close(a, b) -> None:
    torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=TOLERANCE)


def assert_steps_agree(plain, plain_optimizer, fast, step, updates: int, clip: float = 0.5,
                       learning_rate: Optional[Callable[[int], float]] = None) -> None:
    """``step(inputs, targets)`` (training ``fast``) against the plain step on ``plain``.

    ``learning_rate(update)``, when given, is set on both optimizers before each update, as a
    schedule would.
    """
    generator = torch.Generator().manual_seed(3)
    for update in range(updates):
        if learning_rate is not None:
            for optimizer in (plain_optimizer, step.optimizer):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(update)
        batch = associative_retrieval(16, num_pairs=1, generator=generator)
        loss_a, norm_a = plain_training_step(plain, plain_optimizer, batch.inputs,
                                             batch.targets, clip)
        loss_b, norm_b = step(batch.inputs, batch.targets)
        close(loss_b, loss_a)
        close(norm_b, norm_a)
        for a, b in zip(plain.parameters(), fast.parameters()):
            close(b.grad, a.grad)  # clipped
            close(b, a)  # after Adam
