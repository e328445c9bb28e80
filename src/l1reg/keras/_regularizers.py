"""The Keras regularizers of l1reg: :class:`L1` and :class:`GroupL1` (penalty and prox)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from .. import _numerics
from .._validation import (
    Axes,
    Checked,
    Constraint,
    Interval,
    NoneValue,
    check_params,
    declare_params,
    shown,
)
from ..prox import group_shrink_factor, metric_group_factor

_LOW_PRECISION = ("float16", "bfloat16")


def _invalid(name: str, expected: str, value: object) -> str:
    """Keras's wording: ``Invalid value for argument l1: expected ... Received: l1=-1``."""
    return (
        f"Invalid value for argument {name}: expected {expected}. Received: {name}={shown(value)}"
    )


def _wording(name: str, owner: str, expected: str, value: object) -> str:
    """:func:`_invalid` as the wording of ``l1reg._validation.check_params``."""
    return _invalid(name, expected, value)


def _interval(kind: type, text: str) -> Interval:
    """A number >= 0 of ``kind`` (Real or Integral) whose error says ``text``."""
    constraint = Interval(kind, 0, None, "left")
    constraint.text = text
    return constraint


class _Tensor(Constraint):
    """A tensor of the backend (traced ones included), a Keras variable, or a NumPy array or list
    of numbers: checked by type and dtype only, so that the check costs nothing under tracing."""

    text = "a tensor, a Keras variable or an array of numbers"

    def accepts(self, value: Any) -> bool:
        if not (isinstance(value, keras.Variable) or ops.is_tensor(value)):
            if isinstance(value, (str, bytes, dict)) or value is None:
                return False
            try:
                value = np.asarray(value)
            except (TypeError, ValueError):
                return False
        try:
            dtype = keras.backend.standardize_dtype(value.dtype)
        except (TypeError, ValueError, AttributeError):
            return False
        return dtype.startswith(("float", "bfloat", "int", "uint", "bool", "complex"))

    def invalid_examples(self, valid: Any) -> list:
        return ["abc", None, np.array(["a", "b"]), {"w": 1.0}]


class _Threshold(Constraint):
    """A finite number >= 0, or a tensor (a learning rate times ``l1`` inside a step)."""

    text = "a non-negative float or a scalar tensor"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, keras.Variable) or ops.is_tensor(value):
            return True
        return _L1[0].accepts(value)

    def invalid_examples(self, valid: Any) -> list:
        return ["abc", None, -1.0, math.nan, math.inf]


def _metric_examples(valid: Any) -> list:
    return ["abc", 1.5, np.ones((7, 7, 7), dtype="float32")]


_X = [_Tensor()]
_THRESHOLD = [_Threshold()]
_METRIC = [NoneValue(), Checked("None or a tensor of the shape of x", _metric_examples)]


def _check_metric(x: Any, metric: Any) -> None:
    """``metric``, when given, must be a tensor of ``x``'s shape (shapes are static in a trace)."""
    expected = _METRIC[1].text
    if not _X[0].accepts(metric):
        raise TypeError(_invalid("metric", expected, metric))
    if tuple(np.shape(metric)) != tuple(np.shape(x)):
        raise ValueError(_invalid("metric", f"{expected} {tuple(np.shape(x))}", metric))


_L1 = [_interval(numbers.Real, "a non-negative float")]
_AXIS = [Interval(numbers.Integral, None, None), Axes()]
_AXIS[0].text = "an int"


class _KerasNamespace:
    """The array-API functions ``l1reg._numerics`` and ``l1reg.prox`` call, on ``keras.ops``.

    Every name ``keras.ops`` has is taken from it; the rest (dtypes as strings, ``isdtype``,
    ``finfo``, ``astype``, ``asarray``) is defined here.
    """

    float32 = "float32"

    def __getattr__(self, name: str) -> Any:
        return getattr(ops, name)

    @staticmethod
    def isdtype(dtype: Any, kind: str) -> bool:
        name = keras.backend.standardize_dtype(dtype)
        return {"real floating": "float", "complex floating": "complex"}[kind] in name

    @staticmethod
    def finfo(dtype: Any) -> Any:
        name = keras.backend.standardize_dtype(dtype)
        if name == "bfloat16":
            import ml_dtypes

            return ml_dtypes.finfo(ml_dtypes.bfloat16)
        return np.finfo(name)

    @staticmethod
    def astype(x: Any, dtype: Any) -> Any:
        return ops.cast(x, dtype)

    @staticmethod
    def asarray(x: Any) -> Any:
        return ops.convert_to_tensor(x, dtype=keras.config.floatx())


