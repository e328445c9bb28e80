r"""``ProximalL1``: any torch optimizer, followed by the proximal step of an :class:`L1Regularizer`.

After the optimizer's step on the data loss, each penalized weight is soft-thresholded:

.. math::

    w_i \leftarrow \operatorname{sign}(w_i)\,\max(|w_i| - t_i, 0),
    \qquad t_i = \frac{\eta\,\lambda}{D_i},

the proximal operator of :math:`\lambda\|w\|_1` in the metric :math:`\operatorname{diag}(D)/\eta`
in which the optimizer stepped. For SGD (and any optimizer without a second moment) ``D_i = 1``:
the threshold is ``lr * lambda_reg``. For Adam-like optimizers ``D_i`` is the optimizer's own
denominator, ``sqrt(v_hat_i) + eps`` (Adam, AdamW, NAdam, RAdam), ``u_i + eps`` (Adamax),
``sqrt(sum_i) + eps`` (Adagrad), ``sqrt(square_avg_i) + eps`` (RMSprop). The plain threshold after
Adam shrinks weights with small gradients far too little (Adam's step is ``lr / D_i`` times the
gradient, a large multiple of ``lr`` when ``D_i`` is small), so nothing reaches zero; the metric
threshold is what gives exact zeros. Measured on the textbook problem of issue 4
(``benchmarks/textbook_torch.py``): after 3000 Adam steps the plain threshold leaves 0 of 832
weights at zero and the metric threshold 795 (test accuracy 94.9 %; the textbook recipe, 95.4 %).
``metric="plain"`` is kept for such comparisons.

The group penalty ``lambda_reg * sqrt(|g|) * ||w_g||`` takes its prox in the same metric, exactly.
With ``tau = lr * lambda_reg * sqrt(|g|)`` and ``z`` the group after the optimizer's step, the prox
minimises ``1/2 ||x - z||_D^2 + tau ||x||_2`` over the group; its solution is

.. math::

    x = 0 \iff \|D \odot z\|_2 \le \tau, \qquad
    \text{else}\quad x_i = z_i \frac{s}{s + \tau / D_i},
    \quad s = \|x\| > 0 \text{ the root of } \sum_i \frac{z_i^2}{(s + \tau/D_i)^2} = 1.

For a group that was zero before an Adam step, ``D z = -lr * m_hat``: it stays zero iff
``||m_hat_g|| <= lambda_reg * sqrt(|g|)``, the optimality condition of the penalized loss with
the optimizer's gradient estimate. The function ``H(s) = (sum_i z_i^2 / (s + tau/D_i)^2)^(-1/2)`` is
increasing and concave (the secular function of trust-region methods), so Newton's method on
``H(s) = 1`` started below the root stays below it and converges; it starts at ``s0 = ||z|| -
sum_i z_i^2 (tau/D_i) / ||z||^2`` (a lower bound by Jensen's inequality, and the root when ``D``
is constant on the group: then the rule is block soft-thresholding with threshold ``tau / D``)
and takes at most 5 steps (relative error of ``s`` below 1e-6 even with ``D`` spread over six
decades in a group; ``s`` is never overestimated, so the step never shrinks too little). On the
CPU it stops as soon as every Newton step is below 1e-6 of ``s`` (usually after 1-2 steps); on
other devices it takes the 5 steps, which needs no synchronisation with the host. ``l1reg.keras``
and ``l1reg.jax`` use the same rule. It replaced one scalar metric per group, the mean of ``D_i``
(a closed form, but not the prox in ``D``: it zeroes a group when ``||z|| mean(D) <= tau``, which
may keep groups whose gradient passes the optimality condition and zero others that fail it).
Measured on the textbook problem (``benchmarks/textbook_torch.py``, group penalty on the first
layer's inputs, 3000 full-batch Adam steps) both rules remove all 7 irrelevant inputs, the exact
one at 96.4 % test accuracy (the mean: 96.0 %; the textbook recipe: 95.4 %); in the mini-batch
Keras/JAX textbook runs (``benchmarks/group_prox_study.py``, 3 seeds) the exact rule gave
0.07-0.38 point more accuracy in each of the 13 runs where both rules kept 3 inputs.

Exact zeros come from ``x - clip(x, -t, t)`` and softshrink (``x - x`` is exactly 0) and from
multiplying by an exactly-zero factor. The elementwise step runs as a few multi-tensor
(``torch._foreach_*``) calls over all tensors of one device and dtype; on the CPU, tensors of 32 K
values or more are shrunk in place instead: by softshrink for the plain threshold, by one compiled
pass on torch's threads in the optimizer's metric (float32/float64; other dtypes chunk by chunk
through two cached scratch buffers: fresh temporaries the size of the model cost more in page
faults than the arithmetic). The group prox in the optimizer's metric is one compiled pass per
weight on the CPU; elsewhere alike weights (one shape, dtype and grouping) are stacked into one
set of kernels. It works on the local shards of DTensor parameters and needs no communication.
The group step needs the sums over groups split across shards: one all-reduce for the norms,
and in the optimizer's metric one more for the zero test and two per Newton step.

On the CPU that separate pass costs more than the optimizer's step (both are memory-bound), so with
``torch.optim.Adam`` or ``AdamW`` the plain L1 prox is fused into the step where it can be
(``fused=None``, the default; ``_fused_adam`` and ``_adam_kernel``): one pass reads the gradient,
updates the moments and the weight and soft-thresholds it at ``lr * lambda_reg / D_i``, the same
result as the step then the prox, to an ulp.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._validation import invalid_parameter
from . import _threads
from ._fused import (
    _block_rows,
    _kernels,
    _scratch,
    _viewable,
    accumulation_dtype,
    all_reduce_sum,
    dtype_codes,
    is_dtensor,
    shard_groups,
)
from ._fused_adam import ADAMS, FusedAdamStep
from ._regularizer import L1Regularizer, check_regularizer, group_squares
from ._selection import Selected

__all__ = ["ProximalL1"]

_OWNER = "ProximalL1"
_METRICS = ("optimizer", "plain")
# On the CPU, tensors of at least this many elements are shrunk one by one with in-place kernels
# (softshrink writes its result over its input); below it, multi-tensor calls over the list win.
_CPU_LARGE = 1 << 15
# Elements per chunk of the scaled step on the CPU: two float32 buffers of 512 KiB fit in L2.
_CPU_CHUNK = 1 << 17
# Newton steps of the group prox in the optimizer's metric (from the lower-bound start, the relative
# error of the group norm is below 1e-6 after 5, even with D spread over six decades in a group).
_NEWTON_STEPS = 5
# Values per stack of alike weights in the eager group prox: its temporaries take about ten
# times the stack's memory (128 MiB of float32 each here).
_STACK = 1 << 25


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if is_dtensor(tensor) else tensor


def _as_float(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


class _Denominator:
    """The optimizer's per-coordinate denominator for one parameter: ``D = scale * (root + shift)``.

    ``root`` is ``sqrt(second)`` or ``second`` itself; ``scale`` is the bias correction. The
    threshold ``lr * lam / D`` is computed as ``(lr * lam / scale) / (root + shift)``.
    """

    __slots__ = ("scale", "second", "shift", "take_sqrt")

    def __init__(self, second: torch.Tensor, take_sqrt: bool, scale: float, shift: float) -> None:
        self.second, self.take_sqrt, self.scale, self.shift = second, take_sqrt, scale, shift

    def full(self) -> torch.Tensor:
        """``root + shift`` as a new tensor (the metric up to the factor ``scale``)."""
        root = self.second.sqrt() if self.take_sqrt else self.second.clone()
        return root.add_(self.shift)


def _steps(states: list[dict[str, Any]]) -> list[float]:
    """The step count of each state as floats, with one device-to-host copy per device (fused
    and capturable Adam keep their step counts on the parameters' device)."""
    steps = [state.get("step", 0) for state in states]
    by_device: dict[torch.device, list[int]] = {}
    for i, step in enumerate(steps):
        if isinstance(step, torch.Tensor):
            by_device.setdefault(step.device, []).append(i)
    for indices in by_device.values():
        counts = [steps[i] for i in indices]
        if not all(count.dim() == 0 for count in counts):  # (0-d in torch's optimizers)
            counts = [count.reshape(()) for count in counts]
        values = torch.stack(counts).tolist()
        for i, value in zip(indices, values):
            steps[i] = value
    return [float(s) for s in steps]


def _denominator(
    group: dict[str, Any], state: dict[str, Any], lr: float, step: float, memo: dict
) -> tuple[_Denominator | None, float]:
    """(the metric of one parameter, its learning rate) from its optimizer state; None: plain.

    ``memo`` keeps the scalars of a param group at a step count for the group's other
    parameters (one ``_prox_pairs`` call: the hyperparameters cannot change during it).
    """
    if step <= 0:
        return None, lr
    if "exp_avg_sq" in state:  # Adam, AdamW, NAdam, RAdam
        second = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
        kind = 0
    elif "exp_inf" in state:  # Adamax
        second, kind = state["exp_inf"], 1
    elif "sum" in state:  # Adagrad
        second, kind = state["sum"], 2
    elif "square_avg" in state:  # RMSprop
        second, kind = state["square_avg"], 3
        if group.get("centered") and "grad_avg" in state:
            grad_avg = _local(state["grad_avg"])
            second = torch.addcmul(_local(second), grad_avg, grad_avg, value=-1)
    else:
        return None, lr
    key = (id(group), kind, step)
    scalars = memo.get(key)
    if scalars is None:
        scalars = memo[key] = _metric_scalars(group, kind, lr, step)
    take_sqrt, scale, shift, rate = scalars
    return _Denominator(_local(second), take_sqrt, scale, shift), rate


def _metric_scalars(
    group: dict[str, Any], kind: int, lr: float, step: float
) -> tuple[bool, float, float, float]:
    """``(take_sqrt, scale, shift, learning rate)`` of the metric of ``kind`` (see
    :func:`_denominator`) in param group ``group`` at step count ``step``."""
    eps = _as_float(group.get("eps", 1e-8))
    if kind == 0:
        # D = sqrt(v / bc) + eps = (sqrt(v) + eps * sqrt(bc)) / sqrt(bc), bc = 1 - beta2**step
        root_bc = math.sqrt(1 - _as_float(group["betas"][1]) ** step)
        return True, 1 / root_bc, eps * root_bc, lr
    if kind == 1:
        return False, 1.0, eps, lr
    if kind == 2:  # Adagrad decays its learning rate itself
        return True, 1.0, eps, lr / (1 + (step - 1) * _as_float(group.get("lr_decay", 0.0)))
    return True, 1.0, eps, lr


def _shrink_plain_(tensors: list[torch.Tensor], thresholds: list[float]) -> None:
    """``x <- x - clip(x, -t, t)`` for each tensor and its scalar threshold, in place."""
    rest, rest_t = [], []
    for tensor, threshold in zip(tensors, thresholds):
        if tensor.device.type == "cpu" and tensor.numel() >= _CPU_LARGE:
            # One pass over memory: softshrink writes sign(x) max(|x| - t, 0) over x.
            torch._C._nn.softshrink(tensor, threshold, out=tensor)
        else:
            rest.append(tensor)
            rest_t.append(threshold)
    if rest:
        shrink = torch._foreach_clamp_max(rest, rest_t)
        torch._foreach_clamp_min_(shrink, [-t for t in rest_t])
        torch._foreach_sub_(rest, shrink)


def _shrink_scaled_(
    tensors: list[torch.Tensor], metrics: list[_Denominator], thresholds: list[float]
) -> None:
    """``x <- x - clip(x, -c / D, c / D)`` with ``D = root + shift``, coordinate-wise, in place.

    ``x * D`` is soft-thresholded at ``c`` (exact zeros where ``|x| D <= c``) and divided back by
    ``D``. On the CPU, large float32/float64 tensors take one compiled pass; other large ones go
    through two scratch buffers a chunk at a time, so that the temporaries stay in cache (fresh
    tensors the size of the model would cost more in page faults than the arithmetic); small
    tensors and CUDA tensors use multi-tensor calls.
    """
    rest: list[int] = []
    compiled: list[int] = []
    for i, (tensor, metric) in enumerate(zip(tensors, metrics)):
        second = metric.second
        if (
            tensor.device.type == "cpu"
            and tensor.numel() >= _CPU_LARGE
            and tensor.is_contiguous()
            and second.is_contiguous()
            and second.dtype == tensor.dtype
        ):
            if _viewable(tensor) and _viewable(second):
                compiled.append(i)
            else:
                _shrink_scaled_chunks_(tensor, metric, thresholds[i])
        else:
            rest.append(i)
    if compiled:
        _compiled_shrink_scaled_([(tensors[i], metrics[i], thresholds[i]) for i in compiled])
    if not rest:
        return
    seconds = [metrics[i].second for i in rest]
    if metrics[rest[0]].take_sqrt:
        denominators = torch._foreach_sqrt(seconds)
    else:
        denominators = torch._foreach_mul(seconds, 1.0)
    torch._foreach_add_(denominators, [metrics[i].shift for i in rest])
    values = [tensors[i] for i in rest]
    limits = [thresholds[i] for i in rest]
    scaled = torch._foreach_mul(values, denominators)
    shrink = torch._foreach_clamp_max(scaled, limits)
    torch._foreach_clamp_min_(shrink, [-c for c in limits])
    torch._foreach_sub_(scaled, shrink)  # exactly 0 where |x D| <= c
    torch._foreach_div_(scaled, denominators)
    torch._foreach_copy_(values, scaled)


def _compiled_shrink_scaled_(rows: Sequence[tuple[torch.Tensor, _Denominator, float]]) -> None:
    """:func:`_shrink_scaled_` of contiguous float32/float64 CPU tensors (and second moments of
    their dtype) by one compiled pass, a job on torch's threads."""
    kernels = _kernels()
    table, elements = _block_rows(
        [tensor for tensor, _, _ in rows],
        [metric.second for _, metric, _ in rows],
        [(int(metric.take_sqrt), k) for k, (_, metric, _) in enumerate(rows)],
    )
    pairs = np.array([(c, metric.shift) for _, metric, c in rows], dtype=np.float64)
    _threads.run(
        kernels.metric_shrink_work,
        kernels.metric_shrink_worker,
        table,
        kernels.METRIC_SHRINK_WIDTH,
        elements,
        pairs.ctypes.data,
    )


def _shrink_scaled_chunks_(tensor: torch.Tensor, metric: _Denominator, threshold: float) -> None:
    values = tensor.view(-1)
    second = metric.second.view(-1)
    size = min(values.numel(), _CPU_CHUNK)
    denominator_buffer = _scratch(values.device, values.dtype, size, 2)
    scaled_buffer = _scratch(values.device, values.dtype, size, 3)
    for start in range(0, values.numel(), size):
        chunk = values[start : start + size]
        n = chunk.numel()
        denominator, scaled = denominator_buffer[:n], scaled_buffer[:n]
        if metric.take_sqrt:
            torch.sqrt(second[start : start + n], out=denominator)
        else:
            denominator.copy_(second[start : start + n])
        denominator.add_(metric.shift)
        torch.mul(chunk, denominator, out=scaled)
        torch._C._nn.softshrink(scaled, threshold, out=scaled)
        torch.div(scaled, denominator, out=chunk)


class ProximalL1(torch.optim.Optimizer):
    """Wrap ``optimizer`` so that each ``step()`` ends with the proximal step of ``regularizer``.

    ``step()`` runs the wrapped optimizer on the data loss (do not add the penalty to the loss),
    then soft-thresholds the regularizer's parameters with each parameter group's current learning
    rate, in the optimizer's own metric for Adam-like optimizers (see the module docstring). A
    weight that is zero stays exactly zero unless its data gradient is large enough to bring it
    back. ``zero_grad``, ``state_dict``/``load_state_dict``, ``param_groups`` and learning-rate
    schedulers behave as on the wrapped optimizer (a scheduler may wrap either).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Holds every parameter of ``regularizer``.
    regularizer : L1Regularizer
        The penalty and its parameters; ``regularizer.lambda_reg`` is read at every step.
    metric : {"optimizer", "plain"}, default "optimizer"
        ``"plain"`` forces the threshold ``lr * lambda_reg`` whatever the optimizer.
    relax_after : int or None, default None
        The relaxed lasso: after this many calls of :meth:`step`, :meth:`relax` fixes the
        support, and later steps train the kept weights without shrinkage (zeros stay exactly
        zero). As ``relax_after`` of ``l1reg.jax.adam_l1`` (steps) and of the Keras callback
        (epochs).
    fused : bool or None, default None
        Fuse the prox into the optimizer's step, one pass over memory for both, where it can:
        ``torch.optim.Adam`` or ``AdamW`` (exactly those classes) and ``metric="optimizer"``, for
        contiguous float32/float64 CPU parameters under the plain L1 penalty, with a dense
        gradient, in param groups without ``amsgrad``, ``capturable`` or ``differentiable``.
        The result is the same as Adam's step then :meth:`prox_step` (to an ulp). ``None``:
        wherever it can; ``False``: never; ``True``: raise a ``ValueError`` (naming the
        parameter and the reason) at a step where a penalized parameter with a gradient cannot,
        or here for another optimizer, ``metric="plain"`` or a group penalty. As torch's
        ``fused``, it concerns speed only; the state is torch's own either way. The first fused
        step imports numba (about half a second).

    Examples
    --------
    >>> import torch
    >>> from l1reg.torch import L1Regularizer, ProximalL1
    >>> model = torch.nn.Linear(10, 1)
    >>> reg = L1Regularizer(model, lambda_reg=0.1)
    >>> opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=1e-2), reg)
    >>> x, y = torch.randn(64, 10), torch.randn(64, 1)
    >>> for _ in range(5):
    ...     opt.zero_grad()
    ...     torch.nn.functional.mse_loss(model(x), y).backward()
    ...     opt.step()
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        regularizer: L1Regularizer,
        *,
        metric: str = "optimizer",
        relax_after: int | None = None,
        fused: bool | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer) or isinstance(optimizer, ProximalL1):
            raise TypeError(
                invalid_parameter("optimizer", _OWNER, "a torch.optim.Optimizer", optimizer)
            )
        regularizer = check_regularizer(regularizer, _OWNER)
        if metric not in _METRICS or not isinstance(metric, str):
            raise ValueError(invalid_parameter("metric", _OWNER, "'optimizer' or 'plain'", metric))
        if relax_after is not None:
            expected = "None or a non-negative integer (a number of steps)"
            if isinstance(relax_after, bool) or not isinstance(relax_after, numbers.Integral):
                raise TypeError(invalid_parameter("relax_after", _OWNER, expected, relax_after))
            if relax_after < 0:
                raise ValueError(invalid_parameter("relax_after", _OWNER, expected, relax_after))
        if fused is not None and not isinstance(fused, bool):
            raise TypeError(invalid_parameter("fused", _OWNER, "None, True or False", fused))
        if fused and metric != "optimizer":
            raise ValueError(
                invalid_parameter(
                    "fused",
                    _OWNER,
                    "None or False with metric='plain' (the fused prox is in Adam's metric)",
                    fused,
                )
            )
        if fused and type(optimizer) not in ADAMS:
            raise ValueError(
                invalid_parameter(
                    "fused",
                    _OWNER,
                    "None or False for a "
                    f"{type(optimizer).__name__} (the fused step is torch.optim.Adam's or AdamW's)",
                    fused,
                )
            )
        grouped = [item.name for item in regularizer.selected if item.group_axes is not None]
        if fused and grouped:
            raise ValueError(
                invalid_parameter(
                    "fused",
                    _OWNER,
                    f"None or False for a group penalty (on {grouped[0]!r}; the fused step "
                    "takes the plain L1 penalty)",
                    fused,
                )
            )
        self.optimizer = optimizer
        self.regularizer = regularizer
        self.metric = metric
        self.fused = fused
        self.relax_after = relax_after
        self._steps_taken = 0
        self._support: list[torch.Tensor] | None = None
        self._group_of = self._locate()
        # Optimizer.__init__ is not called (the wrapped optimizer owns the state); these are the
        # attributes that torch's hooks and profiler expect on an optimizer.
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()

    def _locate(self) -> list[int]:
        """The index of the param group of each regularized parameter; raise if one is missing."""
        where = {
            id(p): i for i, group in enumerate(self.optimizer.param_groups) for p in group["params"]
        }
        found = []
        for item in self.regularizer.selected:
            if id(item.param) not in where:
                raise ValueError(
                    invalid_parameter(
                        "regularizer",
                        _OWNER,
                        "a regularizer whose parameters are all in the "
                        f"optimizer ({item.name!r} of shape {tuple(item.param.shape)} is not)",
                        self.regularizer,
                    )
                )
            found.append(where[id(item.param)])
        return found

    # The wrapped optimizer's state is this optimizer's state.
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)
        self._group_of = self._locate()

    def __repr__(self) -> str:
        extra = "" if self.relax_after is None else f", relax_after={self.relax_after!r}"
        extra += "" if self.fused is None else f", fused={self.fused!r}"
        return (
            f"ProximalL1({self.optimizer!r}, {self.regularizer!r}, metric={self.metric!r}{extra})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # (the fused step's NumPy views of the tensors are made again at the next step)
        return {k: v for k, v in self.__dict__.items() if k != "_views"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # (pickled before the fused step and the relaxed lasso existed)
        self.__dict__.update(fused=None, relax_after=None, _steps_taken=0, _support=None)
        self.__dict__.update(state)

    @property
    def relaxed(self) -> bool:
        """True once :meth:`relax` has fixed the support."""
        return self._support is not None

    @torch.no_grad()
    def relax(self) -> None:
        """End selection (the relaxed lasso): fix the current support; never shrink again.

        The support is the nonzero weights (plain L1) or nonzero groups (group penalty) of every
        regularized parameter. Each later :meth:`step` is the wrapped optimizer's step followed
        by the projection onto the support: zeros stay exactly zero, the other weights are fitted
        without shrinkage. Called again, it does nothing. The support is not part of
        ``state_dict``.
        """
        if self._support is not None:
            return
        support = []
        for item in self.regularizer.selected:
            local = _local(item.param)
            if item.group_axes is None:
                support.append(local != 0)
            else:
                kept = group_squares(item.param, item.group_axes) > 0
                support.append(kept.reshape(_keepdim_shape(local, item.group_axes)))
        self._support = support

    @torch.no_grad()
    def _project(self) -> None:
        assert self._support is not None
        for item, kept in zip(self.regularizer.selected, self._support):
            _local(item.param).mul_(kept)

    def step(self, closure: Any = None) -> Any:
        """One step of the wrapped optimizer, then the proximal step. Returns the closure's loss.

        Where the prox is fused into the optimizer's step (see ``fused``), the closure is
        evaluated first, under ``torch.enable_grad()``, and the wrapped optimizer's ``step()`` is
        called without it: its hooks and the schedulers' bookkeeping see an ordinary step.
        """
        if self.relax_after is not None and self._steps_taken >= self.relax_after:
            self.relax()
        self._steps_taken += 1
        if (
            self._support is not None
            or self.fused is False
            or self.metric != "optimizer"
            or type(self.optimizer) not in ADAMS
        ):
            loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
            self.prox_step()
            return loss
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_groups()
        pairs = list(zip(self.regularizer.selected, self._group_of))
        fused = FusedAdamStep(
            pairs, self.fused is True, self._fused_error, self.__dict__.get("_views", {})
        )
        optimizer = self.optimizer
        pre = optimizer.register_step_pre_hook(fused.plan)  # the last pre-hook
        post = optimizer.register_step_post_hook(fused.run)
        post_hooks = getattr(optimizer, "_optimizer_step_post_hooks", None)
        if post_hooks is not None and post.id in post_hooks:
            post_hooks.move_to_end(post.id, last=False)  # the first post-hook
        try:
            optimizer.step()
        finally:
            pre.remove()
            post.remove()
            fused.restore()
        fused.run(optimizer, (), {})  # in case a step wrapper called the pre-hook only
        self._views = fused.views
        self._prox_pairs(fused.rest)
        return loss

    def _fused_error(self, name: str, reason: str) -> ValueError:
        what = f"parameter {name!r}" if name else "this optimizer"
        expected = f"None or False: the fused step cannot take {what} ({reason})"
        return ValueError(invalid_parameter("fused", _OWNER, expected, True))

    def _check_groups(self) -> None:
        if len(self._group_of) != len(self.regularizer.selected):
            self._group_of = self._locate()

    @torch.no_grad()
    def prox_step(self) -> None:
        """The proximal step alone, with the current learning rates and optimizer state.

        After :meth:`relax`, the projection onto the support instead.
        """
        if self._support is not None:
            self._project()
            return
        self._check_groups()
        self._prox_pairs(list(zip(self.regularizer.selected, self._group_of)))

    @torch.no_grad()
    def _prox_pairs(self, pairs: Sequence[tuple[Selected, int]]) -> None:
        """The proximal step of the items in ``pairs`` (each with its param group's index)."""
        if not pairs:
            return
        plain: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}
        scaled: dict[tuple[torch.device, torch.dtype, bool], tuple[list, list, list]] = {}
        states = [self.optimizer.state.get(item.param, {}) for item, _ in pairs]
        steps = _steps(states) if self.metric == "optimizer" else [0.0] * len(states)
        rates: dict[int, float] = {}
        memo: dict = {}
        compiled_groups: list[tuple] = []  # group proxes for the compiled CPU loop
        eager_groups: list[tuple[Selected, float, _Denominator | None]] = []  # and the others
        for (item, index), state, step in zip(pairs, states, steps):
            if not item.param.requires_grad:
                continue  # frozen: torch's optimizers and weight decay leave it alone too
            group = self.optimizer.param_groups[index]
            if index not in rates:
                rates[index] = _as_float(group["lr"])  # one host copy per group for tensor rates
            lr = rates[index]
            metric = None
            if self.metric == "optimizer":
                metric, lr = _denominator(group, state, lr, step, memo)
            threshold = lr * item.lambda_reg
            if threshold <= 0:
                continue
            if item.group_axes is not None:
                row = None if metric is None else _compiled_group_row(item, threshold, metric)
                if row is None:
                    eager_groups.append((item, threshold, metric))
                else:
                    compiled_groups.append(row)
                continue
            local = _local(item.param)
            if local.numel() == 0:
                continue
            if metric is None:
                key = (local.device, local.dtype)
                tensors, thresholds = plain.setdefault(key, ([], []))
                tensors.append(local)
                thresholds.append(threshold)
            else:
                key3 = (local.device, local.dtype, metric.take_sqrt)
                tensors, metrics, thresholds = scaled.setdefault(key3, ([], [], []))
                tensors.append(local)
                metrics.append(metric)
                thresholds.append(threshold / metric.scale)
        for tensors, thresholds in plain.values():
            _shrink_plain_(tensors, thresholds)
        for tensors, metrics, thresholds in scaled.values():
            _shrink_scaled_(tensors, metrics, thresholds)
        if compiled_groups:
            _compiled_group_prox_(compiled_groups)
        _eager_group_proxes_(eager_groups)


def _eager_group_proxes_(entries: Sequence[tuple[Selected, float, _Denominator | None]]) -> None:
    """Group proxes by torch operations: weights alike (shape, dtype, device, grouping, metric)
    stacked, at most ``_STACK`` values at a time; DTensors and the plain metric one by one."""
    stacks: dict[tuple, list[tuple[Selected, float, _Denominator]]] = {}
    for item, threshold, metric in entries:
        param = item.param
        if metric is None or is_dtensor(param) or metric.second.shape != param.shape:
            _group_prox_(item, threshold, metric)
            continue
        key = (
            param.device,
            param.dtype,
            param.shape,
            item.group_axes,
            metric.take_sqrt,
            metric.second.dtype,
        )
        stacks.setdefault(key, []).append((item, threshold, metric))
    for alike in stacks.values():
        count = max(1, _STACK // alike[0][0].param.numel())
        for start in range(0, len(alike), count):
            chunk = alike[start : start + count]
            if len(chunk) == 1:
                _group_prox_(*chunk[0])
            else:
                _stacked_group_proxes_(chunk)


def _group_prox_(item: Selected, threshold: float, metric: _Denominator | None) -> None:
    """The group prox of one weight, in place (see the module docstring for the rule)."""
    param = item.param
    axes = item.group_axes
    assert axes is not None
    local = _local(param)
    squares = group_squares(param, axes)
    tau = threshold * math.sqrt(item.group_size)
    shape = _keepdim_shape(local, axes)
    if metric is None:
        norms = squares.sqrt()
        keep = norms > tau
        factor = torch.where(keep, 1 - tau / torch.where(keep, norms, 1), 0)
        local.mul_(factor.to(local.dtype).reshape(shape))
        return
    groups = shard_groups(param, axes) if is_dtensor(param) else None

    def group_sums(values: torch.Tensor) -> torch.Tensor:
        sums = values.sum(dim=axes)
        return (sums if groups is None else all_reduce_sum(sums, groups)).reshape(shape)

    z = local.to(squares.dtype)
    # (D = 0, a coordinate that never had a gradient, eps = 0: c = tau / D huge, x_i ~ 0.)
    d = metric.full().to(squares.dtype).mul_(metric.scale).clamp_(min=torch.finfo(z.dtype).tiny)
    factor = _group_factor(z, d, squares.reshape(shape), tau, group_sums)
    local.copy_((z * factor).to(local.dtype))


def _stacked_group_proxes_(entries: Sequence[tuple[Selected, float, _Denominator]]) -> None:
    """The group proxes of weights of one shape, dtype, device and grouping (plain tensors, each
    with an optimizer metric), stacked: one set of kernels for all of them (on a GPU a weight's
    own set of about 80 small kernels costs more in launches than in memory)."""
    first, _, first_metric = entries[0]
    local = first.param.detach()
    axes = tuple(a + 1 for a in first.group_axes or ())
    dtype = accumulation_dtype(local.dtype)
    batch = (len(entries),) + (1,) * local.dim()

    def per_weight(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype).reshape(batch).to(local.device)

    params = [item.param.detach() for item, _, _ in entries]
    z = torch.stack(params).to(dtype)
    root = torch.stack([metric.second for _, _, metric in entries])
    if first_metric.take_sqrt:
        root.sqrt_()
    d = root.add_(per_weight([m.shift for _, _, m in entries])).to(dtype)
    d.mul_(per_weight([m.scale for _, _, m in entries])).clamp_(min=torch.finfo(dtype).tiny)
    tau = per_weight([t * math.sqrt(item.group_size) for item, t, _ in entries])

    def group_sums(values: torch.Tensor) -> torch.Tensor:
        return values.sum(dim=axes, keepdim=True)

    factor = _group_factor(z, d, group_sums(z * z), tau, group_sums)
    torch._foreach_copy_(params, list(z.mul_(factor).to(local.dtype).unbind(0)))


def _group_factor(
    z: torch.Tensor,
    d: torch.Tensor,
    squares: torch.Tensor,
    tau: float | torch.Tensor,
    group_sums: Any,
) -> torch.Tensor:
    """The factor ``x / z`` of the group prox in the metric ``d`` (module docstring): 0 for a
    zeroed group, else ``s / (s + tau / d)`` with ``s`` by Newton's method from below.

    ``group_sums`` sums over the groups with the group axes kept (all-reduced across shards);
    ``squares`` is ``group_sums(z * z)``; ``tau`` a number or one value per weight of a stack.
    """
    weighted = z * d
    keep = group_sums(weighted.mul_(weighted)) > tau * tau  # ||D z|| > tau
    c = tau / d
    safe_squares = torch.where(keep, squares, 1)
    s = safe_squares.sqrt() - group_sums(z * z * c) / safe_squares
    s = s.clamp_(min=0)
    # Zeroed groups get z = 1: finite Newton steps there, and their s is not used.
    z_kept = torch.where(keep, z, 1)
    early_exit = z.device.type == "cpu"
    for _ in range(_NEWTON_STEPS):
        a = s + c
        q2 = (z_kept / a).square_()
        g = group_sums(q2)
        slope = group_sums(q2.div_(a))
        step = g.sqrt().sub_(1).mul_(g).div_(slope)
        s.add_(step).clamp_(min=0)
        # On the CPU a converged s (quadratic convergence: what remains is ~ step^2) ends early;
        # every rank sees the same all-reduced sums, so all of them stop at the same step.
        if early_exit and not bool((step.abs() > 1e-6 * s).logical_and_(keep).any()):
            break
    return torch.where(keep, s / (s + c), 0)


def _compiled_group_row(item: Selected, threshold: float, metric: _Denominator) -> tuple | None:
    """What the compiled CPU loop needs for the group prox of ``item``; None where it does not
    apply.

    It applies to a contiguous float32/float64 CPU tensor (not a shard: its group norms would need
    the other ranks) whose groups run along a single axis, with a metric of the same layout.
    """
    local = item.param.detach()
    second = metric.second
    axes = item.group_axes
    kept = [a for a in range(local.dim()) if a not in axes]
    if not (
        len(kept) == 1
        and _viewable(local)
        and _viewable(second)
        and second.dtype == local.dtype
        and second.shape == local.shape
    ):
        return None
    g = kept[0]
    shape = (math.prod(local.shape[:g]), local.shape[g], math.prod(local.shape[g + 1 :]))
    return local, second, shape, metric, threshold * math.sqrt(item.group_size)


def _compiled_group_prox_(rows: Sequence[tuple]) -> None:
    """The group proxes of ``rows`` (from :func:`_compiled_group_row`), one weight a row of a job
    on torch's threads."""
    kernels = _kernels()
    codes = dtype_codes()
    table: list[int] = []
    floats: list[float] = []
    elements = 0
    for local, second, shape, metric, tau in rows:
        table += (
            local.data_ptr(),
            second.data_ptr(),
            *shape,
            codes[local.dtype],
            int(metric.take_sqrt),
            _NEWTON_STEPS,
        )
        floats += (metric.scale, metric.shift, tau)
        elements += local.numel()
    values = np.array(floats, dtype=np.float64)
    _threads.run(
        kernels.group_prox_work,
        kernels.group_prox_worker,
        table,
        kernels.GROUP_PROX_WIDTH,
        elements,
        values.ctypes.data,
    )


def _keepdim_shape(tensor: torch.Tensor, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if a in axes else n for a, n in enumerate(tensor.shape))
