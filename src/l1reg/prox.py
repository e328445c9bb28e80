r"""Soft-thresholding, the proximal operator of the L1 norm, on any array library.

.. math::

    \operatorname{prox}_{t\|\cdot\|_1}(v)_i = \operatorname{sign}(v_i)\,\max(|v_i| - t_i, 0)
    = v_i - \operatorname{clip}(v_i, -t_i, t_i)

The second form costs two element-wise operations and gives an exact (positive) zero wherever
``|v_i| <= t_i``, since ``v_i - v_i`` is exactly 0 in floating point.

The group (L2,1) penalty's proxes are here too, as the factor ``x_g / z_g`` that multiplies each
group ``z_g``: :func:`group_shrink_factor` (block soft-thresholding, the prox in the plain
metric) and :func:`metric_group_factor` (the exact prox in a diagonal metric ``D``, the one that
follows Adam-like optimizers). ``l1reg.torch``, ``l1reg.keras`` and ``l1reg.jax`` call them; the
compiled CPU loop of ``l1reg.torch`` is tested against them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import array_api_compat
import numpy as np

from . import _numerics
from ._array_api import array_library, common_library, is_array
from ._validation import (
    Array,
    Checked,
    check_non_negative_number,
    declare_params,
    invalid_parameter,
    shown,
)

__all__ = [
    "NEWTON_STEPS",
    "group_shrink_factor",
    "metric_group_factor",
    "prox_l1",
    "prox_l1_",
    "soft_threshold",
]


def _bad_thresholds(valid: Any) -> list:
    return [-1.0, math.nan, math.inf, "abc", None, np.array([-1.0, 0.5]), np.ones((7, 3))]


_X = [Array()]
_THRESHOLD = [
    Checked(
        "a float in the range [0, inf), or an array of them of x's library broadcastable to "
        "x's shape",
        _bad_thresholds,
    )
]


def _is_floating(xp: Any, dtype: Any) -> bool:
    return _numerics.is_low_precision_float(dtype) or xp.isdtype(
        dtype, ("real floating", "complex floating")
    )


def _check_threshold(x: Any, threshold: Any, owner: str) -> tuple[Any, Any, Any]:
    """Validate ``threshold`` for the array ``x``; return (namespace, x as floating, threshold)."""
    xp = array_api_compat.array_namespace(x)
    if not _is_floating(xp, x.dtype):
        x = xp.astype(x, xp.asarray(0.0).dtype)
    if isinstance(threshold, numbers.Real) and not is_array(threshold):
        return xp, x, check_non_negative_number(threshold, "threshold", owner)
    expected = _THRESHOLD[0].text
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
        message = invalid_parameter("threshold", owner, expected, threshold)
        raise ValueError(
            f"{message} Its shape {tuple(threshold.shape)} does not broadcast to {tuple(x.shape)}."
        )
    if not array_api_compat.is_lazy_array(threshold):
        bad = ~(xp.isfinite(threshold) & (threshold >= 0))
        if bool(xp.any(bad)):
            message = invalid_parameter("threshold", owner, expected, threshold)
            raise ValueError(
                f"{message} Entries {shown(threshold[bad][:5])} are not finite numbers >= 0."
            )
    return xp, x, xp.astype(threshold, x.dtype)


def _shrinkage(xp: Any, x: Any, threshold: Any) -> Any:
    """What soft-thresholding takes off ``x``: ``clip(x, -threshold, threshold)``."""
    if _numerics.is_low_precision_float(x.dtype):
        # NumPy's clip of ml_dtypes' bfloat16 casts to float32; maximum and minimum keep it.
        return np.minimum(np.maximum(x, -threshold), threshold)
    return xp.clip(x, -threshold, threshold)


def soft_threshold(x: Any, threshold: Any) -> Any:
    """Soft-thresholding without checks: ``x - clip(x, -threshold, threshold)``.

    For solvers and adapters that have validated their arguments once; users call :func:`prox_l1`.
    """
    return _soft_threshold(array_api_compat.array_namespace(x), x, threshold)


def _soft_threshold(xp: Any, x: Any, threshold: Any) -> Any:
    return x - _shrinkage(xp, x, threshold)


@declare_params(x=_X, threshold=_THRESHOLD)
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
    return _soft_threshold(xp, x, threshold)


@declare_params(x=_X, threshold=_THRESHOLD)
def prox_l1_(x: Any, threshold: Any) -> Any:
    """In-place :func:`prox_l1`: overwrite floating-point array ``x`` with its soft-thresholding.

    Works on mutable libraries (NumPy, PyTorch, CuPy); JAX arrays are immutable and raise
    ``TypeError``. Returns ``x``.
    """
    if array_library(x) == "jax":
        message = invalid_parameter("x", "prox_l1_", "a mutable array", x)
        raise TypeError(
            f"{message} JAX arrays are immutable: use l1reg.prox_l1, which returns a new array."
        )
    xp = array_api_compat.array_namespace(x)
    if not _is_floating(xp, x.dtype):
        raise TypeError(invalid_parameter("x", "prox_l1_", "a floating-point array", x))
    xp, x, threshold = _check_threshold(x, threshold, "prox_l1_")
    shrink = _shrinkage(xp, x, threshold)
    if array_api_compat.is_torch_array(x):
        x.sub_(shrink)
    elif array_api_compat.is_numpy_array(x):
        np.subtract(x, shrink, out=x)
    else:
        x[...] = x - shrink
    return x


def group_shrink_factor(xp: Any, norms: Any, tau: Any) -> Any:
    """Block soft-thresholding as a factor: ``max(1 - tau / ||z_g||, 0)`` for each group norm.

    The prox of ``tau ||x_g||_2`` at ``z_g`` is ``factor * z_g``; a group with ``||z_g|| <= tau``
    gets exactly 0. ``tau`` is a number or an array broadcastable to ``norms``.
    """
    keep = norms > tau
    return xp.where(keep, 1 - tau / xp.where(keep, norms, 1), 0)


# Newton steps of the metric group prox: from the lower-bound start below, the relative error of
# the group norm is under 1e-6 after 5, even with D spread over six decades in one group.
NEWTON_STEPS = 5


def metric_group_factor(
    xp: Any,
    z: Any,
    d: Any,
    tau: Any,
    group_sums: Any,
    *,
    squares: Any = None,
    newton_steps: int = NEWTON_STEPS,
    early_exit: bool = False,
) -> Any:
    r"""The exact group prox in a diagonal metric, as the factor ``x / z`` of each coordinate.

    Each group solves :math:`\min_x \tfrac12 \|x - z\|_D^2 + \tau \|x\|_2`. Its solution is

    - ``x = 0`` iff ``||D z|| <= tau`` (the data gradient ``D (w - z)`` of a zero group is within
      ``tau`` of 0: for a group that was zero before an Adam step, iff ``||m_hat|| <= lambda
      sqrt|g|``, the optimality condition of the penalized loss);
    - otherwise ``x_i = z_i s / (s + c_i)``, ``c_i = tau / D_i``, where ``s = ||x|| > 0`` is the
      root of ``sum_i z_i^2 / (s + c_i)^2 = 1``.

    ``H(s) = (sum_i z_i^2 / (s + c_i)^2)^(-1/2)`` is increasing and concave (the secular function
    of trust-region methods), so Newton's method on ``H(s) = 1`` started below the root stays
    below it and converges. It starts at ``s0 = ||z|| - sum_i z_i^2 c_i / ||z||^2``, a lower bound
    by Jensen's inequality and the root itself when ``D`` is constant on the group (there the rule
    is block soft-thresholding with the threshold ``tau / D``). A step is
    ``s += (sqrt(G) - 1) G / G'`` with ``G = sum_i q_i^2``, ``G' = sum_i q_i^2 / (s + c_i)`` and
    ``q_i = z_i / (s + c_i)``; ``s`` is never overestimated, so no group shrinks too little.

    Parameters
    ----------
    z, d : arrays of one shape (``d`` may broadcast to it)
        The point and the metric ``D > 0``; a ``D`` of 0 (a coordinate without any gradient
        under ``eps = 0``) is raised to the dtype's smallest normal number: ``c_i`` is then huge
        and ``x_i`` about 0.
    tau : number or array broadcastable to the group sums
        The threshold of each group; where it is 0 the factor is 1 (no shrinkage).
    group_sums : callable
        ``values -> `` the sum over each group, with the group axes kept (an adapter's sum, e.g.
        all-reduced across the shards of a distributed tensor).
    squares : array, optional
        ``group_sums(z * z)``, when the caller has it.
    newton_steps : int
        At most this many Newton steps.
    early_exit : bool
        Stop once every step is below 1e-6 of ``s`` (what remains is about its square). It reads
        a value back to the host, so it is for eager code on the CPU, not for traced or GPU code.
    """
    d = xp.maximum(d, xp.finfo(z.dtype).smallest_normal)
    if squares is None:
        squares = group_sums(z * z)
    weighted = z * d
    keep = group_sums(weighted * weighted) > tau * tau
    scalar_tau = isinstance(tau, (int, float))
    if scalar_tau:
        if tau <= 0:
            return xp.ones_like(squares)
        c = tau / d
    else:
        positive = tau > 0
        keep = xp.logical_and(keep, positive)
        c = xp.where(positive, tau, 1) / d
    safe_squares = xp.where(keep, squares, 1)
    s = xp.maximum(xp.sqrt(safe_squares) - group_sums(z * z * c) / safe_squares, 0)
    z_kept = xp.where(keep, z, 1)  # finite Newton steps on the zeroed groups (s unused there)
    for _ in range(newton_steps):
        a = s + c
        q2 = xp.square(z_kept / a)
        g = group_sums(q2)
        step = (xp.sqrt(g) - 1) * g / group_sums(q2 / a)
        s = xp.maximum(s + step, 0)
        if early_exit and not bool(xp.any(xp.logical_and(xp.abs(step) > 1e-6 * s, keep))):
            break
    factor = xp.where(keep, s / (s + c), 0)
    return factor if scalar_tau else xp.where(positive, factor, 1)
