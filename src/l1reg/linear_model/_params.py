"""Parameter constraints as data, checked at the start of ``fit`` with scikit-learn's wording.

Each estimator holds a dict ``_parameter_constraints`` mapping a parameter to a list of
constraints; a value passes when it satisfies one of them. A failure raises
:class:`InvalidParameterError` (a ``ValueError`` and a ``TypeError``, as in scikit-learn), e.g.

    The 'alpha' parameter of Lasso must be a float in the range [0, inf). Got -1 instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validation import invalid_parameter

__all__ = [
    "Boolean",
    "Callable",
    "CrossValidator",
    "InvalidParameterError",
    "NonNegativeFloat",
    "NoneValue",
    "PositiveInt",
    "StrOption",
    "VectorLike",
    "check_parameters",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has a value outside its constraints."""


class Constraint:
    text = ""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError


class Interval(Constraint):
    def __init__(self, kind: type, low: float | None, high: float | None, closed: str) -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        name = "an int" if kind is numbers.Integral else "a float"
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        self.text = f"{name} in the range {left}{low_text}, {high_text}{right}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if isinstance(value, numbers.Real) and math.isnan(float(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True


def NonNegativeFloat() -> Interval:
    return Interval(numbers.Real, 0, None, "left")


def PositiveFloat() -> Interval:
    return Interval(numbers.Real, 0, None, "neither")


def PositiveInt(low: int = 1) -> Interval:
    return Interval(numbers.Integral, low, None, "left")


class Boolean(Constraint):
    text = "an instance of 'bool'"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))


class StrOption(Constraint):
    def __init__(self, *options: str) -> None:
        self.options = options
        self.text = "a str among " + repr(set(options)) if len(options) > 1 else repr(options[0])

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options


class NoneValue(Constraint):
    text = "None"

    def accepts(self, value: Any) -> bool:
        return value is None


class Callable(Constraint):
    text = "a callable"

    def accepts(self, value: Any) -> bool:
        return callable(value)


class VectorLike(Constraint):
    text = "an array-like of finite numbers"

    def __init__(self, *, non_negative: bool = False) -> None:
        self.non_negative = non_negative
        if non_negative:
            self.text = "an array-like of finite numbers >= 0"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return False
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if array.ndim != 1 or not np.all(np.isfinite(array)):
            return False
        return not (self.non_negative and np.any(array < 0))


class CrossValidator(Constraint):
    text = "an int in the range [2, inf), a cross-validation splitter or an iterable of splits"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return value >= 2
        if hasattr(value, "split") and hasattr(value, "get_n_splits"):
            return True
        return isinstance(value, Iterable) and not isinstance(value, (str, bytes))


class IntOrNone(Constraint):
    text = "an int"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# The parameters of a single fit (Lasso, L1LogisticRegression) and of a cross-validated one.
FIT_CONSTRAINTS: dict[str, list[Constraint]] = {
    "alpha": [NonNegativeFloat()],
    "fit_intercept": [Boolean()],
    "max_iter": [PositiveInt()],
    "tol": [NonNegativeFloat()],
    "warm_start": [Boolean()],
    "positive": [Boolean()],
    "weights": [NoneValue(), VectorLike(non_negative=True)],
}
CV_CONSTRAINTS: dict[str, list[Constraint]] = {
    "alphas": [PositiveInt(), VectorLike(non_negative=True)],
    "eps": [PositiveFloat()],
    "cv": [CrossValidator()],
    "fit_intercept": [Boolean()],
    "positive": [Boolean()],
    "weights": [NoneValue(), VectorLike(non_negative=True)],
    "tol": [NonNegativeFloat()],
    "max_iter": [PositiveInt()],
    "n_jobs": [NoneValue(), IntOrNone()],
    "callback": [NoneValue(), Callable()],
}


def _join(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def check_parameters(estimator: Any) -> None:
    """Check every parameter of ``estimator`` against its class's ``_parameter_constraints``."""
    owner = type(estimator).__name__
    params = estimator.get_params(deep=False)
    for name, constraints in type(estimator)._parameter_constraints.items():
        value = params[name]
        if any(constraint.accepts(value) for constraint in constraints):
            continue
        expected = _join([constraint.text for constraint in constraints])
        raise InvalidParameterError(invalid_parameter(name, owner, expected, value))