_XP = _KerasNamespace()


def _accumulation_dtype(dtype: Any) -> str:
    """``l1reg._numerics.accumulation_dtype`` of a Keras dtype, as Keras's dtype name."""
    dtype = keras.backend.standardize_dtype(dtype)
    return keras.backend.standardize_dtype(_numerics.accumulation_dtype(_XP, dtype))


def _is_small(x: Any) -> bool:
    """True for up to ``BLOCK`` values, or an unknown size: then sums are ``ops.sum`` on ``x``'s
    own shape, the very sum of ``keras.regularizers.L1`` (on JAX the sum of a flattened array may
    differ from it in the last bit)."""
    n = math.prod(x.shape) if all(d is not None for d in x.shape) else None
    return n is None or n <= _numerics.BLOCK


def _sum_abs(x: Any) -> Any:
    """``l1reg._numerics.sum_abs`` of ``x`` with the gradient 0 at 0."""
    if _is_small(x):
        return ops.sum(x * ops.sign(x))
    return _numerics.sum_abs(_XP, x, differentiable_at_zero=True)


def _sum(x: Any) -> Any:
    """``l1reg._numerics.blocked_sum`` of all values of ``x``."""
    if _is_small(x):
        return ops.sum(x)
    return _numerics.blocked_sum(_XP, ops.reshape(x, (-1,)))


