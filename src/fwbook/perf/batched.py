"""Several seeds of one configuration trained at once, as one batched model.

``train_batched(configs)`` takes K training configurations that differ only in ``seed`` and
trains them together: their weights are stacked along a new leading axis (K, ...) and one
``torch.func.vmap``-ped forward and backward runs all K models on a (K, B, T) batch of tokens.
Everything that makes a run a run stays per model, exactly as in :func:`fwbook.core.train.train`:

* initialisation: model k is built after ``torch.manual_seed(seed_k)``;
* data order: model k draws its own mini-batches from its own generator
  (``seed_k + 1_000_003``, the same stream as a single run);
* gradient clipping: each model's global gradient norm is its own;
* Adam: element-wise, so one Adam over the stacked weights is K independent Adams;
* validation, test, divergence handling and the run record, one per model.

So K batched runs give the same curves and test errors as K runs of ``train`` one by one (up
to float rounding: a batched matrix product may sum in another order); ``tests/test_speed.py``
checks it. The gain is fewer, larger operations per update: the per-operation overhead that
dominates these small models on a CPU is paid once for K models.

``nn.LSTM`` has no vmap rule, so the LSTM runs through :func:`lstm_forward`, the same cell
written out with the same parameters (gate order i, f, g, o as in PyTorch).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from fwbook.core.data import make_splits
from fwbook.core.models import build_model
from fwbook.core.records import RECORD_SCHEMA, config_hash, provenance, thin_curve, write_record
from fwbook.core.train import (TrainConfig, check_interval, _learning_rate, classification_error,
                    resolve_device)

__all__ = ["train_batched", "BatchedSeedsStep", "StackedModels", "check_batchable",
           "clip_per_model", "lstm_forward"]


def check_batchable(configs: Sequence[TrainConfig]) -> None:
    """Raise ValueError unless the configurations differ only in their seeds (all distinct)."""
    if not configs:
        raise ValueError("train_batched needs at least one configuration")
    reference = replace(configs[0], seed=0)
    for config in configs[1:]:
        if replace(config, seed=0) != reference:
            raise ValueError("batched configurations must be equal except for their seeds; "
                             "train the others separately")
    if reference.patience:
        raise ValueError("batched training has no early stopping (patience); train these "
                         "configurations one by one with fwbook.core.train.train")
    if reference.model.model == "lstm" and reference.model.input_embedding:
        raise ValueError("batched training writes the LSTM out for one-hot input only; train "
                         "an LSTM with input_embedding one by one with fwbook.core.train.train")
    seeds = [config.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"batched configurations need distinct seeds, got {seeds}")


def lstm_forward(params: dict[str, torch.Tensor], tokens: torch.Tensor, vocab_size: int
                 ) -> torch.Tensor:
    """``LSTMClassifier`` written out (one model): tokens (B, T) -> logits (B, V).

    The parameters are those of ``fwbook.core.models.LSTMClassifier`` (``lstm.weight_ih_l0`` ...,
    ``readout.0.weight`` ...), so the result equals ``model(tokens)`` up to float rounding.
    """
    weight_ih, weight_hh = params["lstm.weight_ih_l0"], params["lstm.weight_hh_l0"]
    inputs = F.one_hot(tokens, vocab_size).to(weight_ih.dtype)  # (B, T, I)
    # input part of all four gates for every step at once: (B, T, 4H)
    drive = inputs @ weight_ih.T + params["lstm.bias_ih_l0"] + params["lstm.bias_hh_l0"]
    hidden = weight_hh.shape[1]
    h = drive.new_zeros(drive.shape[0], hidden)  # (B, H)
    c = drive.new_zeros(drive.shape[0], hidden)  # (B, H)
    for x_t in drive.unbind(1):
        gates = x_t + h @ weight_hh.T  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    hidden_layer = F.relu(h @ params["readout.0.weight"].T + params["readout.0.bias"])
    return hidden_layer @ params["readout.2.weight"].T + params["readout.2.bias"]  # (B, V)


class StackedModels:
    """K models of one architecture as stacked parameters and a vmapped loss."""

    def __init__(self, models: list[torch.nn.Module], config: Optional[TrainConfig] = None):
        """``models``: K models of one configuration (``config``, when given, is not needed:
        the architecture is ``models[0].config``)."""
        self.models = models
        self.count = len(models)
        params, buffers = stack_module_state(models)  # {name: (K, ...)}
        self.params = {name: value.detach().requires_grad_() for name, value in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        model_config = models[0].config
        if model_config.model == "lstm":
            vocab = model_config.vocab_size

            def one_loss(params, buffers, inputs, targets):
                return F.cross_entropy(lstm_forward(params, inputs, vocab), targets)
        else:
            base = self.base

            def one_loss(params, buffers, inputs, targets):
                return F.cross_entropy(functional_call(base, (params, buffers), (inputs,)),
                                       targets)
        self.losses = vmap(one_loss)  # (K params, K inputs, K targets) -> (K,) losses

    def copy_into_models(self) -> None:
        """Write the stacked weights back into the K ordinary models (for evaluation)."""
        with torch.no_grad():
            for index, model in enumerate(self.models):
                for name, parameter in model.named_parameters():
                    parameter.copy_(self.params[name][index])


def clip_per_model(parameters: list[torch.Tensor], count: int, clip_norm: Optional[float]
                    ) -> torch.Tensor:
    """Clip each model's global gradient norm separately; return the K norms (before clipping)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    # per model and parameter: ||g_{k,p}||, then ||g_k|| = sqrt(Σ_p ||g_{k,p}||²)
    norms = torch.stack([g.reshape(count, -1).norm(2.0, dim=1) for g in grads], 1)  # (K, P)
    total = torch.linalg.vector_norm(norms, 2.0, dim=1)  # (K,)
    if clip_norm is not None:
        coefficient = torch.clamp(clip_norm / (total + 1e-6), max=1.0)  # (K,)
        for g in grads:
            g.mul_(coefficient.view(count, *([1] * (g.dim() - 1))))
    return total


