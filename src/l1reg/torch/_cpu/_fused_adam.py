"""ProximalL1's fused CPU step for Adam and AdamW: the optimizer's update and the prox in one pass.

A separate proximal pass over the parameters after ``torch.optim.Adam(fused=True).step()`` costs
more than the step itself on the CPU (both are memory-bound; the prox reads the parameter and the
second moment again and writes the parameter again). Fused into the step (``_adam_kernel``), the
prox costs arithmetic only.

:class:`FusedAdamStep` does it inside the wrapped optimizer's own ``step()``, so that the user's
step hooks and the learning-rate schedulers' bookkeeping see one ordinary step: a pre-hook,
registered last, picks the eligible parameters (after the user's pre-hooks, with the gradients
they leave) and hides their gradients, so that Adam skips them; a post-hook, placed first, gives
the gradients back and steps those parameters (before the user's post-hooks, which see every
parameter updated). The optimizer state is created and updated exactly as torch's (``step`` a
float32 tensor, ``exp_avg`` and ``exp_avg_sq``), so ``state_dict``, ``load_state_dict`` and
turning the fused path on or off between steps are seamless.

The tensors are cut into blocks that the threads of torch's own OpenMP team take one at a time
(:mod:`._threads`), as torch's fused Adam spreads its step over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.autograd.graph import increment_version

from .._distributed import is_dtensor
from .._metric import as_float
from . import _threads
from ._buffers import dtype_codes

__all__ = ["ADAMS", "FusedAdamStep", "Views", "param_reason"]

ADAMS = (torch.optim.Adam, torch.optim.AdamW)
_DTYPES = (torch.float32, torch.float64)
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def optimizer_reason(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ``optimizer`` cannot take the fused step (None: it can)."""
    if type(optimizer) not in ADAMS:
        return f"the optimizer is a {type(optimizer).__name__}, not a torch.optim.Adam or AdamW"
    if getattr(optimizer, "grad_scale", None) is not None:
        return "the optimizer has a grad_scale (AMP's fused gradient unscaling)"
    if getattr(optimizer, "found_inf", None) is not None:
        return "the optimizer has a found_inf (AMP's fused gradient unscaling)"
    return None


def group_reason(group: dict[str, Any]) -> str | None:
    """Why the parameters of param group ``group`` cannot take the fused step (None: they can)."""
    for flag in ("amsgrad", "capturable", "differentiable"):
        if group.get(flag):
            return f"its param group has {flag}=True"
    if group.get("foreach") and isinstance(group["lr"], torch.Tensor):
        return "its param group has a tensor lr with foreach=True (which torch's Adam rejects)"
    return None


def param_reason(param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any]) -> str | None:
    """Why ``param`` (with gradient ``grad`` and optimizer state ``state``) cannot take the step."""
    return _tensor_reason(param) or grad_reason(param, grad) or _state_reason(param, state)


def _tensor_reason(param: torch.Tensor) -> str | None:
    if is_dtensor(param):
        return "it is a DTensor"
    if not param.is_cpu:
        return f"it is on {param.device}, not the CPU"
    if param.dtype not in _DTYPES:
        return f"its dtype is {param.dtype}, not float32 or float64"
    if type(param) not in (torch.Tensor, torch.nn.Parameter) or param.is_neg():
        return f"it is a {type(param).__name__}"
    if not param.is_contiguous():
        return "it is not contiguous"
    return None


def grad_reason(param: torch.Tensor, grad: torch.Tensor) -> str | None:
    """Why the gradient ``grad`` of ``param`` cannot take the step (None: it can)."""
    if grad.layout != torch.strided:
        return f"its gradient has layout {grad.layout}"
    if (
        not grad.is_cpu
        or grad.dtype != param.dtype
        or grad.shape != param.shape
        or not grad.is_contiguous()
        or type(grad) is not torch.Tensor
        or grad.is_neg()
    ):
        return "its gradient is not a contiguous CPU tensor of its dtype and shape"
    return None


def _state_reason(param: torch.Tensor, state: dict[str, Any]) -> str | None:
    if not state:
        return None  # made at the step, as torch makes it
    for key in ("exp_avg", "exp_avg_sq"):
        moment = state.get(key)
        if not (
            isinstance(moment, torch.Tensor)
            and moment.is_cpu
            and moment.dtype == param.dtype
            and moment.shape == param.shape
            and moment.is_contiguous()
            and type(moment) is torch.Tensor
            and not moment.requires_grad
        ):
            return f"its optimizer state {key!r} is not a contiguous CPU tensor like it"
    step = state.get("step")
    if not (
        isinstance(step, torch.Tensor)
        and step.is_cpu
        and step.dtype in _DTYPES
        and step.numel() == 1
        and type(step) is torch.Tensor
        and not step.requires_grad
    ):
        return "its optimizer state 'step' is not a float CPU tensor of one element"
    return None


