r"""Penalty objects: the L1 norm, its weighted form and the group (L2,1) norm.

Each penalty works on one array of any array-API library and offers

- ``value(w)``: the penalty;
- ``prox(w, step)``: the proximal operator of ``step * penalty`` (it makes the exact zeros);
- ``subgradient(w)``: the minimum-norm element of the subdifferential (0 where ``w`` is 0);
- ``subdiff_distance(w, grad)``: per coordinate (per group for :class:`GroupL1`), the distance from
  ``-grad`` to the subdifferential at ``w``; 0 everywhere means ``w`` minimises ``f + penalty``
  where ``grad`` is the gradient of ``f`` at ``w`` (its maximum is the KKT violation that solvers
  stop on);
- ``alpha_max(grad_at_zero)``: the smallest ``lambda_reg`` for which ``w = 0`` is optimal, given the
  gradient of the data term at zero;
- ``get_config()`` / ``from_config(config)``: a JSON-able dict and back.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from ._array_api import array_library
from ._numerics import accumulation_dtype
from ._validation import (
    Array,
    ArrayLike,
    Checked,
    NonNegativeFloat,
    check_params,
    declare_params,
    invalid_parameter,
)
from .prox import group_shrink_factor, soft_threshold
from .regularization import l1_norm

__all__ = ["L1", "GroupL1", "Penalty", "WeightedL1"]


_GRAD_TEXT = "an array of numbers of w's library and shape"
_on_w = declare_params(w=[Array()])
_on_w_and_step = declare_params(w=[Array()], step=[NonNegativeFloat()])
_on_w_and_grad = declare_params(
    w=[Array()], grad=[Checked(_GRAD_TEXT, ["abc", None, np.ones(7), np.array(["a", "b"])])]
)
_on_gradient = declare_params(grad_at_zero=[Array()])


def _check_grad(w: Any, grad: Any, owner: str) -> None:
    """``grad`` must be an array of numbers of ``w``'s library and shape."""
    if not Array().accepts(grad) or array_library(grad) != array_library(w):
        raise TypeError(invalid_parameter("grad", owner, _GRAD_TEXT, grad))
    if tuple(grad.shape) != tuple(w.shape):
        message = invalid_parameter("grad", owner, _GRAD_TEXT, grad)
        raise ValueError(f"{message} Its shape {tuple(grad.shape)} is not w's {tuple(w.shape)}.")


class Penalty:
    """Base class: ``lambda_reg`` handling, configs and equality. Subclasses hold the math."""

    lambda_reg: float
    _parameter_constraints: ClassVar[dict] = {"lambda_reg": [NonNegativeFloat()]}

    def __init__(self, lambda_reg: float = 0.01) -> None:
        check_params(type(self).__name__, self._parameter_constraints, {"lambda_reg": lambda_reg})
        self.lambda_reg = float(lambda_reg)

    def get_config(self) -> dict[str, Any]:
        return {"lambda_reg": self.lambda_reg}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Penalty:
        return cls(**config)

    def __call__(self, w: Any) -> Any:
        return self.value(w)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @_on_w
    def value(self, w: Any) -> Any:
        raise NotImplementedError

    @_on_w_and_step
    def prox(self, w: Any, step: float) -> Any:
        raise NotImplementedError

    @_on_w
    def subgradient(self, w: Any) -> Any:
        raise NotImplementedError

    @_on_w_and_grad
    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        _check_grad(w, grad, f"{type(self).__name__}.subdiff_distance")
        raise NotImplementedError

    @_on_gradient
    def alpha_max(self, grad_at_zero: Any) -> float:
        raise NotImplementedError


def _separable_subdiff_distance(xp: Any, w: Any, grad: Any, thresholds: Any) -> Any:
    """Distance from -grad to thresholds * d|w| coordinate-wise (thresholds >= 0)."""
    at_zero = xp.clip(xp.abs(grad) - thresholds, 0, None)
    elsewhere = xp.abs(grad + thresholds * xp.sign(w))
    return xp.where(w == 0, at_zero, elsewhere)