def train_batched(configs: Sequence[TrainConfig], outputs: Optional[Sequence] = None,
                  device: str = "auto", quiet: bool = True, profile: Optional[str] = None,
                  compile: bool = False) -> list[dict]:
    """Train K configurations that differ only in ``seed`` as one batched model.

    Args:
        configs: K training configurations, equal except for distinct seeds.
        outputs: K record paths (or None: write nothing).
        device: "auto", "cpu" or "cuda".
        quiet: no progress bar.
        profile: the profile name stored in the records.
        compile: also ``torch.compile`` the batched loss (falls back to eager with a warning).
    Returns:
        K run records in the order of ``configs``, with the fields of :func:`fwbook.core.train.train`
        plus ``trainer`` = {"name": "batched", "models": K}. ``wall_s`` is the wall time of the
        whole batch (all K records became available together).
    """
    configs = list(configs)
    check_batchable(configs)
    if outputs is not None and len(outputs) != len(configs):
        raise ValueError(f"give one output path per configuration ({len(configs)}), "
                         f"got {len(outputs)}")
    config = configs[0]
    count = len(configs)
    torch_device = resolve_device(device)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = make_splits(config.data_seed, config.num_pairs, config.num_train,
                       config.num_validation, config.num_test)
    train_split = data.train.to(torch_device)
    validation = data.validation.to(torch_device)

    models = []
    for each in configs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(each.seed)
            models.append(build_model(each.model).to(torch_device).train())
    stacked = StackedModels(models, config)
    parameters = list(stacked.params.values())
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    losses_of = stacked.losses
    compiled_state = {"pending": compile}
    if compile:
        losses_of = torch.compile(stacked.losses, fullgraph=True, dynamic=False)

    generators = [torch.Generator().manual_seed(each.seed + 1_000_003) for each in configs]
    permutations = [torch.randperm(len(train_split), generator=g) for g in generators]
    positions = [0] * count
    curves = [{"step": [], "train_loss": [], "val_error": [], "val_loss": [], "grad_norm": []}
              for _ in configs]
    status = ["completed"] * count
    messages = [""] * count
    last_finite = [{"step": 0, "loss": None} for _ in configs]
    stopped_at = [None] * count  # update count at which a diverged model stopped
    interval_losses: list[torch.Tensor] = []  # (K,) per update
    norm_sum = torch.zeros(count, device=torch_device)
    interval = 0
    step = 0
    progress = None
    if not quiet:
        from tqdm.auto import tqdm
        progress = tqdm(total=config.steps, unit="upd", dynamic_ncols=True,
                        desc=f"{config.model.model} R={config.model.hidden} x{count}")

    def batched_update(inputs, targets):
        nonlocal losses_of
        optimizer.zero_grad(set_to_none=True)
        if compiled_state["pending"]:
            compiled_state["pending"] = False
            try:
                losses = losses_of(stacked.params, stacked.buffers, inputs, targets)
            except Exception as error:  # compile errors come in many types
                first_line = " ".join([line for line in str(error).splitlines() if line.strip()][:2])
                warnings.warn(f"torch.compile of the batched step failed ({type(error).__name__}:"
                              f" {first_line[:300]}); using the eager batched step instead",
                              RuntimeWarning, stacklevel=2)
                losses_of = stacked.losses
                losses = losses_of(stacked.params, stacked.buffers, inputs, targets)
        else:
            losses = losses_of(stacked.params, stacked.buffers, inputs, targets)  # (K,)
        losses.sum().backward()  # model k's weights only see loss k
        grad_norms = clip_per_model(parameters, count, config.clip_norm)
        optimizer.step()
        return losses.detach(), grad_norms.detach()

    while step < config.steps and any(s == "completed" for s in status):
        indices = []
        for k in range(count):
            if positions[k] + config.batch_size > len(train_split):
                permutations[k] = torch.randperm(len(train_split), generator=generators[k])
                positions[k] = 0
            indices.append(permutations[k][positions[k]:positions[k] + config.batch_size])
            positions[k] += config.batch_size
        index = torch.stack(indices).to(torch_device)  # (K, B)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step)
        losses, grad_norms = batched_update(train_split.inputs[index], train_split.targets[index])
        step += 1
        interval += 1
        interval_losses.append(losses)
        norm_sum += grad_norms
        if step % config.eval_every == 0 or step == config.steps:
            block = torch.stack(interval_losses, 1).cpu()  # (K, interval)
            stacked.copy_into_models()
            for k in range(count):
                if status[k] != "completed":
                    continue
                model_losses = block[k]
                last_finite[k], message = check_interval(model_losses, step, last_finite[k])
                if message is not None:
                    status[k] = "diverged"
                    stopped_at[k] = step
                    messages[k] = message
                    continue
                val_error, val_loss = classification_error(models[k], validation)
                curves[k]["step"].append(step)
                curves[k]["train_loss"].append(float(model_losses.mean()))
                curves[k]["val_error"].append(val_error)
                curves[k]["val_loss"].append(val_loss)
                curves[k]["grad_norm"].append(float(norm_sum[k]) / interval)
            interval_losses.clear()
            norm_sum.zero_()
            interval = 0
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()

    stacked.copy_into_models()
    test = data.test.to(torch_device)
    wall_s = round(time.perf_counter() - started, 2)
    described = provenance(torch_device)
    records = []
    for k, each in enumerate(configs):
        if status[k] == "completed":
            test_error, test_loss = classification_error(models[k], test)
        else:
            test_error, test_loss = None, None
        config_dict = each.to_dict()
        record = {
            "schema": RECORD_SCHEMA,
            "status": status[k],
            "message": messages[k],
            "model": each.model.model,
            "hidden": each.model.hidden,
            "seed": each.seed,
            "profile": profile,
            "test_error": test_error,
            "test_loss": test_loss,
            "final_val_error": curves[k]["val_error"][-1] if curves[k]["val_error"] else None,
            "steps_done": stopped_at[k] if stopped_at[k] is not None else step,
            "config": config_dict,
            "config_hash": config_hash(config_dict),
            **described,
            "wall_s": wall_s,
            "started_at": started_at,
            "trainer": {"name": "batched", "models": count},
            "curves": thin_curve(curves[k]),
        }
        if outputs is not None and outputs[k] is not None:
            write_record(Path(outputs[k]), record)
        records.append(record)
    return records


