r"""Soft-thresholding, the proximal operator of the L1 norm, on any array library.

.. math::

    \operatorname{prox}_{t\|\cdot\|_1}(v)_i = \operatorname{sign}(v_i)\,\max(|v_i| - t_i, 0)
    = v_i - \operatorname{clip}(v_i, -t_i, t_i)

The second form costs two element-wise operations and gives an exact (positive) zero wherever
``|v_i| <= t_i``, since ``v_i - v_i`` is exactly 0 in floating point.
"""

from __future__ import annotations

import numbers
from typing import Any

import array_api_compat

from ._array_api import array_library, common_library, is_array
from ._validation import check_non_negative_number, invalid_parameter

__all__ = ["prox_l1", "prox_l1_", "soft_threshold"]


def _check_threshold(x: Any, threshold: Any, owner: str) -> tuple[Any, Any, Any]:
    """Validate ``x`` and ``threshold``; return (namespace, x as floating, threshold)."""
    if not is_array(x):
        raise TypeError(invalid_parameter("x", owner, "an array", x))
    xp = array_api_compat.array_namespace(x)
    if not xp.isdtype(x.dtype, ("real floating", "complex floating")):
        x = xp.astype(x, xp.asarray(0.0).dtype)
    if isinstance(threshold, numbers.Real) and not is_array(threshold):
        return xp, x, check_non_negative_number(threshold, "threshold", owner)
    expected = (
        f"a non-negative number, or an array of them broadcastable to x's shape {tuple(x.shape)}"
    )
    if not is_array(threshold):
        raise TypeError(invalid_parameter("threshold", owner, expected, threshold))
    if array_library(threshold) == "numpy" and getattr(threshold, "ndim", 1) == 0:
        # A NumPy scalar travels with any library, like a Python float.
        return xp, x, check_non_negative_number(float(threshold), "threshold", owner)
    common_library([x, threshold], "x' and 'threshold", owner)
    try:
        broadcast = xp.broadcast_shapes(tuple(threshold.shape), tuple(x.shape))
    except (ValueError, RuntimeError):
        broadcast = None
    if broadcast != tuple(x.shape):
        shape = tuple(threshold.shape)
        raise ValueError(invalid_parameter("threshold", owner, expected, f"shape {shape}"))
    if not array_api_compat.is_lazy_array(threshold):
        bad = ~(xp.isfinite(threshold) & (threshold >= 0))
        if bool(xp.any(bad)):
            raise ValueError(invalid_parameter("threshold", owner, expected, threshold[bad][:5]))
    return xp, x, xp.astype(threshold, x.dtype)


def soft_threshold(x: Any, threshold: Any) -> Any:
    """Soft-thresholding without checks: ``x - clip(x, -threshold, threshold)``.

    For solvers and adapters that have validated their arguments once; users call :func:`prox_l1`.
    """
    xp = array_api_compat.array_namespace(x)
    return x - xp.clip(x, -threshold, threshold)


def prox_l1(x: Any, threshold: Any) -> Any:
    r"""Soft-threshold ``x``: the proximal operator of ``threshold * ||x||_1``.

    Parameters
    ----------
    x : array of any array-API library (NumPy, PyTorch, JAX, CuPy, ...)
        The point to shrink. It is not modified; integer arrays are promoted to floating point.
    threshold : non-negative number or array
        One threshold for every coordinate, or one per coordinate (an array of the same library,
        broadcastable to ``x.shape``). After a gradient step of size ``lr`` on the data loss, the
        threshold of the L1 penalty ``lambda_reg * ||x||_1`` is ``lr * lambda_reg``.

    Returns
    -------
    array like ``x``
        ``sign(x) * max(|x| - threshold, 0)``, with exact zeros where ``|x| <= threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg import prox_l1
    >>> prox_l1(np.array([-2.0, 0.5, 3.0]), 1.0)
    array([-1.,  0.,  2.])
    """
    xp, x, threshold = _check_threshold(x, threshold, "prox_l1")
    return x - xp.clip(x, -threshold, threshold)


def prox_l1_(x: Any, threshold: Any) -> Any:
    """In-place :func:`prox_l1`: overwrite floating-point array ``x`` with its soft-thresholding.

    Works on mutable libraries (NumPy, PyTorch, CuPy); JAX arrays are immutable and raise
    ``TypeError``. Returns ``x``.
    """
    if is_array(x) and array_library(x) == "jax":
        raise TypeError(
            "The 'x' parameter of prox_l1_ must be a mutable array; JAX arrays are immutable. "
            "Use l1reg.prox_l1, which returns a new array."
        )
    if is_array(x):
        xp = array_api_compat.array_namespace(x)
        if not xp.isdtype(x.dtype, ("real floating", "complex floating")):
            raise TypeError(
                invalid_parameter("x", "prox_l1_", "a floating-point array", f"dtype {x.dtype}")
            )
    xp, x, threshold = _check_threshold(x, threshold, "prox_l1_")
    shrink = xp.clip(x, -threshold, threshold)
    if array_api_compat.is_torch_array(x):
        x.sub_(shrink)
    elif array_api_compat.is_numpy_array(x):
        import numpy as np

        np.subtract(x, shrink, out=x)
    else:
        x[...] = x - shrink
    return x