class Views:
    """What the fused step keeps of a parameter and its Adam state from one step to the next.

    From one step to the next this stays valid while the parameter keeps its memory (address,
    size, contiguity; ``param.data = ...`` changes it) and its state holds the same tensors
    (``load_state_dict`` replaces them); the full eligibility check of a parameter then needs not
    run again. ``step`` is a zero-copy NumPy view of the step count, for the compiled loop.
    """

    __slots__ = ("dtype", "exp_avg", "exp_avg_sq", "numel", "param_ptr", "step", "step_array")

    def __init__(self, param: torch.Tensor, state: dict[str, Any]) -> None:
        self.exp_avg = state["exp_avg"]
        self.exp_avg_sq = state["exp_avg_sq"]
        self.step = state["step"]
        self.param_ptr, self.numel, self.dtype = param.data_ptr(), param.numel(), param.dtype
        self.step_array = self.step.numpy().reshape(())

    def valid(self, param: torch.Tensor, state: dict[str, Any] | None) -> bool:
        """Whether ``param`` and its ``state`` are still what these views show."""
        return (
            state is not None
            and param.data_ptr() == self.param_ptr
            and param.numel() == self.numel
            and param.is_contiguous()
            and state.get("exp_avg") is self.exp_avg
            and state.get("exp_avg_sq") is self.exp_avg_sq
            and state.get("step") is self.step
        )

    def grad_reason(self, grad: torch.Tensor) -> str | None:
        """:func:`grad_reason` for the parameter of these views (valid ones), checked faster.

        (torch gives ``param.grad`` the parameter's shape, dtype and device, or refuses it.)
        """
        if (
            grad.layout == torch.strided
            and grad.is_contiguous()
            and type(grad) is torch.Tensor
            and grad.dtype == self.dtype
            and grad.numel() == self.numel
            and not grad.is_neg()
        ):
            return None
        return "its gradient is not a contiguous CPU tensor of its dtype and shape"


# (a penalized parameter's Selected item, the index of its param group)
Item = tuple[Any, int]
# (the item, its gradient, its param group, its views from the previous step or None)
Planned = tuple[Any, torch.Tensor, dict[str, Any], "Views | None"]