class _ProximalRegularizer(keras.regularizers.Regularizer):
    """The part :class:`L1` and :class:`GroupL1` share: ``l1``, configs and prox ownership.

    While a :class:`ProximalL1` applies this regularizer's proximal step, it *owns* it and calling
    the regularizer returns 0: the penalty is in the prox, not in the loss (it must not be in both).
    """

    _parameter_constraints: ClassVar[dict] = {"l1": _L1}

    def __init__(self, l1: float = 0.01) -> None:
        check_params(type(self).__name__, self._parameter_constraints, {"l1": l1}, wording=_wording)
        self.l1 = float(l1)
        self._owners: set[int] = set()

    @property
    def applied_by_prox(self) -> bool:
        """True while a :class:`ProximalL1` applies this penalty (then ``__call__`` returns 0)."""
        return bool(self._owners)

    def __call__(self, x: Any) -> Any:
        if self._owners:
            return ops.zeros((), dtype=_accumulation_dtype(x.dtype))
        return self.value(x)

    def value(self, x: Any) -> Any:
        """The penalty of ``x``, whether or not a :class:`ProximalL1` owns this regularizer."""
        raise NotImplementedError

    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        """The proximal step of ``threshold / l1 * penalty`` on ``x`` (threshold = lr * l1).

        ``metric`` (a tensor like ``x``, or None for the identity) is the diagonal metric ``D`` of
        an adaptive optimizer: the prox minimises ``||w - x||_D^2 / (2 lr) + penalty(w)``.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))


@keras.saving.register_keras_serializable(package="l1reg")
class L1(_ProximalRegularizer):
    r"""The L1 penalty :math:`\ell_1 \sum_i |w_i|`, a drop-in for ``keras.regularizers.L1``.

    It has Keras's values on float32 weights; float16/bfloat16 weights are summed in float32, and
    its gradient at 0 is 0 on every backend. Under :class:`ProximalL1` it gives exact zeros.

    Args:
        l1: the regularization factor, a finite float >= 0.

    >>> Dense(64, kernel_regularizer=l1reg.keras.L1(0.01))  # doctest: +SKIP
    """

    @declare_params(wording=_wording, x=_X)
    def value(self, x: Any) -> Any:
        x = ops.convert_to_tensor(x)
        dtype = _accumulation_dtype(x.dtype)
        if keras.backend.standardize_dtype(x.dtype) != dtype:
            x = ops.cast(x, dtype)
        # x * sign(x) is |x| with the gradient sign(x), which is 0 at 0 (jax's abs has 1 there).
        return ops.cast(self.l1, dtype) * _sum_abs(x)

    @declare_params(wording=_wording, x=_X, threshold=_THRESHOLD, metric=_METRIC)
    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        x = ops.convert_to_tensor(x)
        if metric is not None:
            _check_metric(x, metric)
            threshold = threshold / metric
        # x - clip(x, -t, t): sign(x) * max(|x| - t, 0) with an exact zero where |x| <= t.
        return x - ops.minimum(ops.maximum(x, -threshold), threshold)


@keras.saving.register_keras_serializable(package="l1reg")
class GroupL1(_ProximalRegularizer):
    r"""The group L1 (L2,1) penalty :math:`\ell_1 \sum_g \sqrt{|g|}\, \|w_g\|_2`.

    The L2 norm is taken along ``axis``, so each group is a slice with the other indices fixed. On
    a ``Dense`` kernel (inputs x units) ``axis=1`` makes one group per input feature (feature
    selection: under :class:`ProximalL1` whole input rows become exactly zero) and ``axis=0`` one
    group per unit (pruning). On a ``Conv2D`` kernel (h x w x in x out), ``axis=(0, 1, 3)`` groups
    by input channel and ``axis=(0, 1, 2)`` by filter.

    Args:
        l1: the regularization factor, a finite float >= 0.
        axis: an int or a tuple of ints, the axes of each group.
    """

    _parameter_constraints: ClassVar[dict] = {"l1": _L1, "axis": _AXIS}

    def __init__(self, l1: float = 0.01, axis: int | Sequence[int] = 1) -> None:
        values = {"l1": l1, "axis": axis}
        check_params(type(self).__name__, self._parameter_constraints, values, wording=_wording)
        super().__init__(l1)
        self.axis = int(axis) if isinstance(axis, numbers.Integral) else tuple(int(a) for a in axis)

    def get_config(self) -> dict[str, Any]:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {"l1": self.l1, "axis": axis}

    def _axes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        ndim = len(shape)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(
                f"Invalid value for argument axis: expected an axis of the weight, which has shape "
                f"{tuple(shape)}. Received: axis={self.axis!r}"
            )
        return tuple(sorted({a % ndim for a in axes}))

    def _squared_norms(self, x: Any, axes: tuple[int, ...]) -> Any:
        if keras.backend.standardize_dtype(x.dtype) in _LOW_PRECISION:
            x = ops.cast(x, "float32")
        return ops.sum(x * x, axis=axes, keepdims=True)

    @declare_params(wording=_wording, x=_X)
    def value(self, x: Any) -> Any:
        x = ops.convert_to_tensor(x)
        axes = self._axes(tuple(x.shape))
        if "float" not in keras.backend.standardize_dtype(x.dtype):
            x = ops.cast(x, keras.config.floatx())
        squares = self._squared_norms(x, axes)
        # sqrt has no derivative at 0: routing empty groups around it makes their gradient 0.
        positive = squares > 0
        norms = ops.where(positive, ops.sqrt(ops.where(positive, squares, 1)), 0)
        scale = math.sqrt(math.prod(x.shape[a] for a in axes))
        return ops.cast(self.l1 * scale, norms.dtype) * _sum(norms)

    @declare_params(wording=_wording, x=_X, threshold=_THRESHOLD, metric=_METRIC)
    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        x = ops.convert_to_tensor(x)
        if metric is not None:
            _check_metric(x, metric)
        axes = self._axes(tuple(x.shape))
        scale = math.sqrt(math.prod(x.shape[a] for a in axes))
        squares = self._squared_norms(x, axes)
        group_threshold = ops.cast(threshold * scale, squares.dtype)
        if metric is None:
            factor = group_shrink_factor(_XP, ops.sqrt(squares), group_threshold)
            return x * ops.cast(factor, x.dtype)
        # The exact prox in the metric diag(D) (see ProximalL1), l1reg.prox's one formula.
        z = ops.cast(x, squares.dtype)
        factor = metric_group_factor(
            _XP,
            z,
            ops.cast(metric, squares.dtype),
            group_threshold,
            lambda values: ops.sum(values, axis=axes, keepdims=True),
            squares=squares,
        )
        new = z * factor
        return ops.cast(new, x.dtype)


def _owned_weights(layer: Any) -> list[tuple[Any, _ProximalRegularizer]]:
    """(variable, regularizer) for every trainable weight that carries an l1reg regularizer."""
    return [
        (variable, variable.regularizer)
        for variable in layer.trainable_weights
        if isinstance(getattr(variable, "regularizer", None), _ProximalRegularizer)
    ]
