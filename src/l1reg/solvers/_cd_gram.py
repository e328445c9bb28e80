r"""Compiled loops of the quadratic datafit that read a Gram matrix instead of the design matrix.

With :math:`G = X^\top X`, :math:`c = X^\top y` and :math:`g = X^\top r = c - G w` kept up to
date, a coordinate step costs the length of a row of ``G`` instead of ``n_samples``: a step of
:math:`\delta` on coordinate ``j`` gives

.. math:: g \mathrel{-}= \delta\, G_{:j}, \qquad
          \|r\|^2 \mathrel{+}= \delta (\delta G_{jj} - 2 g_j), \qquad
          y^\top r \mathrel{-}= \delta c_j .

One loop, :func:`gram_inner`, serves two callers: the Gram matrix of the whole (centered,
weighted) problem (dense data with more samples than features, ``GramQuadraticProblem``), and
the Gram matrix of one working set's columns (dense ``X``, bought in the middle of a path,
``QuadraticProblem``); the second is built by :func:`gram_extend` and :func:`gather_block`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._cd_common import (
    ANDERSON_K,
    FAST,
    JIT,
    REASSOC,
    anderson_candidate,
    largest_share,
    soft_threshold,
    tie_margin,
)
from ._cd_quadratic import quadratic_gap


@njit(**FAST)
def gram_axpy(G, j, scale, v):
    """``v += scale * G[:, j]``, read as the row ``G[j]`` (``G`` symmetric, C order)."""
    for i in range(v.shape[0]):
        v[i] += scale * G[j, i]


@njit(**JIT)
def gram_residual(yy, c, g, w, features):
    """``(||r||^2, y^T r)`` from ``g = c - G w``: ``yy - c.w - w.g`` and ``yy - c.w``.

    ``w`` is zero outside ``features``.
    """
    c_w = 0.0
    w_g = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        c_w += c[j] * w[j]
        w_g += w[j] * g[j]
    return max(yy - c_w - w_g, 0.0), yy - c_w


@njit(**JIT)
def gram_gap(yy, c, g, w, lam, positive, features, corr, curvature):
    """Duality gap (objective units times n) and ``kappa`` over ``features``."""
    rr, yr = gram_residual(yy, c, g, w, features)
    return quadratic_gap(rr, yr, w, lam, positive, features, corr, curvature)


@njit(**JIT)
def gram_inner(G, cy, w, g, rr, yr, y_norm, lam, positive, ws, max_epochs, tol_in, use_anderson):
    """Coordinate descent on ``ws`` from the Gram matrix; as ``quad_inner`` otherwise.

    ``G`` (symmetric, C order), ``cy = X^T y``, ``w``, ``g = X^T r`` and ``lam`` are indexed
    alike (all features, or one working set's); ``rr = ||r||^2``, ``yr = y^T r`` and ``y_norm =
    ||y||`` (``g = cy - G w`` carries the rounding of both terms: the scale of ``tie_margin`` is
    ``||y||`` plus the largest coefficient's share of the fit). ``w`` and ``g`` are updated in
    place. Returns (epochs, gap).
    """
    n_ws = ws.shape[0]
    diag = np.zeros(G.shape[0])
    col_norms = np.empty(n_ws)
    tie_units = np.zeros(n_ws)  # tie_margin at scale 1
    for k in range(n_ws):
        j = ws[k]
        diag[j] = G[j, j]
        col_norms[k] = np.sqrt(max(diag[j], 0.0))
        if diag[j] > 0.0:
            tie_units[k] = tie_margin(1.0, col_norms[k], diag[j])
    no_shift = np.empty(0)
    buffer = np.empty((ANDERSON_K + 1, n_ws))
    n_stored = 0
    floor = np.zeros(n_ws)  # the bound of ``positive``
    corr = np.empty(n_ws)
    w_try = np.empty(n_ws)
    g_try = np.empty_like(g)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        scale = y_norm + largest_share(w, ws, no_shift, col_norms)
        for k in range(n_ws):
            j = ws[k]
            if diag[j] <= 0.0:
                continue
            new = soft_threshold(
                w[j] + g[j] / diag[j], lam[j] / diag[j], positive, scale * tie_units[k]
            )
            delta = new - w[j]
            if delta != 0.0:
                rr += delta * (delta * diag[j] - 2.0 * g[j])
                yr -= delta * cy[j]
                gram_axpy(G, j, -delta, g)
                w[j] = new
        if use_anderson:
            n_stored, extrapolated = anderson_candidate(
                buffer, n_stored, w, ws, floor, positive, w_try
            )
            if extrapolated:
                g_try[:] = g
                d_g = 0.0
                d_cy = 0.0
                pen_old = 0.0
                pen_new = 0.0
                for k in range(n_ws):
                    j = ws[k]
                    delta = w_try[k] - w[j]
                    if delta != 0.0:
                        gram_axpy(G, j, -delta, g_try)
                        d_g += delta * g[j]
                        d_cy += delta * cy[j]
                    pen_old += lam[j] * abs(w[j])
                    pen_new += lam[j] * abs(w_try[k])
                # ||r - X d||^2 = rr - d.g - d.g_try
                d_g_try = 0.0
                for k in range(n_ws):
                    d_g_try += (w_try[k] - w[ws[k]]) * g_try[ws[k]]
                rr_try = rr - d_g - d_g_try
                if 0.5 * rr_try + pen_new < 0.5 * rr + pen_old:
                    for k in range(n_ws):
                        w[ws[k]] = w_try[k]
                    g[:] = g_try
                    rr = rr_try
                    yr -= d_cy
        if epoch % ANDERSON_K == 0 or epoch == max_epochs:
            for k in range(n_ws):
                corr[k] = g[ws[k]]
            gap = quadratic_gap(rr, yr, w, lam, positive, ws, corr, diag)[0]
            if gap <= tol_in:
                break
    return epoch, gap


# --------------------------------------------------------------------------------------------
# the Gram matrix of a working set's columns (dense X, along a path)


@njit(**REASSOC)
def gram_extend(X, y, order, start, stop, gram, cy):
    """Fill rows and columns ``start:stop`` of ``gram = X_o^T X_o`` and of ``cy = X_o^T y``.

    ``o = order``; the block ``start x start`` is already there. Dense ``X`` (Fortran order),
    products in float64. Two new columns against four others at a time: six loads for eight
    products instead of two loads per product (twice as fast as one dot at a time).
    """
    n = X.shape[0]
    for a in range(start, stop, 2):
        pair = a + 1 < stop
        j0 = order[a]
        j1 = order[a + 1] if pair else j0
        limit = a + 2 if pair else a + 1  # the new columns against order[:limit]
        for b in range(0, limit, 4):
            count = min(4, limit - b)
            i0 = order[b]
            i1 = order[b + 1] if count > 1 else i0
            i2 = order[b + 2] if count > 2 else i0
            i3 = order[b + 3] if count > 3 else i0
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
            for t in range(n):
                x0 = np.float64(X[t, j0])
                x1 = np.float64(X[t, j1])
                v0 = np.float64(X[t, i0])
                v1 = np.float64(X[t, i1])
                v2 = np.float64(X[t, i2])
                v3 = np.float64(X[t, i3])
                s00 += x0 * v0
                s01 += x0 * v1
                s02 += x0 * v2
                s03 += x0 * v3
                s10 += x1 * v0
                s11 += x1 * v1
                s12 += x1 * v2
                s13 += x1 * v3
            first = (s00, s01, s02, s03)
            second = (s10, s11, s12, s13)
            for q in range(count):
                gram[a, b + q] = first[q]
                gram[b + q, a] = first[q]
                if pair:
                    gram[a + 1, b + q] = second[q]
                    gram[b + q, a + 1] = second[q]
    for a in range(start, stop):
        j = order[a]
        total = 0.0
        for t in range(n):
            total += np.float64(X[t, j]) * y[t]
        cy[a] = total


@njit(**JIT)
def gather_block(G, idx, out):
    """``out = G[idx][:, idx]`` (``G`` symmetric, Fortran order: its columns are read)."""
    m = idx.shape[0]
    for a in range(m):
        col = idx[a]
        for b in range(m):
            out[a, b] = G[idx[b], col]
