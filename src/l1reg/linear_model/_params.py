"""The parameter constraints of the estimators (checked at the start of ``fit``) and paths.

The constraint kinds and the wording are :mod:`l1reg._validation`'s (scikit-learn's wording):

    The 'alpha' parameter of Lasso must be a float in the range [0, inf). Got -1 instead.

NaN and infinite values are refused wherever a finite number is expected (scikit-learn's
``Interval`` refuses ``alpha=inf`` too).
"""

from __future__ import annotations

import numbers
from typing import Any

from .._validation import (
    Boolean,
    Callable,
    Constraint,
    CrossValidator,
    Interval,
    InvalidParameterError,
    NoneValue,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    VectorLike,
    check_params,
)

__all__ = [
    "CV_CONSTRAINTS",
    "FIT_CONSTRAINTS",
    "PATH_CONSTRAINTS",
    "InvalidParameterError",
    "check_parameters",
]

_INT = Interval(numbers.Integral, None, None, "neither")

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
# The parameters of a path function (lasso_path, l1_logistic_path), beside the data's.
PATH_CONSTRAINTS: dict[str, list[Constraint]] = {
    "alphas": [PositiveInt(), VectorLike(non_negative=True, min_length=1)],
    "eps": [PositiveFloat()],
    "fit_intercept": [Boolean()],
    "weights": [NoneValue(), VectorLike(non_negative=True)],
    "positive": [Boolean()],
    "tol": [NonNegativeFloat()],
    "max_iter": [PositiveInt()],
}
CV_CONSTRAINTS: dict[str, list[Constraint]] = {
    **PATH_CONSTRAINTS,
    "cv": [CrossValidator()],
    "n_jobs": [NoneValue(), _INT],
    "callback": [NoneValue(), Callable()],
}


def check_parameters(estimator: Any) -> None:
    """Check every parameter of ``estimator`` against its class's ``_parameter_constraints``."""
    constraints = type(estimator)._parameter_constraints
    check_params(type(estimator).__name__, constraints, estimator.get_params(deep=False))
