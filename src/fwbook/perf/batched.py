"""Several seeds of one configuration as one batched model (the sweep benchmark's subject).

:class:`_StackedModels` stacks the weights of K models of one architecture along a new leading
axis (K, ...) and runs one ``torch.func.vmap``-ped forward and backward for all K on a
(K, B, T) batch of tokens; :func:`_clip_per_model` clips each model's global gradient norm
separately, and one Adam over the stacked weights is K independent Adams (it is element-wise).
So one batched update is K ordinary updates (``tests/test_speed.py`` checks it against
:func:`fwbook.core.steps.plain_training_step`), in fewer, larger operations: the
per-operation overhead that dominates these small models on a CPU is paid once for K models.
``fwbook.perf.bench.sweep_throughput`` measures what that buys; the sweeps themselves train
one run at a time with ``fwbook.core.train.train``.

``nn.LSTM`` has no vmap rule, so the LSTM runs through :func:`lstm_forward`, the same cell
written out with the same parameters (gate order i, f, g, o as in PyTorch).
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from fwbook.core.train import TrainConfig


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


class _StackedModels:
    """K models of one architecture as stacked parameters and a vmapped loss."""

    def __init__(self, models: list[torch.nn.Module], config: TrainConfig):
        params, buffers = stack_module_state(models)  # {name: (K, ...)}
        self.params = {name: value.detach().requires_grad_() for name, value in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        model_config = config.model
        if model_config.model == "lstm":
            if model_config.input_embedding:
                raise ValueError("lstm_forward writes the LSTM out for one-hot input only")
            vocab = model_config.vocab_size

            def one_loss(params, buffers, inputs, targets):
                return F.cross_entropy(lstm_forward(params, inputs, vocab), targets)
        else:
            base = self.base

            def one_loss(params, buffers, inputs, targets):
                return F.cross_entropy(functional_call(base, (params, buffers), (inputs,)),
                                       targets)
        self.losses = vmap(one_loss)  # (K params, K inputs, K targets) -> (K,) losses


def _clip_per_model(parameters: list[torch.Tensor], count: int, clip_norm: Optional[float]
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