class BatchedSeedsStep:
    """One training update of K models of one configuration as one batched model:
    ``step(inputs (K, B, T), targets (K, B)) -> (losses (K,), grad norms (K,))``.

    Each model's update is what :func:`fwbook.core.train.plain_training_step` does to it alone
    (its own loss, its own global-norm clipping, Adam element-wise); ``tests/test_batched.py``
    checks it, eager and traced. ``compile=True`` hands the vmapped loss to ``torch.compile``.
    The K models' own parameters are updated only by :meth:`copy_into_models`.
    """

    def __init__(self, models: list[torch.nn.Module], clip_norm: Optional[float], lr: float = 1e-3,
                 compile: bool = False, backend: str = "inductor"):
        self.stacked = StackedModels(models)
        self.count = len(models)
        self.clip_norm = clip_norm
        self.parameters = list(self.stacked.params.values())
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)
        losses = self.stacked.losses
        self.losses = (torch.compile(losses, fullgraph=True, dynamic=False, backend=backend)
                       if compile else losses)
        self.compiled = None if compile else False
        self.compile_s: Optional[float] = None

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.losses(self.stacked.params, self.stacked.buffers, inputs, targets)  # (K,)
        losses.sum().backward()  # each model's gradient is that of its own loss
        grad_norms = clip_per_model(self.parameters, self.count, self.clip_norm)
        self.optimizer.step()
        if self.compile_s is None:
            self.compile_s = time.perf_counter() - started
            if self.compiled is None:
                self.compiled = True
        return losses.detach(), grad_norms.detach()

    def copy_into_models(self) -> None:
        """Write the stacked weights back into the K models."""
        self.stacked.copy_into_models()
