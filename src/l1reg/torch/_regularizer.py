"""``L1Regularizer``: the (group) L1 penalty of a module's weights, for the loss or a prox."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import array_api_compat.torch as xp
import torch
from torch import nn

from .._numerics import accumulation_dtype
from .._validation import check_params
from ._distributed import all_reduce_sum, is_dtensor, shard_groups
from ._fused import l1_norm
from ._selection import (
    EXCLUDE,
    GROUPS,
    INCLUDE,
    LAMBDA_REG,
    MODULE,
    Selected,
    group_axes,
    resolve_lambdas,
    select_parameters,
)

__all__ = ["L1Regularizer", "group_squares", "safe_sqrt"]

_OWNER = "L1Regularizer"


def safe_sqrt(squares: torch.Tensor) -> torch.Tensor:
    """``sqrt`` whose gradient at 0 is 0 (the minimum-norm subgradient of a zero group), not inf."""
    positive = squares > 0
    return torch.where(positive, torch.where(positive, squares, 1).sqrt(), 0)


def group_squares(param: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Sum of squares of each group of ``param`` (the groups span ``axes``), in float32 or wider.

    For a DTensor the local sums are all-reduced over the mesh dimensions that split a group, so
    every rank gets the squares of its own groups in full. The result is a plain tensor holding
    the groups of the local shard.
    """
    local = param.to_local() if is_dtensor(param) else param
    dtype = accumulation_dtype(xp, local.dtype)
    values = local if local.dtype == dtype else local.to(dtype)
    squares = (values * values).sum(dim=axes)
    if is_dtensor(param):
        squares = all_reduce_sum(squares, shard_groups(param, axes))
    return squares


