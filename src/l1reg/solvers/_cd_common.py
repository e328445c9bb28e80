r"""What every compiled coordinate-descent loop uses (importing this module imports numba).

- column access: a column of the design matrix is read either from a dense Fortran-ordered
  array ``X`` or from the CSC arrays ``data, indices, indptr``; ``is_sparse`` picks which, so
  each loop is written once (:func:`col_dot`, :func:`col_axpy`, :func:`weighted_column_norms2`);
- the coordinate step of the weighted L1 penalty, :func:`soft_threshold`;
- the pieces of every duality gap: the dual scaling ``kappa``, the penalty, and the term of the
  unpenalized features;
- Anderson extrapolation of the last iterates, :func:`anderson_candidate`.

The loops themselves live with their datafit: :mod:`._cd_quadratic`, :mod:`._cd_gram`,
:mod:`._cd_logistic`. Numba's cache keys a compiled function on its own file only: after an
edit here, delete ``solvers/__pycache__/_cd_*`` (or touch the loops' files), or the loops keep
the helpers they inlined before.
"""

from __future__ import annotations

import numpy as np
from numba import njit

JIT = {"cache": True, "nogil": True}
FAST = {"cache": True, "nogil": True, "fastmath": True}
# Small helpers are inlined in numba's IR: a call per column with seven array arguments costs
# more than the column's work on sparse data.
INLINE = {"cache": True, "nogil": True, "inline": "always"}
INLINE_FAST = {"cache": True, "nogil": True, "fastmath": True, "inline": "always"}
# Reassociation (vectorised sums) without the no-NaN / no-inf assumptions: these loops compare
# against infinite sentinels.
REASSOC = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract"}}

ANDERSON_K = 5


@njit(**INLINE_FAST)
def dot(u, v):
    """``u @ v`` in the calling thread (BLAS would wake its threads for a vector: ms, loaded)."""
    total = 0.0
    for i in range(u.shape[0]):
        total += u[i] * v[i]
    return total


@njit(**INLINE_FAST)
def col_dot(j, X, data, indices, indptr, is_sparse, v):
    """``X[:, j] @ v``."""
    total = 0.0
    if is_sparse:
        for k in range(indptr[j], indptr[j + 1]):
            total += data[k] * v[indices[k]]
    else:
        for i in range(X.shape[0]):
            total += X[i, j] * v[i]
    return total


@njit(**INLINE_FAST)
def col_axpy(j, X, data, indices, indptr, is_sparse, scale, v):
    """``v += scale * X[:, j]`` in place."""
    if is_sparse:
        for k in range(indptr[j], indptr[j + 1]):
            v[indices[k]] += scale * data[k]
    else:
        for i in range(X.shape[0]):
            v[i] += scale * X[i, j]


@njit(**JIT)
def weighted_column_norms2(X, data, indices, indptr, is_sparse, a, n_features, out):
    """``out[j] = sum_i a_i X_ij^2``, accumulated in float64 (``a`` empty: all ones)."""
    weighted = a.shape[0] > 0
    for j in range(n_features):
        total = 0.0
        if is_sparse:
            for k in range(indptr[j], indptr[j + 1]):
                v = data[k] * data[k]
                total += a[indices[k]] * v if weighted else v
        else:
            for i in range(X.shape[0]):
                v = X[i, j] * X[i, j]
                total += a[i] * v if weighted else v
        out[j] = total


@njit(**INLINE)
def soft_threshold(value, threshold, positive):
    """``argmin_x (x - value)^2 / 2 + threshold |x|`` (over ``x >= 0`` with ``positive``)."""
    if value > threshold:
        return value - threshold
    if value < -threshold and not positive:
        return value + threshold
    return 0.0


# --------------------------------------------------------------------------------------------
# duality gaps
#
# Every gap takes the dual point ``kappa * theta``, ``theta`` the residual (or the loss
# gradient) and ``kappa`` the largest scale <= 1 that puts it in the dual set of the features
# checked: ``kappa |x_j^T theta| <= lam_j`` (``kappa x_j^T theta <= lam_j`` with ``positive``).
# ``corr[k]`` is ``x_j^T theta`` for ``j = features[k]``.