class L1(Penalty):
    r"""The L1 penalty :math:`\lambda \sum_i |w_i|`.

    >>> import numpy as np
    >>> from l1reg import L1
    >>> L1(0.5).prox(np.array([2.0, -0.25]), step=1.0)
    array([ 1.5, -0. ])
    """

    @_on_w
    def value(self, w: Any) -> Any:
        return self.lambda_reg * l1_norm(w, owner=f"{type(self).__name__}.value")

    @_on_w_and_step
    def prox(self, w: Any, step: float) -> Any:
        return soft_threshold(w, step * self.lambda_reg)

    @_on_w
    def subgradient(self, w: Any) -> Any:
        xp = array_api_compat.array_namespace(w)
        return self.lambda_reg * xp.sign(w)

    @_on_w_and_grad
    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        _check_grad(w, grad, f"{type(self).__name__}.subdiff_distance")
        xp = array_api_compat.array_namespace(w, grad)
        return _separable_subdiff_distance(xp, w, grad, self.lambda_reg)

    @_on_gradient
    def alpha_max(self, grad_at_zero: Any) -> float:
        xp = array_api_compat.array_namespace(grad_at_zero)
        return float(xp.max(xp.abs(grad_at_zero))) if array_api_compat.size(grad_at_zero) else 0.0


class WeightedL1(Penalty):
    r"""The weighted L1 penalty :math:`\lambda \sum_i c_i |w_i|`, with ``c_i >= 0``.

    A weight ``c_i = 0`` leaves coordinate ``i`` unpenalized (an intercept, a feature to keep).
    ``weights`` broadcasts against ``w``; it is kept as a NumPy float64 array and moved to the
    library, device and dtype of ``w`` when used.
    """

    _parameter_constraints: ClassVar[dict] = {
        **Penalty._parameter_constraints,
        "weights": [ArrayLike(non_negative=True)],
    }

    def __init__(self, lambda_reg: float = 0.01, weights: Any = None) -> None:
        values = {"lambda_reg": lambda_reg, "weights": weights}
        check_params(type(self).__name__, self._parameter_constraints, values)
        self.lambda_reg = float(lambda_reg)
        self.weights = np.array(weights, dtype=np.float64)  # a copy: the flag below is ours
        self.weights.setflags(write=False)

    def get_config(self) -> dict[str, Any]:
        return {"lambda_reg": self.lambda_reg, "weights": self.weights.tolist()}

    def _weights_like(self, w: Any) -> Any:
        xp = array_api_compat.array_namespace(w)
        shape = tuple(w.shape)
        try:
            fits = np.broadcast_shapes(self.weights.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"The 'weights' parameter of {type(self).__name__} has shape "
                f"{self.weights.shape}, which does not broadcast to the shape {shape} of the "
                "array it is applied to."
            )
        weights = xp.asarray(self.weights.copy(), device=array_api_compat.device(w))
        return xp, xp.astype(weights, w.dtype) if hasattr(w, "dtype") else weights

    @_on_w
    def value(self, w: Any) -> Any:
        xp, weights = self._weights_like(w)
        return self.lambda_reg * l1_norm(weights * xp.abs(w), owner=f"{type(self).__name__}.value")

    @_on_w_and_step
    def prox(self, w: Any, step: float) -> Any:
        _, weights = self._weights_like(w)
        return soft_threshold(w, (step * self.lambda_reg) * weights)

    @_on_w
    def subgradient(self, w: Any) -> Any:
        xp, weights = self._weights_like(w)
        return self.lambda_reg * weights * xp.sign(w)

    @_on_w_and_grad
    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        _check_grad(w, grad, f"{type(self).__name__}.subdiff_distance")
        xp, weights = self._weights_like(w)
        return _separable_subdiff_distance(xp, w, grad, self.lambda_reg * weights)

    @_on_gradient
    def alpha_max(self, grad_at_zero: Any) -> float:
        xp, weights = self._weights_like(grad_at_zero)
        weights = weights * xp.ones_like(grad_at_zero)
        penalized = weights > 0
        if not bool(xp.any(penalized)):
            return 0.0
        ratios = xp.abs(grad_at_zero[penalized]) / weights[penalized]
        return float(xp.max(ratios))


