"""The training steps ``fwbook.core.train`` runs: the plain eager step and the compiled one.

:func:`plain_training_step` is one update: forward, cross-entropy, backward, clip the global
gradient norm, Adam. ``compiled_training_step(model, optimizer, clip_norm)`` returns a callable
``step(inputs, targets) -> (loss, gradient norm)`` that does exactly the same (tested equal)
with the model's forward and backward compiled by
``torch.compile`` (TorchInductor: the T-step recurrence is unrolled and its element-wise work
fused into a few C++/Triton kernels), and on the CPU the gradient clipping and Adam compiled
too. On a CUDA device the compiled graph is also captured as a
CUDA graph (``mode="reduce-overhead"``), since the step has a fixed shape.

Compilation happens on the first call and is timed separately (``step.compile_s``), so that
throughput figures can leave it out and say how long it takes to amortise. If compilation fails
on some platform the step falls back to the plain eager step with a :class:`FastPathWarning`
(``step.fallback_reason`` says why): the numbers are then those of the plain path, never
silently different ones.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
import warnings
from typing import Callable, Optional

import torch
import torch.nn.functional as F

__all__ = ["AUTO_COMPILE_MIN_UPDATES", "CompiledStep", "EAGER_MODELS", "FastPathWarning",
           "TRAINING_STEPS", "choose_training_step", "clip_gradients", "compiled_training_step",
           "TrainingStep", "cpp_compiler", "plain_training_step", "use_foreach_adam"]

TRAINING_STEPS = ("auto", "eager", "compiled")
# The fixed rule (choose_training_step) compiles a run with at least this many updates; train's
# "auto" decides from measured costs instead (fwbook.core.stepcost). A cold compile took 10-15 s for fast
# weights (results/bench/speedup.json: 1,800-3,750 eager updates' worth) and ~45 s for the
# A-LSTM (~2,500 of its eager updates, measured once); the compiled step saves roughly half
# of each update's time, so a run of 10,000 updates repays even a cold compile. From
# inductor's on-disk cache compiling takes seconds.
AUTO_COMPILE_MIN_UPDATES = 10_000
# Dynamo refuses nn.LSTM (a fused mkldnn kernel is already fast eager): never auto-compiled
EAGER_MODELS = ("lstm",)


def cpp_compiler() -> Optional[str]:
    """The C++ compiler inductor would use on the CPU, or None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def choose_training_step(requested: str, model: str, updates: int, device: torch.device,
                         min_updates: int = AUTO_COMPILE_MIN_UPDATES) -> tuple[str, str]:
    """Which training step a run uses by the fixed rule, and why: ``("eager" | "compiled", reason)``.

    ``requested="auto"`` picks the compiled step for runs of at least ``min_updates`` updates
    on the CPU with a C++ compiler present, for every model Dynamo can trace (not ``lstm``);
    otherwise the plain eager step. On CUDA "auto" stays eager: the CUDA-graph step has not
    been checked on a GPU by this project yet, so it runs only when asked for. "eager" and
    "compiled" are obeyed. ``train`` runs these checks with ``min_updates`` =
    ``stepcost.PROBE_MIN_UPDATES`` and, where they leave "compiled", decides from measured
    costs (:func:`fwbook.core.stepcost.choose_step`).

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
    if updates < min_updates:
        return "eager", (f"auto: {updates} updates are too few to repay compiling "
                         f"(considered from {min_updates})")
    if device.type != "cpu":
        return "eager", "auto: the compiled step is used on CUDA only when asked for"
    if cpp_compiler() is None:
        return "eager", "auto: no C++ compiler found for TorchInductor"
    return "compiled", f"auto: {updates} updates on the CPU"


def plain_training_step(model, optimizer, inputs, targets, clip_norm):
    """Forward, backward, clip, Adam. Returns (loss, gradient norm before clipping) tensors.

    Args:
        inputs: (B, T) token ids; targets: (B,) class ids.
        clip_norm: global gradient-norm threshold, None for no clipping.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    max_norm = clip_norm if clip_norm is not None else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.detach(), grad_norm.detach()


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
    """``step(inputs, targets) -> (loss, grad_norm)`` with a compiled forward and backward,
    and (``compile_update``, the default on the CPU) compiled clipping and Adam.

    Attributes:
        compile_s: seconds the first call took (compilation plus one step); None before it.
        compiled: True once the compiled path ran, False after a fallback.
        fallback_reason: why the plain path is used, or None.
        mode: the torch.compile mode used ("default" on the CPU, "reduce-overhead" on CUDA).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 clip_norm: Optional[float], mode: Optional[str] = None,
                 backend: str = "inductor", fallback: bool = True,
                 compile_update: Optional[bool] = None):
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
        # Clipping and Adam compiled too (CPU by default): some twenty foreach operations per
        # update fused into a few loops over the parameters (results/bench/speedup.json,
        # "compiled" against "compiled_loss"). The learning rate becomes a tensor, so that a
        # schedule's new value is copied in rather than compiled in as a new constant; Adam
        # takes a tensor lr in its single-tensor form, whose loops inductor fuses anyway.
        if compile_update is None:
            compile_update = device.type == "cpu"
        self.compile_update = compile_update
        self._compiled_apply: Optional[Callable] = None
        self._learning_rates: list[torch.Tensor] = []
        self._float_learning_rates: list[float] = []
        if compile_update:
            self._float_learning_rates = [float(group["lr"]) for group in optimizer.param_groups]
            self._learning_rates = [torch.tensor(rate, device=device)
                                    for rate in self._float_learning_rates]
            for group, rate in zip(optimizer.param_groups, self._learning_rates):
                group["lr"] = rate
                group["foreach"] = False
            self._compiled_apply = torch.compile(self._clip_and_adam, backend=backend)

    def _clip_and_adam(self) -> torch.Tensor:
        grad_norm = clip_gradients(self.parameters, self.clip_norm)
        self.optimizer.step()
        return grad_norm

    def _update(self, loss_function, inputs, targets):
        for group, rate in zip(self.optimizer.param_groups, self._learning_rates):
            if group["lr"] is not rate:  # the trainer set a new float (a schedule, a resume)
                rate.fill_(float(group["lr"]))
                group["lr"] = rate
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_function(inputs, targets)
        loss.backward()
        apply = (self._compiled_apply if self._compiled_apply is not None
                 and loss_function is not self._eager_loss else self._clip_and_adam)
        grad_norm = apply()
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
                for group, rate, value in zip(self.optimizer.param_groups,
                                              self._learning_rates, self._float_learning_rates):
                    if group["lr"] is rate:  # the plain step's own optimizer settings
                        group["lr"] = value
                self._learning_rates, self._compiled_apply = [], None
                use_foreach_adam(self.optimizer)
                result = self._update(self._eager_loss, inputs, targets)
            if result[0].device.type == "cuda":
                torch.cuda.synchronize(result[0].device)
            self.compile_s = time.perf_counter() - started
            return result
        return self._update(self._loss, inputs, targets)


def compiled_training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           clip_norm: Optional[float], mode: Optional[str] = None,
                           backend: str = "inductor", fallback: bool = True,
                           compile_update: Optional[bool] = None) -> CompiledStep:
    """The compiled training step (``train(step="compiled")``, or "auto" where it pays).

    Args:
        model: the model (already on its device, in training mode).
        optimizer: its Adam optimizer (switched to the foreach implementation).
        clip_norm: global gradient-norm threshold, None for no clipping.
        mode: torch.compile mode; None: "reduce-overhead" (CUDA graphs) on CUDA, else "default".
        backend: torch.compile backend ("inductor"; "aot_eager" only checks the plumbing).
        fallback: on a compile failure warn and use the plain step (False: raise).
        compile_update: compile clipping and Adam too (None: on the CPU; the optimizer's lr
            becomes a tensor and Adam its single-tensor form). False: foreach kernels, eager.
    Returns:
        a :class:`CompiledStep`; calling it returns (loss, gradient norm before clipping).
    """
    return CompiledStep(model, optimizer, clip_norm, mode, backend, fallback, compile_update)


class TrainingStep:
    """The training step of one run, timed: ``step(inputs, targets) -> (loss, grad_norm)``.

    Args:
        path: "eager" (:func:`plain_training_step`) or "compiled" (:class:`CompiledStep`).
        reason: why this path (stored in the record).
        decision: the numbers behind an "auto" decision, if any.
    Attributes:
        function: the step itself; calls to it through this object are timed, except the
            first call of the compiled step (it compiles).
    """

    def __init__(self, path: str, reason: str, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, clip_norm: Optional[float],
                 decision: Optional[dict] = None):
        self.path, self.reason, self.decision = path, reason, decision or {}
        self.function = (compiled_training_step(model, optimizer, clip_norm)
                         if path == "compiled" else
                         functools.partial(plain_training_step, model, optimizer,
                                           clip_norm=clip_norm))
        self.seconds, self.timed_calls, self.calls = 0.0, 0, 0

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.perf_counter()
        result = self.function(inputs, targets)
        if self.calls > 0 or self.path == "eager":  # the compiling first call not counted
            self.seconds += time.perf_counter() - started
            self.timed_calls += 1
        self.calls += 1
        return result

    def summary(self) -> dict:
        """The run record's ``training_step``: path, reason, ``compile_s`` (compiled),
        ``step_s`` (seconds per update), ``decision`` (auto)."""
        summary = {"path": self.path, "reason": self.reason}
        if isinstance(self.function, CompiledStep):
            compile_s = self.function.compile_s
            summary["compile_s"] = round(compile_s, 2) if compile_s is not None else None
            if self.function.compiled is False:  # compiling failed: the plain step ran
                summary["path"] = "eager"
                summary["reason"] = f"compile failed, fell back: {self.function.fallback_reason}"
        summary["step_s"] = (round(self.seconds / self.timed_calls, 6) if self.timed_calls
                             else None)
        if self.decision:
            summary["decision"] = self.decision
        return summary