@njit(**INLINE)
def dual_scaling(lam, positive, features, corr):
    """``kappa``: the largest ``k <= 1`` with ``k * corr`` feasible for the penalized features."""
    ratio = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        if lam[j] > 0.0:
            c = corr[k] if positive else abs(corr[k])
            if c > ratio * lam[j]:
                ratio = c / lam[j]
    return 1.0 if ratio <= 1.0 else 1.0 / ratio


@njit(**INLINE)
def penalty_value(w, lam, features):
    """``sum_j lam_j |w_j|`` over ``features``."""
    total = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        total += lam[j] * abs(w[j])
    return total


@njit(**JIT)
def unpenalized_excess(lam, curvature, positive, features, corr):
    """``sum_j corr_j^2 / (2 L_j)`` over the unpenalized features (``lam_j = 0``).

    The dual constraint of an unpenalized feature is an equality (its gradient is 0), which a
    scaled residual meets only where that feature is optimal for the others. The outer loop of
    ``coordinate_descent.solve`` makes them optimal before each gap it trusts (off their optimum
    the gap errs to the first order in their gradient, which this term does not cover); this
    term, the decrease one step along each would give, keeps the working-set solvers from
    stopping long before. With ``positive`` the constraint is ``corr_j <= 0`` (a coefficient
    held at 0 by its bound may keep a gradient that points below it; one above 0 with such a
    gradient is already counted by the gap), so only ``corr_j > 0`` adds.
    """
    total = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        if lam[j] == 0.0 and curvature[j] > 0.0 and not (positive and corr[k] < 0.0):
            total += corr[k] * corr[k] / (2.0 * curvature[j])
    return total


# --------------------------------------------------------------------------------------------
# Anderson extrapolation


@njit(**JIT)
def anderson_coefficients(buffer):
    """Weights ``c`` (summing to 1) of the Anderson extrapolation of the iterates in ``buffer``.

    ``buffer`` holds K + 1 successive iterates; ``U`` their K differences; ``c`` solves
    ``min ||U^T c||`` subject to ``sum(c) = 1``: ``c = z / sum(z)`` with ``U U^T z = 1``.
    Returns an empty array when the system is singular.
    """
    k = buffer.shape[0] - 1
    diffs = buffer[1:] - buffer[:-1]
    gram = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1):
            total = 0.0
            for i in range(diffs.shape[1]):
                total += diffs[a, i] * diffs[b, i]
            gram[a, b] = total
            gram[b, a] = total
    scale = 0.0
    for i in range(k):
        scale += gram[i, i]
    if not scale > 0.0:
        return np.empty(0)
    gram /= scale
    try:
        z = np.linalg.solve(gram, np.ones(k))
    except Exception:
        return np.empty(0)
    total = z.sum()
    if not np.isfinite(total) or total == 0.0:
        return np.empty(0)
    return z / total


@njit(**INLINE)
def anderson_candidate(buffer, n_stored, iterate, index, floor, positive, out):
    """Store ``iterate[index]``; every K + 1 of them, their extrapolation: ``(n_stored, made)``.

    The iterate goes to ``buffer[n_stored]``. When the buffer is full, ``out`` receives
    ``sum_i c_i x_{i+1}`` (:func:`anderson_coefficients`; the last K iterates), held at or above
    ``floor`` when ``positive`` (the feasible set), ``made`` is True and the buffer starts again;
    ``made`` is False in between, or when the system is singular. Each loop keeps the candidate
    only where it lowers its objective: that test is the loop's own.
    """
    for k in range(index.shape[0]):
        buffer[n_stored, k] = iterate[index[k]]
    n_stored += 1
    if n_stored < ANDERSON_K + 1:
        return n_stored, False
    coefs = anderson_coefficients(buffer)
    if coefs.shape[0] == 0:
        return 0, False
    for k in range(buffer.shape[1]):
        value = 0.0
        for i in range(ANDERSON_K):
            value += coefs[i] * buffer[i + 1, k]
        if positive and value < floor[k]:
            value = floor[k]
        out[k] = value
    return 0, True