class FusedAdamStep:
    """The fused part of one ``ProximalL1.step()``, run from hooks of the wrapped optimizer.

    ``items`` are the ``Selected`` items of the penalty with the index of their param group.
    ``plan`` is a step pre-hook, ``run`` a step post-hook (see the module docstring).
    ``on_error(name, reason)`` builds the exception raised when ``require`` is set and an item is
    not eligible. ``views`` maps the ids of parameters to their :class:`Views` from the previous
    step. After the step, ``rest`` holds the items not stepped here (for the separate prox) and
    ``views`` the views of those stepped here. The bookkeeping is done before the kernel runs:
    after it (a pass over all the optimizer's memory) every object touched is a cache miss.
    """

    def __init__(
        self,
        items: Sequence[Item],
        require: bool,
        on_error: Callable[[str, str], Exception],
        views: dict[int, Views],
    ) -> None:
        self.items = items
        self.require = require
        self.on_error = on_error
        self.views = views
        self.planned: list[Planned] = []
        self.hidden = False
        self.ran = False
        self.rest: Sequence[Item] = items

    def plan(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        reason = optimizer_reason(optimizer)
        if reason is not None:
            if self.require:
                raise self.on_error("", reason)
            return
        groups = optimizer.param_groups
        states = optimizer.state
        cache = self.views
        group_reasons: dict[int, str | None] = {}
        seen: set[int] = set()
        planned = self.planned
        for item, index in self.items:
            if item.group_axes is not None:
                continue
            param = item.param
            grad = param.grad
            key = id(param)
            if grad is None or key in seen:
                continue  # Adam skips a parameter without gradient; the prox is ProximalL1's
            seen.add(key)
            if index in group_reasons:
                reason = group_reasons[index]
            else:
                reason = group_reasons[index] = group_reason(groups[index])
            views = cache.get(key)
            if reason is None:
                state = states.get(param)
                if views is not None and views.valid(param, state):
                    reason = views.grad_reason(grad)
                else:
                    views = None
                    reason = param_reason(param, grad, state or {})
            if reason is not None:
                if self.require:
                    raise self.on_error(item.name, reason)
                continue
            planned.append((item, grad, groups[index], views))
        for entry in planned:
            entry[0].param.grad = None
        self.hidden = True
        done = {id(entry[0].param) for entry in planned}
        self.rest = [pair for pair in self.items if id(pair[0].param) not in done]

    def restore(self) -> None:
        """Give the hidden gradients back (idempotent)."""
        if self.hidden:
            for item, grad, _, _ in self.planned:
                item.param.grad = grad
            self.hidden = False

    def run(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.restore()
        if self.ran:
            return
        self.ran = True
        if not self.planned:
            self.views = {}
            return
        with torch.no_grad():
            self.views = _fused_step(optimizer, self.planned)


def _scalar_dtype(is_fused: bool | None) -> torch.dtype:
    # torch.optim.optimizer._get_scalar_dtype, the dtype of Adam's state["step"]
    if is_fused:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _init_state(param: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
    """Adam's lazy state initialisation, as ``torch.optim.Adam._init_group`` does it."""
    if group.get("capturable") or group.get("fused"):
        step = torch.zeros((), dtype=_scalar_dtype(group.get("fused")), device=param.device)
    else:
        step = torch.tensor(0.0, dtype=_scalar_dtype(None), device="cpu")
    state["step"] = step
    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)


def _hyper(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> list[float]:
    """The row of ``_adam_kernel.HYPER`` without lambda_reg, read from the group at this step."""
    beta1, beta2 = group["betas"]
    # (AdamW's groups have no "decoupled_weight_decay" before torch 2.6 or so)
    decoupled = type(optimizer) is torch.optim.AdamW or group.get("decoupled_weight_decay")
    return [
        as_float(group["lr"]),
        as_float(beta1),
        as_float(beta2),
        as_float(group["eps"]),
        as_float(group["weight_decay"]),
        1.0 if decoupled else 0.0,
        1.0 if group.get("maximize") else 0.0,
    ]


def _fused_step(optimizer: torch.optim.Optimizer, planned: Sequence[Planned]) -> dict[int, Views]:
    """Step the planned parameters; return their views by parameter id."""
    from . import _adam_kernel as kernel  # imports numba, at the first fused step

    rows: dict[tuple[int, float], int] = {}  # one hyper-parameter row per (group, lambda_reg)
    hyper: list[list[float]] = []
    which = []
    kept = []
    params = []
    used: dict[int, Views] = {}
    for item, grad, group, views in planned:
        param = item.param
        if views is None:
            state = optimizer.state[param]
            if not state:
                _init_state(param, group, state)
            views = Views(param, state)
        used[id(param)] = views
        key = (id(group), item.lambda_reg)
        if key not in rows:
            rows[key] = len(hyper)
            hyper.append([*_hyper(optimizer, group), item.lambda_reg])
        which.append(rows[key])
        kept.append((views, grad))
        params.append(param)
    hyper_rows = np.array(hyper, dtype=np.float64)
    # the coefficients of each tensor, in its dtype, filled before the job (whose threads may
    # take several blocks of one tensor at once)
    coefficients = {
        dtype: kernel.new_coefficients(_NUMPY[dtype], len(kept))
        for dtype in {views.dtype for views, _ in kept}
    }
    codes = dtype_codes()
    table: list[int] = []
    sizes = [views.numel for views, _ in kept]
    for k, start, stop in _threads.blocks(sizes):
        views, grad = kept[k]
        if start == 0:  # (the first block of a tensor)
            c = coefficients[views.dtype][k]
            kernel.coefficients_(views.step_array, hyper_rows[which[k]], c)
            c_address = c.ctypes.data
        offset = start * views.dtype.itemsize
        table += (
            views.param_ptr + offset,
            grad.data_ptr() + offset,
            views.exp_avg.data_ptr() + offset,
            views.exp_avg_sq.data_ptr() + offset,
            c_address,
            stop - start,
            codes[views.dtype],
        )
    # As torch's in-place updates do, so that autograd sees the change (the state tensors are in
    # no graph: not theirs); before the kernel, while the parameters are in cache.
    increment_version(params)
    _threads.run(
        kernel.adam_prox_work, kernel.adam_prox_worker, table, kernel.ADAM_WIDTH, sum(sizes)
    )
    return used
