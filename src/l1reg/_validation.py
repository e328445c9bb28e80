"""Parameter checks shared by every layer, and the wording of their errors.

Every check runs before any computation and names the parameter, its owner (the function or class
that received it) and the value received, in scikit-learn's wording:

    The 'lambda_reg' parameter of l1_regularization must be a non-negative finite number.
    Got -1 instead.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_non_negative_number", "check_positive_int", "invalid_parameter"]


def invalid_parameter(name: str, owner: str, expected: str, value: object) -> str:
    """Return the error text for parameter ``name`` of ``owner`` that received ``value``."""
    received = repr(value)
    if len(received) > 80:
        received = received[:77] + "..."
    return f"The {name!r} parameter of {owner} must be {expected}. Got {received} instead."


def check_non_negative_number(value: object, name: str, owner: str) -> float:
    """Return ``value`` as a Python float, or raise if it is not a finite number >= 0.

    Booleans, strings, arrays and other non-numbers raise ``TypeError``; negative, NaN and infinite
    numbers raise ``ValueError``. A 0-d NumPy value counts as a number.
    """
    expected = "a non-negative finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(invalid_parameter(name, owner, expected, value))
    as_float = float(value)
    if not math.isfinite(as_float) or as_float < 0:
        raise ValueError(invalid_parameter(name, owner, expected, value))
    return as_float


def check_positive_int(value: object, name: str, owner: str) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    expected = "an integer >= 1"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(invalid_parameter(name, owner, expected, value))
    if value < 1:
        raise ValueError(invalid_parameter(name, owner, expected, value))
    return int(value)
