"""Several seeds as one batched model (fwbook.perf.batched.BatchedSeedsStep) update each
model exactly as the plain eager step updates it alone (fp32, 1e-5), eager and traced."""

from __future__ import annotations

import pytest
import torch

from fwbook.core.data import associative_retrieval
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.train import plain_training_step
from fwbook.perf.batched import BatchedSeedsStep

TOLERANCE = 1e-5


@pytest.mark.parametrize("compile, model_name", [(False, "fast_weights"), (True, "fast_weights"),
                                                 (False, "irnn")])
def test_batched_seeds_update_each_model_like_the_plain_step(compile, model_name):
    config = ModelConfig(model=model_name, hidden=8)
    singles = [build_model(config, seed=seed) for seed in range(3)]
    optimizers = [torch.optim.Adam(model.parameters(), lr=1e-2) for model in singles]
    batched_models = [build_model(config, seed=seed) for seed in range(3)]
    step = BatchedSeedsStep(batched_models, 0.5, lr=1e-2, compile=compile, backend="aot_eager")
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        batches = [associative_retrieval(16, num_pairs=1, generator=generator) for _ in singles]
        inputs = torch.stack([b.inputs for b in batches])  # (K, B, T)
        targets = torch.stack([b.targets for b in batches])  # (K, B)
        losses, norms = step(inputs, targets)
        for k, (model, optimizer, batch) in enumerate(zip(singles, optimizers, batches)):
            loss, norm = plain_training_step(model, optimizer, batch.inputs, batch.targets, 0.5)
            torch.testing.assert_close(losses[k], loss, atol=TOLERANCE, rtol=TOLERANCE)
            torch.testing.assert_close(norms[k], norm, atol=TOLERANCE, rtol=TOLERANCE)
    step.copy_into_models()
    for single, batched in zip(singles, batched_models):
        for a, b in zip(single.parameters(), batched.parameters()):
            torch.testing.assert_close(b, a, atol=TOLERANCE, rtol=TOLERANCE)
    assert step.compiled is compile
