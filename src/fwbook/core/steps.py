"""Fast training steps, each tested equal to the plain eager step of ``fwbook.core.train``.

``compiled_training_step(model, optimizer, clip_norm)`` returns a callable
``step(inputs, targets) -> (loss, gradient norm)`` that does exactly what
:func:`fwbook.core.train.plain_training_step` does (forward, cross-entropy, backward, clip the
global gradient norm, Adam) with the model's forward and backward compiled by
``torch.compile`` (TorchInductor: the T-step recurrence is unrolled and its element-wise work
fused into a few C++/Triton kernels). On a CUDA device the compiled graph is also captured as a
CUDA graph (``mode="reduce-overhead"``), since the step has a fixed shape.

Compilation happens on the first call and is timed separately (``step.compile_s``), so that
throughput figures can leave it out and say how long it takes to amortise. If compilation fails
on some platform the step falls back to the plain eager step with a :class:`FastPathWarning`
(``step.fallback_reason`` says why): the numbers are then those of the plain path, never
silently different ones.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from typing import Callable, Optional

import torch
import torch.nn.functional as F

__all__ = ["AUTO_COMPILE_MIN_UPDATES", "CompiledStep", "FastPathWarning", "TRAINING_STEPS",
           "choose_training_step", "compiled_training_step", "clip_gradients", "use_foreach_adam"]

TRAINING_STEPS = ("auto", "eager", "compiled")
# "auto" compiles a run with at least this many updates. A cold compile took 10-15 s for fast
# weights (results/bench/speedup.json: 1,800-3,750 eager updates' worth) and ~45 s for the
# A-LSTM (~2,500 of its eager updates, measured once); the compiled step saves roughly half
# of each update's time, so a run of 10,000 updates repays even a cold compile. From
# inductor's on-disk cache compiling takes seconds.
AUTO_COMPILE_MIN_UPDATES = 10_000
# Dynamo refuses nn.LSTM (a fused mkldnn kernel is already fast eager): never auto-compiled
EAGER_MODELS = ("lstm",)


def _cpp_compiler() -> Optional[str]:
    """The C++ compiler inductor would use on the CPU, or None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def choose_training_step(requested: str, model: str, updates: int, device: torch.device
                         ) -> tuple[str, str]:
    """Which training step a run uses, and why: ``("eager" | "compiled", reason)``.

    ``requested="auto"`` (what ``fwbook train`` and the sweeps use) picks the compiled step
    for runs of at least :data:`AUTO_COMPILE_MIN_UPDATES` updates on the CPU with a C++
    compiler present, for every model Dynamo can trace (not ``lstm``); otherwise the plain
    eager step. On CUDA "auto" stays eager: the CUDA-graph step has not been checked on a GPU
    by this project yet, so it runs only when asked for. "eager" and "compiled" are obeyed.

    Raises:
        ValueError: ``requested`` is not one of :data:`TRAINING_STEPS`.
    """
    if requested not in TRAINING_STEPS:
        raise ValueError(f"training step must be one of {', '.join(TRAINING_STEPS)}; "
                         f"got {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    if model in EAGER_MODELS:
        return "eager", f"auto: {model} is not compiled (Dynamo does not trace nn.LSTM)"
    if updates < AUTO_COMPILE_MIN_UPDATES:
        return "eager", (f"auto: {updates} updates are too few to repay compiling "
                         f"(compiled from {AUTO_COMPILE_MIN_UPDATES})")
    if device.type != "cpu":
        return "eager", "auto: the compiled step is used on CUDA only when asked for"
    if _cpp_compiler() is None:
        return "eager", "auto: no C++ compiler found for TorchInductor"
    return "compiled", f"auto: {updates} updates on the CPU"


class FastPathWarning(RuntimeWarning):
    """A fast path could not be used; the plain path ran instead."""


def clip_gradients(parameters, clip_norm: Optional[float]) -> torch.Tensor:
    """Clip the global gradient norm like ``clip_grad_norm_`` (foreach kernels); return the norm.

    The norm is taken before clipping; ``clip_norm=None`` only measures it.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    # ||g|| = sqrt(Σ_p ||g_p||²), the same reduction order as torch.nn.utils.clip_grad_norm_
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
    if clip_norm is not None:
        coefficient = torch.clamp(clip_norm / (total + 1e-6), max=1.0)
        torch._foreach_mul_(grads, coefficient)
    return total


def use_foreach_adam(optimizer: torch.optim.Optimizer) -> None:
    """Switch Adam to its multi-tensor (foreach) implementation: the same update, fewer ops."""
    for group in optimizer.param_groups:
        if "foreach" in group and not group.get("fused"):
            group["foreach"] = True


class CompiledStep:
    """``step(inputs, targets) -> (loss, grad_norm)`` with a compiled forward and backward.

    Attributes:
        compile_s: seconds the first call took (compilation plus one step); None before it.
        compiled: True once the compiled path ran, False after a fallback.
        fallback_reason: why the plain path is used, or None.
        mode: the torch.compile mode used ("default" on the CPU, "reduce-overhead" on CUDA).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 clip_norm: Optional[float], mode: Optional[str] = None,
                 backend: str = "inductor", fallback: bool = True):
        self.model = model
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        device = self.parameters[0].device if self.parameters else torch.device("cpu")
        if mode is None:
            # CUDA graphs for the fixed-shape step on a GPU; plain inductor kernels on the CPU
            mode = "reduce-overhead" if device.type == "cuda" else "default"
        self.mode = mode
        self.backend = backend
        self.fallback = fallback
        self.compile_s: Optional[float] = None
        self.compiled: Optional[bool] = None
        self.fallback_reason: Optional[str] = None
        use_foreach_adam(optimizer)
        # Every CompiledStep compiles the same code object (loss_of below). Dynamo keeps at
        # most torch._dynamo.config.cache_size_limit compiled versions of one code object and
        # then silently runs it eagerly, which a sweep worker training many configurations
        # would reach. Start afresh instead; inductor's on-disk cache makes recompiling a
        # graph seen before take seconds. (An earlier CompiledStep still works: it retraces.)
        torch.compiler.reset()

        def loss_of(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(inputs), targets)  # mean over the batch

        self._eager_loss = loss_of
        options = {"fullgraph": True, "dynamic": False, "backend": backend}
        if backend == "inductor":
            options["mode"] = mode
        self._compiled_loss = torch.compile(loss_of, **options)
        self._loss: Callable = self._compiled_loss

    def _update(self, loss_function, inputs, targets):
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_function(inputs, targets)
        loss.backward()
        grad_norm = clip_gradients(self.parameters, self.clip_norm)
        self.optimizer.step()
        # a CUDA-graph output is overwritten by the next replay: keep a copy
        return loss.detach().clone(), grad_norm.detach()

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.compiled is None:
            started = time.perf_counter()
            try:
                result = self._update(self._compiled_loss, inputs, targets)
                self.compiled = True
            except Exception as error:  # compile errors come in many types
                if not self.fallback:
                    raise
                # compilation fails while tracing the forward, before any parameter changed
                self.compiled = False
                first_line = " ".join([line for line in str(error).splitlines() if line.strip()][:2])
                self.fallback_reason = f"{type(error).__name__}: {first_line[:300]}"
                warnings.warn(f"torch.compile of the training step failed ({self.fallback_reason});"
                              f" using the plain eager step instead", FastPathWarning,
                              stacklevel=2)
                self._loss = self._eager_loss
                result = self._update(self._eager_loss, inputs, targets)
            if result[0].device.type == "cuda":
                torch.cuda.synchronize(result[0].device)
            self.compile_s = time.perf_counter() - started
            return result
        return self._update(self._loss, inputs, targets)


def compiled_training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           clip_norm: Optional[float], mode: Optional[str] = None,
                           backend: str = "inductor", fallback: bool = True) -> CompiledStep:
    """The fast training step ``fwbook.core.train`` uses when ``TrainConfig.fast_path`` is set.

    Args:
        model: the model (already on its device, in training mode).
        optimizer: its Adam optimizer (switched to the foreach implementation).
        clip_norm: global gradient-norm threshold, None for no clipping.
        mode: torch.compile mode; None: "reduce-overhead" (CUDA graphs) on CUDA, else "default".
        backend: torch.compile backend ("inductor"; "aot_eager" only checks the plumbing).
        fallback: on a compile failure warn and use the plain step (False: raise).
    Returns:
        a :class:`CompiledStep`; calling it returns (loss, gradient norm before clipping).
    """
    return CompiledStep(model, optimizer, clip_norm, mode, backend, fallback)
