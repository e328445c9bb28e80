r"""``ProximalL1``: any torch optimizer, followed by the proximal step of an :class:`L1Regularizer`.

After the optimizer's step on the data loss, each penalized weight is soft-thresholded:

.. math::

    w_i \leftarrow \operatorname{sign}(w_i)\,\max(|w_i| - t_i, 0),
    \qquad t_i = \frac{\eta\,\lambda}{D_i},

the proximal operator of :math:`\lambda\|w\|_1` in the metric :math:`\operatorname{diag}(D)/\eta`
in which the optimizer stepped (``D`` read from its state by ``_metric``; 1 for SGD). The plain
threshold ``lr * lambda`` after Adam shrinks weights with small gradients far too little, so
nothing reaches zero (``benchmarks/textbook_torch.py``: 0 of 832 weights at zero after 3000 Adam
steps, against 795 in Adam's metric); ``metric="plain"`` is kept for such comparisons. The group
penalty ``lambda * sqrt(|g|) * ||w_g||`` takes its exact prox in the same metric
(:func:`l1reg.prox.metric_group_factor`).

This module holds the wrapper only. It decides, per parameter, where the step runs: the compiled
CPU engine (``_cpu``: one pass over memory for large contiguous float32/float64 CPU tensors, and
the prox fused into ``torch.optim.Adam``/``AdamW``'s step), else torch operations (``_eager``,
any device, DTensor shards included).
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from .._validation import (
    Boolean,
    Instance,
    Interval,
    NoneValue,
    Options,
    check_params,
    invalid_parameter,
)
from ..prox import NEWTON_STEPS
from . import _cpu, _eager
from ._distributed import local
from ._metric import Denominator, as_float, denominator, steps
from ._regularizer import L1Regularizer, group_squares
from ._selection import Selected

__all__ = ["ProximalL1"]

_OWNER = "ProximalL1"
_METRICS = ("optimizer", "plain")


class ProximalL1(torch.optim.Optimizer):
    """Wrap ``optimizer`` so that each ``step()`` ends with the proximal step of ``regularizer``.

    ``step()`` runs the wrapped optimizer on the data loss (do not add the penalty to the loss),
    then soft-thresholds the regularizer's parameters with each parameter group's current learning
    rate, in the optimizer's own metric for Adam-like optimizers (threshold ``lr * lambda / D_i``
    with ``D_i = sqrt(v_hat_i) + eps`` for Adam; the module docstring). A weight that is zero
    stays exactly zero unless its data gradient is large enough to bring it back. ``zero_grad``,
    ``state_dict``/``load_state_dict``, ``param_groups`` and learning-rate schedulers behave as on
    the wrapped optimizer (a scheduler may wrap either).

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

    _parameter_constraints: ClassVar[dict] = {
        "optimizer": [Instance("torch.optim:Optimizer", text="a torch.optim.Optimizer")],
        "regularizer": [
            Instance("l1reg.torch._regularizer:L1Regularizer", text="an l1reg.torch.L1Regularizer")
        ],
        "metric": [Options(*_METRICS)],
        "relax_after": [NoneValue(), Interval(numbers.Integral, 0, None)],
        "fused": [NoneValue(), Boolean()],
    }

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        regularizer: L1Regularizer,
        *,
        metric: str = "optimizer",
        relax_after: int | None = None,
        fused: bool | None = None,
    ) -> None:
        values = {
            "optimizer": optimizer,
            "regularizer": regularizer,
            "metric": metric,
            "relax_after": relax_after,
            "fused": fused,
        }
        check_params(_OWNER, self._parameter_constraints, values)
        if isinstance(optimizer, ProximalL1):
            raise TypeError(
                invalid_parameter(
                    "optimizer", _OWNER, "an optimizer that is not a ProximalL1", optimizer
                )
            )
        if fused and metric != "optimizer":
            raise ValueError(
                invalid_parameter(
                    "fused",
                    _OWNER,
                    "None or False with metric='plain' (the fused prox is in Adam's metric)",
                    fused,
                )
            )
        if fused and type(optimizer) not in _cpu.ADAMS:
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
            shard = local(item.param)
            if item.group_axes is None:
                support.append(shard != 0)
            else:
                kept = group_squares(item.param, item.group_axes) > 0
                support.append(kept.reshape(_eager.keepdim_shape(shard, item.group_axes)))
        self._support = support

    @torch.no_grad()
    def _project(self) -> None:
        assert self._support is not None
        for item, kept in zip(self.regularizer.selected, self._support):
            local(item.param).mul_(kept)

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
            or type(self.optimizer) not in _cpu.ADAMS
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
        fused = _cpu.FusedAdamStep(
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
        counts = steps(states) if self.metric == "optimizer" else [0.0] * len(states)
        rates: dict[int, float] = {}
        memo: dict = {}
        groups: list[tuple[Selected, float, Denominator | None]] = []
        for (item, index), state, count in zip(pairs, states, counts):
            if not item.param.requires_grad:
                continue  # frozen: torch's optimizers and weight decay leave it alone too
            group = self.optimizer.param_groups[index]
            if index not in rates:
                rates[index] = as_float(group["lr"])  # one host copy per group for tensor rates
            lr = rates[index]
            metric = None
            if self.metric == "optimizer":
                metric, lr = denominator(group, state, lr, count, memo)
            threshold = lr * item.lambda_reg
            if threshold <= 0:
                continue
            if item.group_axes is not None:
                groups.append((item, threshold, metric))
                continue
            shard = local(item.param)
            if shard.numel() == 0:
                continue
            if metric is None:
                tensors, thresholds = plain.setdefault((shard.device, shard.dtype), ([], []))
                tensors.append(shard)
                thresholds.append(threshold)
            else:
                key = (shard.device, shard.dtype, metric.take_sqrt)
                tensors, metrics, thresholds = scaled.setdefault(key, ([], [], []))
                tensors.append(shard)
                metrics.append(metric)
                thresholds.append(threshold / metric.scale)
        # The compiled CPU engine takes what it can; torch operations do the rest.
        for tensors, thresholds in plain.values():
            rest = _cpu.shrink_plain_(tensors, thresholds)
            if rest:
                _eager.shrink_plain_(_pick(tensors, rest), _pick(thresholds, rest))
        for tensors, metrics, thresholds in scaled.values():
            rest = _cpu.shrink_scaled_(tensors, metrics, thresholds)
            if rest:
                _eager.shrink_scaled_(
                    _pick(tensors, rest), _pick(metrics, rest), _pick(thresholds, rest)
                )
        if groups:
            _eager.group_proxes_(_pick(groups, _cpu.group_proxes_(groups, NEWTON_STEPS)))


def _pick(values: Sequence[Any], indices: Sequence[int]) -> list[Any]:
    return [values[i] for i in indices]