class L1Regularizer:
    r"""The L1 penalty of a module's weights: :math:`\sum_k \lambda_k \sum_i |w_{k,i}|`.

    Call it to get the differentiable penalty and add it to the loss (the textbook recipe, fused
    into one kernel per bucket of tensors and summed in float32 under autocast), or give it to
    :class:`ProximalL1`, which applies the penalty by a proximal step after each optimizer step
    (the way to get exact zeros). Use one or the other, never both: that would shrink twice.

    On the CPU, the backward of the plain penalty writes the gradient of each large weight into
    the memory of that weight's previous gradient once nothing holds it (after ``zero_grad()``):
    fresh memory costs more in page faults than the whole pass. That memory therefore stays
    allocated while the weight lives, the size of the penalized weights once.

    Parameters
    ----------
    module : torch.nn.Module
        The model.
    lambda_reg : float or mapping, default 0.01
        The strength, a finite number >= 0; or a mapping from name patterns (``fnmatch`` on
        qualified parameter names such as ``"encoder.*.weight"``), modules or parameters to
        strengths, where each parameter takes the value of the last key that matches it. It can be
        set again at any time (schedules, warm-up): ``reg.lambda_reg = 1e-3``.
    include : pattern, module, parameter or a list of them, optional
        The parameters to penalize, instead of the default: the weights of Linear, Bilinear,
        Conv*, ConvTranspose*, Embedding, EmbeddingBag, RNN/LSTM/GRU and MultiheadAttention
        layers (never biases or normalization parameters). A module stands for all its parameters.
    exclude : pattern, module, parameter or a list of them, optional
        Parameters removed from the selection.
    groups : {None, "input", "output"}, default None
        None: the plain L1 norm, which zeroes single weights. ``"input"``: the group (L2,1) norm
        :math:`\lambda \sum_g \sqrt{|g|}\,\|w_g\|_2` over input features (the columns of a Linear
        weight, the input channels of a Conv weight, the rows of an Embedding): feature selection.
        ``"output"``: over output neurons/channels (rows): pruning.

    Examples
    --------
    >>> import torch
    >>> from l1reg.torch import L1Regularizer
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> reg = L1Regularizer(model, lambda_reg=0.01)
    >>> [name for name, _ in reg.named_parameters()]
    ['0.weight', '2.weight']
    >>> loss = reg()  # add to the data loss, then loss.backward()
    """

    _parameter_constraints: ClassVar[dict] = {
        "module": MODULE,
        "lambda_reg": LAMBDA_REG,
        "include": INCLUDE,
        "exclude": EXCLUDE,
        "groups": GROUPS,
    }

    def __init__(
        self,
        module: nn.Module,
        lambda_reg: float | Mapping[object, float] = 0.01,
        *,
        include: object = None,
        exclude: object = None,
        groups: str | None = None,
    ) -> None:
        check_params(_OWNER, self._parameter_constraints, {"module": module, "groups": groups})
        self._groups = groups
        chosen = select_parameters(module, include, exclude, _OWNER)
        named = [(name, param) for name, param, _, _ in chosen]
        lambdas = resolve_lambdas(lambda_reg, named, module, _OWNER)
        self.module = module
        self.selected = [
            Selected(
                name,
                param,
                lam,
                input_axis,
                output_axis,
                group_axes(self._groups, name, param, input_axis, output_axis, _OWNER),
            )
            for (name, param, input_axis, output_axis), lam in zip(chosen, lambdas)
        ]
        self._lambda_reg = dict(lambda_reg) if isinstance(lambda_reg, Mapping) else lambdas[0]

    @property
    def groups(self) -> str | None:
        """None, ``"input"`` or ``"output"`` (fixed at construction)."""
        return self._groups

    @property
    def lambda_reg(self) -> float | dict[object, float]:
        """The strength as given (a number or a mapping); setting it applies to every weight."""
        return self._lambda_reg

    @lambda_reg.setter
    def lambda_reg(self, value: float | Mapping[object, float]) -> None:
        named = self.named_parameters()
        lambdas = resolve_lambdas(value, named, self.module, _OWNER)
        for item, lam in zip(self.selected, lambdas):
            item.lambda_reg = lam
        self._lambda_reg = dict(value) if isinstance(value, Mapping) else lambdas[0]

    def named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        """The penalized parameters with their qualified names, in module order."""
        return [(item.name, item.param) for item in self.selected]

    def parameters(self) -> list[torch.Tensor]:
        """The penalized parameters, in module order."""
        return [item.param for item in self.selected]

    def __call__(self) -> torch.Tensor:
        """The penalty, a differentiable 0-d tensor (float32 or wider) on the parameters' device."""
        if self._groups is None:
            return self._l1_value()
        return self._group_value()

    def _l1_value(self) -> torch.Tensor:
        by_lambda: dict[float, list[torch.Tensor]] = {}
        for item in self.selected:
            if item.lambda_reg > 0:
                by_lambda.setdefault(item.lambda_reg, []).append(item.param)
        terms = [lam * l1_norm(params) for lam, params in by_lambda.items()]
        return self._total(terms)

    def _group_value(self) -> torch.Tensor:
        terms = []
        for item in self.selected:
            if item.lambda_reg == 0:
                continue
            axes = item.group_axes
            assert axes is not None
            norms_sum = safe_sqrt(group_squares(item.param, axes)).sum()
            if is_dtensor(item.param):
                # The groups themselves are split when the mesh shards an axis outside a group.
                others = tuple(a for a in range(item.param.dim()) if a not in axes)
                norms_sum = all_reduce_sum(norms_sum, shard_groups(item.param, others))
            terms.append((item.lambda_reg * math.sqrt(item.group_size)) * norms_sum)
        return self._total(terms)

    def _total(self, terms: list[torch.Tensor]) -> torch.Tensor:
        if not terms:
            param = self.selected[0].param
            local = param.to_local() if is_dtensor(param) else param
            return torch.zeros((), device=local.device, dtype=accumulation_dtype(xp, local.dtype))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def __repr__(self) -> str:
        names = [item.name for item in self.selected]
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return (
            f"L1Regularizer(lambda_reg={self._lambda_reg!r}, groups={self._groups!r}, "
            f"parameters=[{shown}] ({len(names)}))"
        )
