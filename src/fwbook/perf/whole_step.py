"""Two variants of the compiled training step that did not become the default.

:class:`fwbook.core.steps.CompiledStep` (``train``'s compiled step) compiles the model's forward
and backward and, on the CPU, the global-norm clipping and Adam. :class:`WholeStep` is that
step with clipping and Adam compiled on any device, plus two options the speedup suite
measures: ``cpp_wrapper=True`` has inductor call its kernels from generated C++ instead of
Python; ``fused_backward=True`` uses the hand-derived Eq. 4 backward of
:mod:`fwbook.perf.fused_eq4` for the loss.

Same contract as :func:`fwbook.core.steps.compiled_training_step` (``step(inputs, targets)
-> (loss, gradient norm before clipping)``), tested equal to the plain eager step
(``tests/test_whole_step.py``: losses, clipped gradients and parameters after Adam, fp32,
1e-5), over updates whose learning rate changes as a schedule changes it.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Optional

import torch

from fwbook.core.steps import CompiledStep

__all__ = ["WholeStep", "whole_training_step"]


class WholeStep(CompiledStep):
    """``step(inputs, targets) -> (loss, grad_norm)`` with forward, backward, clipping and
    Adam all compiled (see the module docstring)."""

    def __init__(self, model, optimizer, clip_norm: Optional[float], cpp_wrapper: bool = False,
                 fused_backward: bool = False, backend: str = "inductor", fallback: bool = True):
        super().__init__(model, optimizer, clip_norm, backend=backend, fallback=fallback,
                         compile_update=True)
        if fused_backward:
            from fwbook.perf.fused_eq4 import fused_loss, supports

            if not supports(model):
                raise ValueError("the fused backward needs a fast-weights model in the Eq. 4 form")
            self._eager_loss = functools.partial(fused_loss, model)
            self._compiled_loss = torch.compile(self._eager_loss, fullgraph=True, dynamic=False,
                                                backend=backend)
            self._loss = self._compiled_loss
        self.cpp_wrapper = cpp_wrapper

    def _update(self, loss_function, inputs, targets):
        with self._inductor_options():
            return super()._update(loss_function, inputs, targets)

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
