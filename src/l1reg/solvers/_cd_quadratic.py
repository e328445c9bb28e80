r"""Compiled loops of the quadratic datafit (the Lasso) that read the design matrix.

In the units the loops use, the solver minimises
:math:`\tfrac12\|y - Xw\|^2 + \sum_j \lambda_j |w_j|` (the Lasso objective times ``n``) on data
that has been weighted (rows times :math:`\sqrt{s_i}`) and centered. Dense data is centered
explicitly; sparse data is centered implicitly, without densifying it: with column means ``m``
and :math:`q = \sqrt{s}`, the centered column is :math:`X_j - m_j q`, the loops keep
:math:`r_s = y - Xw` (sparse updates) and the scalar :math:`q^\top r_s`; the true residual is
:math:`r_s + (m^\top w) q` and, since every centered column is orthogonal to ``q``,

.. math:: (X_j - m_j q)^\top r = X_j^\top r_s - m_j\, q^\top r_s.

The duality gap at the dual point :math:`\kappa r` (``r`` the true residual, ``y`` centered) is

.. math:: \tfrac12\|r\|^2 (1 + \kappa^2) + \sum_j \lambda_j |w_j| - \kappa\, y^\top r,

the primal :math:`\tfrac12\|r\|^2 + \sum_j \lambda_j |w_j|` minus the dual
:math:`\kappa\, y^\top r - \tfrac12 \kappa^2 \|r\|^2`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._cd_common import (
    ANDERSON_K,
    INLINE,
    JIT,
    REASSOC,
    anderson_candidate,
    col_axpy,
    col_dot,
    dot,
    dual_scaling,
    largest_share,
    penalty_value,
    soft_threshold,
    tie_margin,
    unpenalized_excess,
)


@njit(**INLINE)
def quadratic_gap(norm2, y_r, w, lam, positive, features, corr, curvature):
    """The gap above and ``kappa``, from ``||r||^2``, ``y^T r`` and the correlations.

    ``corr[k] = x_j^T r`` for ``j = features[k]``: the dual point is scaled for the constraints
    of ``features`` (the others are assumed certified already); ``curvature`` enters the term
    of the unpenalized features.
    """
    kappa = dual_scaling(lam, positive, features, corr)
    gap = 0.5 * norm2 * (1.0 + kappa * kappa) + penalty_value(w, lam, features) - kappa * y_r
    return gap + unpenalized_excess(lam, curvature, positive, features, corr), kappa


@njit(**INLINE)
def quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr, r):
    """``(centered X_j)^T r_true``."""
    value = col_dot(j, X, data, indices, indptr, is_sparse, r)
    if center:
        value -= m[j] * qr
    return value


@njit(**REASSOC)
def quad_correlations(X, data, indices, indptr, is_sparse, center, m, qr, r, features, out):
    for k in range(features.shape[0]):
        j = features[k]
        out[k] = quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr, r)


@njit(**REASSOC)
def quad_residual_norm2(r, qr, offset, qq):
    """``||r_s + offset q||^2``."""
    return dot(r, r) + 2.0 * offset * qr + offset * offset * qq


@njit(**JIT)
def quad_gap(y, r, qr, qq, center, m, w, lam, positive, features, corr, curvature):
    """Duality gap (objective units times n) and ``kappa`` at ``(w, r_s, q^T r_s)``."""
    offset = 0.0
    if center:
        for k in range(features.shape[0]):
            offset += m[features[k]] * w[features[k]]
    norm2 = quad_residual_norm2(r, qr, offset, qq)
    # y is centered too, so y^T r_true = y^T r_s when centering implicitly.
    return quadratic_gap(norm2, dot(y, r), w, lam, positive, features, corr, curvature)


@njit(**INLINE)
def quad_set_coordinate(j, new, X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box):
    delta = new - w[j]
    if delta != 0.0:
        col_axpy(j, X, data, indices, indptr, is_sparse, -delta, r)
        if center:
            qr_box[0] -= delta * colq[j]
        w[j] = new


@njit(**JIT)
def quad_set_coordinates(
    X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box, features, values
):
    """``w[features] = values``, with the residual (and ``q^T r_s``) updated."""
    for k in range(features.shape[0]):
        quad_set_coordinate(
            features[k], values[k], X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box
        )


@njit(**REASSOC)
def quad_inner(
    X,
    data,
    indices,
    indptr,
    is_sparse,
    center,
    m,
    colq,
    qq,
    y,
    y_norm,
    w,
    r,
    qr_box,
    norms2,
    lam,
    positive,
    ws,
    max_epochs,
    tol_in,
    use_anderson,
):
    """Coordinate descent on the working set ``ws`` until its own duality gap is below ``tol_in``.

    Every ``ANDERSON_K`` epochs the extrapolation of the last iterates is tried and kept if it
    lowers the objective. Returns (epochs run, the working-set gap reached).

    A tie at the threshold resolves to 0 (``tie_margin``): a correlation reads the residual, whose
    norm is at most ``y_norm = ||y||`` along a descent from 0 (plus ``|m.w| ||q||`` for ``r_s``
    when centering implicitly), and, through the steps before it, each coefficient's share of
    the fit.
    """
    n_ws = ws.shape[0]
    buffer = np.empty((ANDERSON_K + 1, n_ws))
    n_stored = 0
    floor = np.zeros(n_ws)  # the bound of ``positive``
    corr = np.empty(n_ws)
    r_try = np.empty_like(r)
    w_try = np.empty(n_ws)
    # the norms of the columns the loop reads (uncentered when centering implicitly)
    col_norms = np.empty(n_ws)
    tie_units = np.zeros(n_ws)  # tie_margin at scale 1
    for k in range(n_ws):
        j = ws[k]
        col_norms[k] = np.sqrt(norms2[j] + m[j] * m[j] * qq if center else norms2[j])
        if norms2[j] > 0.0:
            tie_units[k] = tie_margin(1.0, col_norms[k], norms2[j])
    no_shift = np.empty(0)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        scale = y_norm + largest_share(w, ws, no_shift, col_norms)
        if center:
            offset = 0.0
            for k in range(n_ws):
                offset += m[ws[k]] * w[ws[k]]
            scale += abs(offset) * np.sqrt(qq)
        for k in range(n_ws):
            j = ws[k]
            if norms2[j] == 0.0:
                continue
            g = quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr_box[0], r)
            new = soft_threshold(
                w[j] + g / norms2[j], lam[j] / norms2[j], positive, scale * tie_units[k]
            )
            quad_set_coordinate(
                j, new, X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box
            )
        if use_anderson:
            n_stored, extrapolated = anderson_candidate(
                buffer, n_stored, w, ws, floor, positive, w_try
            )
            if extrapolated:
                r_try[:] = r
                qr_try = qr_box[0]
                offset_old = 0.0
                offset_new = 0.0
                pen_old = 0.0
                pen_new = 0.0
                for k in range(n_ws):
                    j = ws[k]
                    delta = w_try[k] - w[j]
                    if delta != 0.0:
                        col_axpy(j, X, data, indices, indptr, is_sparse, -delta, r_try)
                        if center:
                            qr_try -= delta * colq[j]
                    if center:
                        offset_old += m[j] * w[j]
                        offset_new += m[j] * w_try[k]
                    pen_old += lam[j] * abs(w[j])
                    pen_new += lam[j] * abs(w_try[k])
                obj_old = 0.5 * quad_residual_norm2(r, qr_box[0], offset_old, qq) + pen_old
                obj_new = 0.5 * quad_residual_norm2(r_try, qr_try, offset_new, qq) + pen_new
                if obj_new < obj_old:
                    for k in range(n_ws):
                        w[ws[k]] = w_try[k]
                    r[:] = r_try
                    qr_box[0] = qr_try
        if epoch % ANDERSON_K == 0 or epoch == max_epochs:
            quad_correlations(
                X, data, indices, indptr, is_sparse, center, m, qr_box[0], r, ws, corr
            )
            gap = quad_gap(y, r, qr_box[0], qq, center, m, w, lam, positive, ws, corr, norms2)[0]
            if gap <= tol_in:
                break
    return epoch, gap


@njit(**JIT)
def centered_fortran_copy(X, offset, row_scale, out, norms2):
    """``out = (X - offset) * row_scale[:, None]`` (Fortran order) and its squared column norms.

    One pass over ``X`` in any memory order, in tiles of 64 x 64, so that a C-ordered ``X`` is
    transposed a cache line at a time; arithmetic in ``X``'s dtype, norms in float64
    (``row_scale`` empty: all ones).
    """
    n, p = X.shape
    scaled = row_scale.shape[0] > 0
    for j in range(p):
        norms2[j] = 0.0
    for i0 in range(0, n, 64):
        i1 = min(i0 + 64, n)
        for j0 in range(0, p, 64):
            for j in range(j0, min(j0 + 64, p)):
                total = 0.0
                for i in range(i0, i1):
                    v = X[i, j] - offset[j]
                    if scaled:
                        v = v * row_scale[i]
                    out[i, j] = v
                    total += v * v
                norms2[j] += total
