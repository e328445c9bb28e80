r"""What every compiled coordinate-descent loop uses (importing this module imports numba).

- column access: a column of the design matrix is read either from a dense Fortran-ordered
  array ``X`` or from the CSC arrays ``data, indices, indptr``; ``is_sparse`` picks which, so
  each loop is written once (:func:`col_dot`, :func:`col_axpy`, :func:`weighted_column_norms2`);
- the coordinate step of the weighted L1 penalty, :func:`soft_threshold`, and the margin within
  which it resolves a tie at its threshold to 0, :func:`tie_margin`;
- the pieces of every duality gap: the dual scaling ``kappa``, the penalty, and the term of the
  unpenalized features;
- Anderson extrapolation of the last iterates, :func:`anderson_candidate`;
- fingerprints of columns, to find the copies of one column, :func:`copy_candidates`.

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
def soft_threshold(value, threshold, positive, margin):
    """``argmin_x (x - value)^2 / 2 + threshold |x|`` (over ``x >= 0`` with ``positive``).

    A penalized coordinate (``threshold > 0``) whose ``|value|`` exceeds its threshold by at
    most ``margin`` gets 0: the excess is below the rounding error of ``value`` (a tie at the
    threshold, :func:`tie_margin`). ``margin = 0`` is the plain soft-thresholding of the core.
    """
    limit = threshold + margin if threshold > 0.0 else 0.0  # (no tie without a kink)
    if value > limit:
        return value - threshold
    if value < -limit and not positive:
        return value + threshold
    return 0.0


# --------------------------------------------------------------------------------------------
# ties at the threshold
#
# Exact duplicate columns, or the two indicator columns of a 2-level one-hot encoding beside the
# intercept: once one copy carries the weight, the gradient of the other equals its threshold up
# to rounding, so its soft-thresholding step returned that rounding (coefficients of 1e-16, and of
# 1e-25 after a line search) instead of 0. The step resolves the tie to 0 when the excess of the
# gradient over the threshold is below its rounding error, ``TIE_ULPS`` machine epsilons of the
# size of the terms that the gradient sums. By Cauchy-Schwarz that size is at most
# ``||x_j|| * scale``, ``||x_j||`` the column's norm in the datafit's metric and ``scale`` the
# norm of the largest vector the gradient reads (the target, the margins, one coefficient's share
# of the fit); each loop measures its ``scale`` once per epoch. The margin relative to the
# threshold is then about TIE_ULPS * eps * (alpha_max / alpha) / (the largest correlation of
# x_j and y): a few 1e-12 at alpha_max / 1000, far below any tolerance a duality gap is asked to
# meet; the gap is computed as before. (The copies that the steps in between leave a share of
# the weight to are ``_ties.py``'s.)
TIE_ULPS = 16.0
TIE_EPS = TIE_ULPS * float(np.finfo(np.float64).eps)


@njit(**INLINE)
def tie_margin(scale, norm, curvature):
    """The margin of :func:`soft_threshold` for a step ``value = w_j - grad_j / curvature``.

    ``TIE_EPS * norm * scale`` is the rounding error of ``grad_j`` (``norm = ||x_j||`` in the
    datafit's metric), divided by ``curvature`` into the units of ``value``.
    """
    return TIE_EPS * norm * scale / curvature


@njit(**INLINE)
def largest_share(w, ws, delta, norms):
    """``max_k |w_j + delta_k| norms_k`` over ``j = ws[k]``: the largest coefficient's share of
    the fit (``delta`` empty: ``w_j`` alone)."""
    shift = delta.shape[0] > 0
    share = 0.0
    for k in range(ws.shape[0]):
        value = w[ws[k]] + delta[k] if shift else w[ws[k]]
        value = abs(value) * norms[k]
        if value > share:
            share = value
    return share


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


# --------------------------------------------------------------------------------------------
# fingerprints of columns, to find the copies of one column (``_ties.py``)

_PROBE_1 = 0x9E3779B1  # multipliers of two multiplicative hashes (Knuth's, and murmur3's)
_PROBE_2 = 0x85EBCA77


@njit(**INLINE)
def probe(i, multiplier):
    """A fixed pseudo-random number in [-1/2, 1/2) for row ``i``."""
    return (((i + 1) * multiplier) & 0xFFFFFFFF) / 4294967296.0 - 0.5


@njit(**JIT)
def probe_weights(u):
    """``(p_1 . u, p_2 . u) / (u . u)``: what takes ``u`` out of the probes (:func:`probe`)."""
    out = np.zeros(2)
    uu = 0.0
    for i in range(u.shape[0]):
        out[0] += probe(i, _PROBE_1) * u[i]
        out[1] += probe(i, _PROBE_2) * u[i]
        uu += u[i] * u[i]
    if uu > 0.0:
        out /= uu
    return out


@njit(**JIT)
def column_fingerprints(X, data, indices, indptr, is_sparse, u, u_probes, features, out):
    """``out[k] = (p_1 . x) / (p_2 . x)`` for the column ``x`` of ``features[k]``.

    ``p_1, p_2`` are two fixed pseudo-random vectors with their components along ``u`` removed
    (``u_probes`` from :func:`probe_weights`; ``u`` empty: none), so columns that are parallel
    up to a multiple of ``u`` (the intercept's direction) have one fingerprint, and others,
    almost surely, different ones (a ratio: a multiple of a column has its fingerprint).
    """
    centered = u.shape[0] > 0
    for k in range(features.shape[0]):
        j = features[k]
        s1 = 0.0
        s2 = 0.0
        su = 0.0
        if is_sparse:
            for t in range(indptr[j], indptr[j + 1]):
                i = indices[t]
                s1 += probe(i, _PROBE_1) * data[t]
                s2 += probe(i, _PROBE_2) * data[t]
                if centered:
                    su += u[i] * data[t]
        else:
            for i in range(X.shape[0]):
                s1 += probe(i, _PROBE_1) * X[i, j]
                s2 += probe(i, _PROBE_2) * X[i, j]
                if centered:
                    su += u[i] * X[i, j]
        s1 -= u_probes[0] * su
        s2 -= u_probes[1] * su
        out[k] = s1 / s2 if s2 != 0.0 else np.inf


@njit(**JIT)
def copy_candidates(w, lam, prints, X, data, indices, indptr, is_sparse, u, u_probes, tol):
    """The penalized nonzero coefficients whose fingerprints agree (to ``tol``, relative).

    ``prints`` caches the fingerprint of each feature (NaN: not computed yet; computed here).
    Returns the features of each run of agreeing fingerprints, the runs closed by -1 (empty:
    none): one call, as most fits have no copies to merge.
    """
    n = 0
    for j in range(w.shape[0]):
        if w[j] != 0.0 and lam[j] > 0.0:
            n += 1
    if n < 2:
        return np.empty(0, dtype=np.int64)
    support = np.empty(n, dtype=np.int64)
    n = 0
    n_missing = 0
    for j in range(w.shape[0]):
        if w[j] != 0.0 and lam[j] > 0.0:
            support[n] = j
            n += 1
            if np.isnan(prints[j]):
                n_missing += 1
    if n_missing:
        missing = np.empty(n_missing, dtype=np.int64)
        k = 0
        for j in support:
            if np.isnan(prints[j]):
                missing[k] = j
                k += 1
        values = np.empty(n_missing)
        column_fingerprints(X, data, indices, indptr, is_sparse, u, u_probes, missing, values)
        for k in range(n_missing):
            prints[missing[k]] = values[k]
    values = prints[support]
    order = np.argsort(values)
    runs = np.empty(2 * n, dtype=np.int64)
    n_out = 0
    start = 0
    for stop in range(1, n + 1):
        if stop < n:
            a = values[order[stop - 1]]
            b = values[order[stop]]
            if abs(b - a) <= tol * abs(b):
                continue
        if stop - start > 1:
            for k in range(start, stop):
                runs[n_out] = support[order[k]]
                n_out += 1
            runs[n_out] = -1
            n_out += 1
        start = stop
    return runs[:n_out]


@njit(**JIT)
def copies_left_out(w, lam, members, starts, to_ref, norms, positive, same_price):
    """The copies that a fit leaves at 0, from the groups of copies found so far.

    Group ``g`` is ``members[starts[g]:starts[g + 1]]`` (sorted), with ``x_j = to_ref_j x_ref``
    and ``norms_j = ||x_j||``. Its carrier is the cheapest copy (``lam_j / ||x_j||``; prices
    within ``same_price`` are one), among those the largest share ``|w_j| ||x_j||``, then the
    first; the others that are 0 and penalized are left out (with ``positive``, those of the
    carrier's sign only: a weight of the other sign is not theirs to carry).
    """
    out = np.empty(members.shape[0], dtype=np.int64)
    n_out = 0
    for g in range(starts.shape[0] - 1):
        start, stop = starts[g], starts[g + 1]
        best = np.inf
        for k in range(start, stop):
            price = lam[members[k]] / norms[k]
            if price < best:
                best = price
        carrier = start
        carrier_share = -1.0
        for k in range(start, stop):
            j = members[k]
            if lam[j] / norms[k] <= best * (1.0 + same_price):
                share = abs(w[j]) * norms[k]
                if share > carrier_share:
                    carrier = k
                    carrier_share = share
        for k in range(start, stop):
            j = members[k]
            if k == carrier or w[j] != 0.0 or not lam[j] > 0.0:
                continue
            if positive and (to_ref[k] > 0.0) != (to_ref[carrier] > 0.0):
                continue
            out[n_out] = j
            n_out += 1
    return out[:n_out]
