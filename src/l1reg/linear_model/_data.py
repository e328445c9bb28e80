"""The checks of the data a linear model is fitted on; a ``fit`` that changes nothing if it fails.

``X`` and ``y`` are read by scikit-learn's ``validate_data``/``check_X_y`` (its messages, which
scikit-learn's own estimator checks expect); where its message does not name the argument at
fault, the argument is named in front of it. Values whose squares overflow the dtype are refused:
the solver's column norms would be infinite.
"""

from __future__ import annotations

import functools
import numbers
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, check_consistent_length, check_X_y, validate_data

from .._validation import Checked, NoneValue, declare_params, invalid_parameter

__all__ = [
    "FIT_DATA",
    "check_penalty_weights",
    "check_sample_weight",
    "checked_X",
    "checked_data",
    "fit_method",
    "predict_method",
]


def _bad_X(X: Any) -> list:
    X = np.asarray(X, dtype=np.float64)
    with_nan, with_inf = X.copy(), X.copy()
    with_nan[0, 0], with_inf[-1, -1] = np.nan, np.inf
    return [
        "abc",
        None,
        X[:, 0],  # 1-d
        X[:-1],  # fewer rows than y
        np.full(X.shape, "a"),
        with_nan,
        with_inf,
        np.full_like(X, 1e300),  # squares overflow
    ]


def _bad_y(y: Any) -> list:
    y = np.asarray(y)
    with_nan = y.astype(np.float64)
    with_nan[0] = np.nan
    return [None, y[:-1], np.column_stack([y, y]), with_nan]


def _bad_sample_weight(sample_weight: Any) -> list:
    return ["abc", -1.0, np.nan, np.inf, [1.0, 2.0], 0.0]


_X_TEXT = "an array-like or sparse matrix of shape (n_samples, n_features) of finite numbers"
#: The data parameters of ``fit`` (the checks need X's shape, so they run in the fit itself).
FIT_DATA = {
    "X": [Checked(_X_TEXT, _bad_X)],
    "y": [Checked("an array-like of shape (n_samples,)", _bad_y)],
    "sample_weight": [
        NoneValue(),
        Checked("a number or an array-like of n_samples finite numbers >= 0", _bad_sample_weight),
    ],
}


def _bad_X_to_predict(X: Any) -> list:
    X = np.asarray(X, dtype=np.float64)
    with_nan = X.copy()
    with_nan[0, 0] = np.nan
    return ["abc", None, X[:, :-1], np.full(X.shape, "a"), with_nan]


_PREDICT_DATA = {"X": [Checked(_X_TEXT + " (as many features as in fit)", _bad_X_to_predict)]}


def _named(error: Exception, name: str, owner: str) -> Exception:
    """``error`` as it is if its message names ``name``, else with the argument named in front."""
    if re.search(rf"\b{name}\b", str(error)):
        return error
    return type(error)(f"Invalid '{name}' argument of {owner}: {error}")


def _check_magnitude(name: str, values: Any, n_samples: int, owner: str) -> None:
    data = values.data if sp.issparse(values) else np.asarray(values)
    if data.size == 0 or data.dtype.kind != "f":
        return
    # Sums of n_samples squares overflow above this (max - min is two passes, no copy of X).
    limit = float(np.sqrt(np.finfo(data.dtype).max / max(n_samples, 1)))
    largest = max(float(data.max()), -float(data.min()))
    if largest > limit:
        raise ValueError(
            f"Input {name} of {owner} contains values too large for {data.dtype}: |{name}| "
            f"reaches {largest:.3g}, and sums of squares over {n_samples} samples overflow "
            f"above {limit:.3g}. Rescale {name}."
        )


def checked_data(
    X: Any, y: Any, owner: str, *, estimator: Any = None, regression: bool = False, **checks
) -> tuple[Any, Any]:
    """``(X, y)`` checked by scikit-learn (``validate_data`` for an ``estimator``, which records
    ``n_features_in_``; ``check_X_y`` otherwise), with the argument at fault named."""
    try:
        if estimator is None:
            X, y = check_X_y(X, y, **checks)
        else:
            X, y = validate_data(estimator, X, y, **checks)
    except (TypeError, ValueError) as error:
        x_checks = {k: v for k, v in checks.items() if k in ("accept_sparse", "dtype")}
        try:
            check_array(X, **x_checks)
        except (TypeError, ValueError):
            raise _named(error, "X", owner) from None
        try:
            check_consistent_length(X, y)
        except (TypeError, ValueError):
            raise type(error)(f"Invalid 'X' and 'y' arguments of {owner}: {error}") from None
        raise _named(error, "y", owner) from None
    _check_magnitude("X", X, X.shape[0], owner)
    if regression:
        _check_magnitude("y", y, X.shape[0], owner)
    return X, y


def checked_X(estimator: Any, X: Any, owner: str, **checks) -> Any:
    """``X`` to predict from, checked against the fitted ``estimator`` (``validate_data``)."""
    try:
        return validate_data(estimator, X, reset=False, **checks)
    except (TypeError, ValueError) as error:
        raise _named(error, "X", owner) from None


def check_sample_weight(sample_weight: Any, n_samples: int, owner: str) -> np.ndarray | None:
    """``sample_weight`` as float64: ``n_samples`` finite values >= 0 with a positive sum.

    None stays None (every sample weighs the same); a number gives that weight to every sample.
    """
    if sample_weight is None:
        return None
    expected = f"None, a number or an array of {n_samples} finite numbers >= 0 with a positive sum"
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        weights = np.full(n_samples, float(sample_weight))
    else:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                invalid_parameter("sample_weight", owner, expected, sample_weight)
            ) from None
        if weights.ndim != 1 or weights.shape[0] != n_samples:
            raise ValueError(
                invalid_parameter(
                    "sample_weight", owner, expected, f"an array of shape {weights.shape}"
                )
            )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(invalid_parameter("sample_weight", owner, expected, sample_weight))
    if not weights.sum() > 0:
        raise ValueError(
            f"The 'sample_weight' parameter of {owner} must have a positive sum. "
            f"Got {sample_weight!r}, sample weights that are all zero, instead."
        )
    return weights


def check_penalty_weights(weights: Any, n_features: int, owner: str) -> np.ndarray | None:
    """The per-feature penalty weights ``c_j >= 0`` (0: unpenalized) as float64, or None.

    Their values are declared constraints, checked before; this checks their number.
    """
    if weights is None:
        return None
    expected = f"None or an array of {n_features} finite numbers >= 0 (one per feature)"
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n_features,):
        raise ValueError(invalid_parameter("weights", owner, expected, f"shape {array.shape}"))
    return array


def fit_method(fit: Callable) -> Callable:
    """``fit(self, X, y, sample_weight=None)`` with its data parameters declared, leaving the
    estimator exactly as it was (every fitted attribute) when it raises."""

    @functools.wraps(fit)
    def atomic(self, X, y, sample_weight=None):
        saved = dict(vars(self))
        try:
            return fit(self, X, y, sample_weight)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    return declare_params(**FIT_DATA)(atomic)


def predict_method(method: Callable) -> Callable:
    """A prediction method of ``X`` alone, its parameter declared (checked by ``validate_data``)."""
    return declare_params(**_PREDICT_DATA)(method)
