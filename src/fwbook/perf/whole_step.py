"""The whole training update compiled: forward, backward, clipping and Adam.

:class:`fwbook.core.steps.CompiledStep` compiles the model's forward and backward, and leaves
the global-norm clipping and Adam to eager foreach kernels: about twenty more small operations
per update, each paying PyTorch's dispatch overhead, on a step whose arithmetic takes well under
a millisecond at R = 50. :class:`WholeStep` also hands clipping and Adam to ``torch.compile``,
which fuses them into a few loops over every parameter; ``cpp_wrapper=True`` further has
inductor call its kernels from generated C++ instead of Python; ``fused_backward=True`` uses
the hand-derived Eq. 4 backward of :mod:`fwbook.perf.fused_eq4` for the loss.

Same contract as :func:`fwbook.core.steps.compiled_training_step` (``step(inputs, targets)
-> (loss, gradient norm before clipping)``), tested equal to the plain eager step
(``tests/test_whole_step.py``: losses, clipped gradients and parameters after Adam, fp32,
1e-5). A learning rate the trainer changes between updates (a schedule) is copied into a
tensor, so that the compiled Adam does not recompile for every new value.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Optional

import torch

from fwbook.core.steps import CompiledStep, clip_gradients

__all__ = ["WholeStep", "whole_training_step"]


class WholeStep(CompiledStep):
    """``step(inputs, targets) -> (loss, grad_norm)`` with forward, backward, clipping and
    Adam all compiled (see the module docstring)."""

    def __init__(self, model, optimizer, clip_norm: Optional[float], cpp_wrapper: bool = False,
                 fused_backward: bool = False, backend: str = "inductor", fallback: bool = True):
        super().__init__(model, optimizer, clip_norm, backend=backend, fallback=fallback)
        if fused_backward:
            from fwbook.perf.fused_eq4 import fused_loss, supports

            if not supports(model):
                raise ValueError("the fused backward needs a fast-weights model in the Eq. 4 form")
            self._eager_loss = functools.partial(fused_loss, model)
            self._compiled_loss = torch.compile(self._eager_loss, fullgraph=True, dynamic=False,
                                                backend=backend)
            self._loss = self._compiled_loss
        self.cpp_wrapper = cpp_wrapper
        # lr as a tensor: a schedule's new value is copied in, not a new constant to compile.
        # Adam takes a tensor lr in its single-tensor form only; compiled, the loops over the
        # parameters are fused by inductor either way.
        self._learning_rates = [torch.tensor(float(group["lr"])) for group in
                                optimizer.param_groups]
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
            if group["lr"] is not rate:  # the trainer set a new float (a schedule)
                rate.fill_(float(group["lr"]))
                group["lr"] = rate
        self.optimizer.zero_grad(set_to_none=True)
        with self._inductor_options():
            loss = loss_function(inputs, targets)
            loss.backward()
            apply = (self._clip_and_adam if loss_function is self._eager_loss
                     else self._compiled_apply)
            grad_norm = apply()
        return loss.detach().clone(), grad_norm.detach()

    def _inductor_options(self):
        if not self.cpp_wrapper:
            return contextlib.nullcontext()
        import torch._inductor.config as inductor_config

        return inductor_config.patch(cpp_wrapper=True)


def whole_training_step(model, optimizer, clip_norm: Optional[float], cpp_wrapper: bool = False,
                        fused_backward: bool = False, backend: str = "inductor",
                        fallback: bool = True) -> WholeStep:
    """A :class:`WholeStep` (forward, backward, clipping and Adam compiled).

    Args:
        model: the model (on its device, in training mode).
        optimizer: its Adam optimizer (its lr becomes a tensor, its form single-tensor).
        clip_norm: global gradient-norm threshold, None for no clipping.
        cpp_wrapper: inductor calls its kernels from generated C++ instead of Python.
        fused_backward: the loss through the hand-derived Eq. 4 backward (fast weights only).
        backend: torch.compile backend ("aot_eager" only checks the tracing).
        fallback: on a compile failure warn and use the plain step (False: raise).
    """
    return WholeStep(model, optimizer, clip_norm, cpp_wrapper, fused_backward, backend,
                     fallback)