class GroupL1(Penalty):
    r"""The group L1 (L2,1) penalty :math:`\lambda \sum_g \sqrt{|g|}\, \|w_g\|_2`.

    The L2 norm is taken along ``axis`` (an int or a tuple of ints), so each group is a slice of
    ``w`` with every other index fixed, and :math:`|g|` is the number of values in a slice. For a
    PyTorch ``Linear`` weight (outputs x inputs), ``axis=0`` makes one group per input feature
    (feature selection) and ``axis=1`` one per output neuron (pruning); a Keras ``Dense`` kernel
    (inputs x units) is the transpose.

    The prox is block soft-thresholding: a group whose norm is at most ``step * lambda_reg *
    sqrt(|g|)`` becomes exactly zero, the others shrink towards zero along their direction.
    """

    _parameter_constraints: ClassVar[dict] = {
        **Penalty._parameter_constraints,
        "axis": [Checked("an int or a tuple of ints", ["abc", None, 1.5, True, (), (0, "a")])],
    }

    def __init__(self, lambda_reg: float = 0.01, *, axis: int | tuple[int, ...]) -> None:
        super().__init__(lambda_reg)
        axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
        if not (
            isinstance(axes, tuple)
            and axes
            and all(isinstance(a, int) and not isinstance(a, bool) for a in axes)
        ):
            raise TypeError(
                invalid_parameter("axis", type(self).__name__, "an int or a tuple of ints", axis)
            )
        self.axis = axis if isinstance(axis, int) else tuple(axis)

    def get_config(self) -> dict[str, Any]:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {"lambda_reg": self.lambda_reg, "axis": axis}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GroupL1:
        config = dict(config)
        if isinstance(config.get("axis"), list):
            config["axis"] = tuple(config["axis"])
        return cls(**config)

    def _axes(self, w: Any, method: str) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        ndim = len(w.shape)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(
                f"The 'axis' parameter of {type(self).__name__} is {self.axis!r}, but "
                f"{type(self).__name__}.{method} received an array of shape {tuple(w.shape)} "
                f"that has no such axis."
            )
        return tuple(sorted(a % ndim for a in axes))

    def _group_norms(self, xp: Any, w: Any, axes: tuple[int, ...]) -> tuple[Any, float]:
        """(L2 norm of each group, kept as a broadcastable array; sqrt of the group size)."""
        size = math.prod(w.shape[a] for a in axes)
        magnitude = xp.abs(w)
        dtype = accumulation_dtype(xp, magnitude.dtype)
        if magnitude.dtype != dtype:
            magnitude = xp.astype(magnitude, dtype)
        squares = xp.sum(magnitude * magnitude, axis=axes, keepdims=True)
        # sqrt has no derivative at 0; routing zero groups around it makes the gradient of a zero
        # group 0 (its minimum-norm subgradient) in the libraries that differentiate.
        positive = squares > 0
        norms = xp.where(positive, xp.sqrt(xp.where(positive, squares, 1)), 0)
        return norms, math.sqrt(size)

    @_on_w
    def value(self, w: Any) -> Any:
        xp = array_api_compat.array_namespace(w)
        norms, scale = self._group_norms(xp, w, self._axes(w, "value"))
        return (self.lambda_reg * scale) * xp.sum(norms)

    @_on_w_and_step
    def prox(self, w: Any, step: float) -> Any:
        xp = array_api_compat.array_namespace(w)
        norms, scale = self._group_norms(xp, w, self._axes(w, "prox"))
        threshold = step * self.lambda_reg * scale
        return w * xp.astype(group_shrink_factor(xp, norms, threshold), w.dtype)

    @_on_w
    def subgradient(self, w: Any) -> Any:
        xp = array_api_compat.array_namespace(w)
        norms, scale = self._group_norms(xp, w, self._axes(w, "subgradient"))
        nonzero = norms > 0
        factor = xp.where(nonzero, (self.lambda_reg * scale) / xp.where(nonzero, norms, 1), 0)
        return w * xp.astype(factor, w.dtype)

    @_on_w_and_grad
    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        _check_grad(w, grad, f"{type(self).__name__}.subdiff_distance")
        xp = array_api_compat.array_namespace(w, grad)
        axes = self._axes(w, "subdiff_distance")
        norms, scale = self._group_norms(xp, w, axes)
        grad_norms, _ = self._group_norms(xp, grad, axes)
        at_zero = xp.clip(grad_norms - self.lambda_reg * scale, 0, None)
        residual = grad + self.subgradient(w)
        elsewhere, _ = self._group_norms(xp, residual, axes)
        distance = xp.where(norms == 0, at_zero, elsewhere)
        return xp.squeeze(distance, axis=axes)

    @_on_gradient
    def alpha_max(self, grad_at_zero: Any) -> float:
        xp = array_api_compat.array_namespace(grad_at_zero)
        norms, scale = self._group_norms(xp, grad_at_zero, self._axes(grad_at_zero, "alpha_max"))
        return float(xp.max(norms)) / scale if array_api_compat.size(grad_at_zero) else 0.0
