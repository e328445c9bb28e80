r"""Compiled inner loops of the coordinate-descent solver (importing this module imports numba).

A column of the design matrix is read either from a dense Fortran-ordered array ``X`` or from the
CSC arrays ``data, indices, indptr``; ``is_sparse`` picks which, so each loop is written once.

Quadratic datafit, in the units the loops use: the solver minimises
:math:`\tfrac12\|y - Xw\|^2 + \sum_j \lambda_j |w_j|` (the Lasso objective times ``n``) on data
that has been weighted (rows times :math:`\sqrt{s_i}`) and centered. Dense data is centered
explicitly; sparse data is centered implicitly, without densifying it: with column means ``m``
and :math:`q = \sqrt{s}`, the centered column is :math:`X_j - m_j q`, the loops keep
:math:`r_s = y - Xw` (sparse updates) and the scalar :math:`q^\top r_s`; the true residual is
:math:`r_s + (m^\top w) q` and, since every centered column is orthogonal to ``q``,

.. math:: (X_j - m_j q)^\top r = X_j^\top r_s - m_j\, q^\top r_s.

Logistic datafit: :math:`\sum_i a_i \log(1 + e^{-y_i z_i}) + \sum_j \lambda_j |w_j|` with
margins :math:`z = Xw + b`, ``a`` the normalised sample weights (they sum to 1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True}
_FAST = {"cache": True, "nogil": True, "fastmath": True}
# Small helpers are inlined in numba's IR: a call per column with seven array arguments costs
# more than the column's work on sparse data.
_INLINE = {"cache": True, "nogil": True, "inline": "always"}
_INLINE_FAST = {"cache": True, "nogil": True, "fastmath": True, "inline": "always"}
# Reassociation (vectorised sums) without the no-NaN / no-inf assumptions: these loops compare
# against infinite sentinels.
_REASSOC = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract"}}

ANDERSON_K = 5
MODEL_EPOCHS = 100  # cap on the coordinate-descent epochs per proximal Newton step
# float64's machine epsilon (a compile-time constant in the kernels)
_EPS = float(np.finfo(np.float64).eps)


@njit(**_INLINE_FAST)
def dot(u, v):
    """``u @ v`` in the calling thread (BLAS would wake its threads for a vector: ms, loaded)."""
    total = 0.0
    for i in range(u.shape[0]):
        total += u[i] * v[i]
    return total


@njit(**_INLINE_FAST)
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


@njit(**_INLINE_FAST)
def col_axpy(j, X, data, indices, indptr, is_sparse, scale, v):
    """``v += scale * X[:, j]`` in place."""
    if is_sparse:
        for k in range(indptr[j], indptr[j + 1]):
            v[indices[k]] += scale * data[k]
    else:
        for i in range(X.shape[0]):
            v[i] += scale * X[i, j]


@njit(**_INLINE)
def soft_threshold(value, threshold, positive):
    if value > threshold:
        return value - threshold
    if value < -threshold and not positive:
        return value + threshold
    return 0.0


@njit(**_JIT)
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


@njit(**_INLINE)
def anderson_step(buffer, n_stored, out):
    """After an iterate was stored in ``buffer[n_stored]``: ``(n_stored, extrapolated)``.

    Every K + 1 iterates, writes their Anderson extrapolation into ``out`` (True) and starts the
    buffer again; ``extrapolated`` is False in between, or when the system is singular.
    """
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
        out[k] = value
    return 0, True


# --------------------------------------------------------------------------------------------
# quadratic datafit


@njit(**_INLINE)
def quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr, r):
    """``(centered X_j)^T r_true``."""
    value = col_dot(j, X, data, indices, indptr, is_sparse, r)
    if center:
        value -= m[j] * qr
    return value


@njit(**_REASSOC)
def quad_correlations(X, data, indices, indptr, is_sparse, center, m, qr, r, features, out):
    for k in range(features.shape[0]):
        j = features[k]
        out[k] = quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr, r)


@njit(**_REASSOC)
def quad_residual_norm2(r, qr, offset, qq):
    """``||r_s + offset q||^2``."""
    return dot(r, r) + 2.0 * offset * qr + offset * offset * qq


@njit(**_JIT)
def quad_objective(r, qr, qq, center, m, w, lam, features):
    """``0.5 ||r_true||^2 + sum_j lam_j |w_j|`` (w is zero outside ``features``)."""
    offset = 0.0
    penalty = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        if center:
            offset += m[j] * w[j]
        penalty += lam[j] * abs(w[j])
    return 0.5 * quad_residual_norm2(r, qr, offset, qq) + penalty


@njit(**_JIT)
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


@njit(**_JIT)
def quad_gap(y, r, qr, qq, center, m, w, lam, positive, features, corr, curvature):
    """Duality gap (objective units times n) given the correlations over ``features``.

    The dual point is ``k * r_true`` with the largest ``k <= 1`` that makes it feasible for the
    constraints of ``features`` (the others are assumed certified already).
    """
    ratio = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        if lam[j] > 0.0:
            c = corr[k] if positive else abs(corr[k])
            if c > ratio * lam[j]:
                ratio = c / lam[j]
    kappa = 1.0 if ratio <= 1.0 else 1.0 / ratio
    offset = 0.0
    penalty = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        if center:
            offset += m[j] * w[j]
        penalty += lam[j] * abs(w[j])
    norm2 = quad_residual_norm2(r, qr, offset, qq)
    # y is centered too, so y^T r_true = y^T r_s when centering implicitly.
    y_r = dot(y, r)
    primal = 0.5 * norm2 + penalty
    gap = 0.5 * norm2 * (1.0 + kappa * kappa) + penalty - kappa * y_r
    gap += unpenalized_excess(lam, curvature, positive, features, corr)
    return gap, primal, kappa


@njit(**_INLINE)
def quad_set_coordinate(j, new, X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box):
    delta = new - w[j]
    if delta != 0.0:
        col_axpy(j, X, data, indices, indptr, is_sparse, -delta, r)
        if center:
            qr_box[0] -= delta * colq[j]
        w[j] = new


@njit(**_JIT)
def quad_set_coordinates(
    X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box, features, values
):
    """``w[features] = values``, with the residual (and ``q^T r_s``) updated."""
    for k in range(features.shape[0]):
        quad_set_coordinate(
            features[k], values[k], X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box
        )


@njit(**_REASSOC)
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

    Returns (epochs run, the working-set gap reached).
    """
    n_ws = ws.shape[0]
    buffer = np.empty((ANDERSON_K + 1, n_ws))
    n_stored = 0
    corr = np.empty(n_ws)
    r_try = np.empty_like(r)
    w_try = np.empty(n_ws)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        for k in range(n_ws):
            j = ws[k]
            if norms2[j] == 0.0:
                continue
            g = quad_correlation(j, X, data, indices, indptr, is_sparse, center, m, qr_box[0], r)
            new = soft_threshold(w[j] + g / norms2[j], lam[j] / norms2[j], positive)
            quad_set_coordinate(
                j, new, X, data, indices, indptr, is_sparse, center, colq, w, r, qr_box
            )
        if use_anderson:
            for k in range(n_ws):
                buffer[n_stored, k] = w[ws[k]]
            n_stored, extrapolated = anderson_step(buffer, n_stored, w_try)
            if extrapolated:
                # Extrapolate from the last K iterates; keep it if it lowers the objective.
                for k in range(n_ws):
                    value = w_try[k]
                    if positive and value < 0.0:
                        value = 0.0
                    w_try[k] = value
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


# --------------------------------------------------------------------------------------------
# logistic datafit


@njit(**_INLINE)
def log1p_exp(t):
    if t > 0.0:
        return t + np.log1p(np.exp(-t))
    return np.log1p(np.exp(t))


@njit(**_INLINE)
def sigmoid(t):
    if t >= 0.0:
        return 1.0 / (1.0 + np.exp(-t))
    e = np.exp(t)
    return e / (1.0 + e)


@njit(**_FAST)
def logistic_partial(j, X, data, indices, indptr, is_sparse, y, a, z):
    """Derivative of the datafit along ``w_j``: ``-sum_i a_i y_i x_ij sigmoid(-y_i z_i)``."""
    total = 0.0
    if is_sparse:
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            total -= data[k] * a[i] * y[i] * sigmoid(-y[i] * z[i])
    else:
        for i in range(X.shape[0]):
            total -= X[i, j] * a[i] * y[i] * sigmoid(-y[i] * z[i])
    return total


@njit(**_JIT)
def logistic_datafit(y, a, z):
    total = 0.0
    for i in range(y.shape[0]):
        total += a[i] * log1p_exp(-y[i] * z[i])
    return total


@njit(**_JIT)
def logistic_newton_intercept(y, a, z, b_box, n_steps):
    """A few safeguarded Newton steps on the intercept; ``z`` and ``b_box[0]`` are updated."""
    for _ in range(n_steps):
        grad = 0.0
        hess = 0.0
        for i in range(y.shape[0]):
            s = sigmoid(-y[i] * z[i])
            grad -= a[i] * y[i] * s
            hess += a[i] * s * (1.0 - s)
        if grad == 0.0:
            return 0.0
        step = -grad / max(hess, 1e-12)
        # The derivative is bounded by 1 in absolute value: cap the step so an almost separable
        # problem does not send the intercept to infinity in one step.
        if step > 4.0:
            step = 4.0
        elif step < -4.0:
            step = -4.0
        for i in range(y.shape[0]):
            z[i] += step
        b_box[0] += step
        if abs(step) < 1e-12:
            break
    grad = 0.0
    for i in range(y.shape[0]):
        grad -= a[i] * y[i] * sigmoid(-y[i] * z[i])
    return grad


@njit(**_JIT)
def logistic_correlations(X, data, indices, indptr, is_sparse, y, a, z, features, out):
    """``out[k] = -partial_j`` for ``j = features[k]`` (``X_j^T (a y sigmoid(-y z))``)."""
    n = y.shape[0]
    d = np.empty(n)
    for i in range(n):
        d[i] = a[i] * y[i] * sigmoid(-y[i] * z[i])
    for k in range(features.shape[0]):
        out[k] = col_dot(features[k], X, data, indices, indptr, is_sparse, d)


@njit(**_JIT)
def logistic_gap(y, a, z, w, lam, positive, features, corr, curvature):
    """Duality gap of the L1 logistic objective, dual point scaled into the set of ``features``."""
    ratio = 0.0
    penalty = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        penalty += lam[j] * abs(w[j])
        if lam[j] > 0.0:
            c = corr[k] if positive else abs(corr[k])
            if c > ratio * lam[j]:
                ratio = c / lam[j]
    kappa = 1.0 if ratio <= 1.0 else 1.0 / ratio
    primal = penalty
    dual = 0.0
    for i in range(y.shape[0]):
        t = -y[i] * z[i]
        primal += a[i] * log1p_exp(t)
        u = kappa * sigmoid(t)
        h = 0.0
        if u > 0.0:
            h += u * np.log(u)
        if u < 1.0:
            h += (1.0 - u) * np.log1p(-u)
        dual -= a[i] * h
    excess = unpenalized_excess(lam, curvature, positive, features, corr)
    return primal - dual + excess, primal


@njit(**_JIT)
def logistic_objective(y, a, z, w, lam, features):
    penalty = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        penalty += lam[j] * abs(w[j])
    return logistic_datafit(y, a, z) + penalty


@njit(**_JIT)
def newton_model(d, h, u, delta, means, w, lam, ws, center, d_sum, hess_b):
    """Value of the second-order model at ``delta`` (``u = X delta``), intercept eliminated."""
    shift = 0.0
    if center:
        shift = -d_sum / hess_b
        for k in range(ws.shape[0]):
            shift -= means[k] * delta[k]
    value = 0.0
    for i in range(d.shape[0]):
        v = u[i] + shift
        value += d[i] * v + 0.5 * h[i] * v * v
    for k in range(ws.shape[0]):
        value += lam[ws[k]] * abs(w[ws[k]] + delta[k])
    return value


@njit(**_JIT)
def logistic_inner(
    X,
    data,
    indices,
    indptr,
    is_sparse,
    y,
    a,
    w,
    z,
    b_box,
    fit_intercept,
    lipschitz,
    lam,
    positive,
    ws,
    max_epochs,
    tol_in,
    use_anderson,
):
    """Proximal Newton on ``ws`` until its duality gap is below ``tol_in``.

    Each Newton step minimises, by coordinate descent, the second-order model of the datafit at
    the current margins plus the exact penalty (curvature ``h_i = a_i p_i (1 - p_i)``, no
    exponential inside the loop), then backtracks along the direction until the objective
    decreases enough (Armijo). ``lipschitz`` (bounds of the curvature) only enters the gap of
    unpenalized features. With ``use_anderson``, the coordinate descent on each model is
    extrapolated (Anderson, every 5 epochs, kept when the model value drops): correlated
    features make that descent slow, and an inexact model makes the Newton steps slow.
    Returns (epochs, gap); an epoch is one pass of the inner coordinate descent.
    """
    n = y.shape[0]
    n_ws = ws.shape[0]
    corr = np.empty(n_ws)
    d = np.empty(n)  # derivative of the loss in z_i
    h = np.empty(n)  # curvature of the loss in z_i
    u = np.empty(n)  # X delta + delta_b
    hess = np.empty(n_ws)
    means = np.empty(n_ws)
    delta = np.empty(n_ws)
    z_try = np.empty(n)
    buffer = np.empty((ANDERSON_K + 1, n_ws))
    delta_try = np.empty(n_ws)
    u_try = np.empty(n)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        for i in range(n):
            p = sigmoid(-y[i] * z[i])
            d[i] = -a[i] * y[i] * p
            h[i] = a[i] * p * (1.0 - p)
        # With an intercept, the model is minimised over it in closed form: the columns are
        # centered (weights h) implicitly, m_j = sum_i h_i x_ij / H, which decouples the
        # intercept from w (no slow zig-zag between them when the features are not centered).
        hess_b = h.sum()
        d_sum = d.sum()
        center = fit_intercept and hess_b > 1e-300
        for k in range(n_ws):
            j = ws[k]
            h_x2 = 0.0
            h_x = 0.0
            if is_sparse:
                for q in range(indptr[j], indptr[j + 1]):
                    i = indices[q]
                    h_x2 += h[i] * data[q] * data[q]
                    h_x += h[i] * data[q]
            else:
                for i in range(n):
                    h_x2 += h[i] * X[i, j] * X[i, j]
                    h_x += h[i] * X[i, j]
            if center:
                means[k] = h_x / hess_b
                hess[k] = max(h_x2 - means[k] * h_x, 0.0)
            else:
                means[k] = 0.0
                hess[k] = h_x2
            delta[k] = 0.0
        u[:] = 0.0  # X delta (uncentered)
        h_u = 0.0  # h . u
        # Coordinate descent on the model: min_delta sum_i d_i v_i + h_i v_i^2 / 2 + penalty,
        # v = (X - 1 m^T) delta (+ the intercept's share, which is independent).
        first_decrease = -1.0
        n_stored = 0
        for _ in range(MODEL_EPOCHS):
            epoch += 1
            decrease = 0.0
            for k in range(n_ws):
                if hess[k] <= 1e-300:
                    continue
                j = ws[k]
                g = 0.0
                if is_sparse:
                    for q in range(indptr[j], indptr[j + 1]):
                        i = indices[q]
                        g += data[q] * (d[i] + h[i] * u[i])
                else:
                    for i in range(n):
                        g += X[i, j] * (d[i] + h[i] * u[i])
                if center:
                    g -= means[k] * (d_sum + h_u)
                old = w[j] + delta[k]
                new = soft_threshold(old - g / hess[k], lam[j] / hess[k], positive)
                change = new - old
                if change != 0.0:
                    delta[k] += change
                    col_axpy(j, X, data, indices, indptr, is_sparse, change, u)
                    if center:
                        h_u += change * means[k] * hess_b
                    decrease += hess[k] * change * change
            if use_anderson:
                buffer[n_stored] = delta
                n_stored, extrapolated = anderson_step(buffer, n_stored, delta_try)
                if extrapolated:
                    if positive:
                        for k in range(n_ws):
                            delta_try[k] = max(delta_try[k], -w[ws[k]])
                    u_try[:] = u
                    for k in range(n_ws):
                        change = delta_try[k] - delta[k]
                        if change != 0.0:
                            col_axpy(ws[k], X, data, indices, indptr, is_sparse, change, u_try)
                    old_value = newton_model(
                        d, h, u, delta, means, w, lam, ws, center, d_sum, hess_b
                    )
                    new_value = newton_model(
                        d, h, u_try, delta_try, means, w, lam, ws, center, d_sum, hess_b
                    )
                    if new_value < old_value:
                        delta[:] = delta_try
                        u[:] = u_try
                        if center:
                            h_u = 0.0
                            for i in range(n):
                                h_u += h[i] * u[i]
            # Solve the model well (relative to its first epoch): an inexact model makes the
            # Newton steps converge only linearly.
            if first_decrease < 0.0:
                first_decrease = decrease
            if decrease <= 1e-4 * first_decrease:
                break
            if epoch >= max_epochs:
                break
        # The direction in the margins: u - m.delta + beta with beta = -sum(d) / H.
        delta_b = 0.0
        if center:
            shift = -d_sum / hess_b
            for k in range(n_ws):
                shift -= means[k] * delta[k]
            for i in range(n):
                u[i] += shift
            delta_b = shift  # z = Xw + b: the intercept moves by beta - m.delta
        # Backtracking line search on the true objective.
        slope = 0.0
        for i in range(n):
            slope += d[i] * u[i]
        pen_old = 0.0
        pen_new = 0.0
        for k in range(n_ws):
            j = ws[k]
            pen_old += lam[j] * abs(w[j])
            pen_new += lam[j] * abs(w[j] + delta[k])
        slope += pen_new - pen_old
        obj_old = logistic_datafit(y, a, z) + pen_old
        # Near the solution the decrease of a Newton step is of the second order in the
        # gradient, while the duality gap is of the first: a gap of 1e-10 goes with a decrease
        # of ~1e-20, below the rounding of the objective. There a full step that leaves the
        # objective unchanged to rounding is taken (Newton's step is then the right one).
        noise = 64.0 * _EPS * abs(obj_old)
        step = 1.0
        accepted = False
        for _ in range(30):
            for i in range(n):
                z_try[i] = z[i] + step * u[i]
            pen_try = 0.0
            for k in range(n_ws):
                pen_try += lam[ws[k]] * abs(w[ws[k]] + step * delta[k])
            obj_try = logistic_datafit(y, a, z_try) + pen_try
            if obj_try <= obj_old + 1e-4 * step * slope or (
                step == 1.0 and -slope <= noise and obj_try <= obj_old + noise
            ):
                accepted = True
                break
            step *= 0.5
        if accepted:
            for k in range(n_ws):
                w[ws[k]] += step * delta[k]
            z[:] = z_try
            b_box[0] += step * delta_b
        if fit_intercept:
            logistic_newton_intercept(y, a, z, b_box, 20)
        logistic_correlations(X, data, indices, indptr, is_sparse, y, a, z, ws, corr)
        gap = logistic_gap(y, a, z, w, lam, positive, ws, corr, lipschitz)[0]
        if gap <= tol_in or not accepted:
            break
    return epoch, gap


# --------------------------------------------------------------------------------------------
# preparation


@njit(**_JIT)
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


@njit(**_JIT)
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


# --------------------------------------------------------------------------------------------
# quadratic datafit from the Gram matrix (dense data with more samples than features)
#
# With G = X^T X, c = X^T y and q = G w (kept up to date), a coordinate step costs O(p) instead
# of O(n): the gradient along w_j is q_j - c_j, the residual norm is yy - 2 c.w + w.q.


@njit(**_JIT)
def gram_gap(yy, c, q, w, lam, positive, features, curvature):
    """Duality gap (objective units times n) and ``kappa``, over ``features``."""
    ratio = 0.0
    penalty = 0.0
    c_w = 0.0
    w_q = 0.0
    excess = 0.0
    for k in range(features.shape[0]):
        j = features[k]
        corr = c[j] - q[j]
        penalty += lam[j] * abs(w[j])
        c_w += c[j] * w[j]
        w_q += w[j] * q[j]
        if lam[j] > 0.0:
            value = corr if positive else abs(corr)
            if value > ratio * lam[j]:
                ratio = value / lam[j]
        elif curvature[j] > 0.0 and not (positive and corr < 0.0):
            excess += corr * corr / (2.0 * curvature[j])
    kappa = 1.0 if ratio <= 1.0 else 1.0 / ratio
    norm2 = max(yy - 2.0 * c_w + w_q, 0.0)
    y_r = yy - c_w
    gap = 0.5 * norm2 * (1.0 + kappa * kappa) + penalty - kappa * y_r + excess
    return gap, kappa


@njit(**_FAST)
def gram_axpy(G, j, scale, q):
    for i in range(q.shape[0]):
        q[i] += scale * G[i, j]


@njit(**_JIT)
def gram_inner(G, c, yy, w, q, diag, lam, positive, ws, max_epochs, tol_in, use_anderson):
    """Coordinate descent on ``ws`` with the Gram matrix; as ``quad_inner`` otherwise."""
    n_ws = ws.shape[0]
    buffer = np.empty((ANDERSON_K + 1, n_ws))
    n_stored = 0
    q_try = np.empty_like(q)
    w_try = np.empty(n_ws)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        for k in range(n_ws):
            j = ws[k]
            if diag[j] == 0.0:
                continue
            new = soft_threshold(w[j] + (c[j] - q[j]) / diag[j], lam[j] / diag[j], positive)
            delta = new - w[j]
            if delta != 0.0:
                gram_axpy(G, j, delta, q)
                w[j] = new
        if use_anderson:
            for k in range(n_ws):
                buffer[n_stored, k] = w[ws[k]]
            n_stored, extrapolated = anderson_step(buffer, n_stored, w_try)
            if extrapolated:
                q_try[:] = q
                obj_old = 0.0
                obj_new = 0.0
                for k in range(n_ws):
                    value = w_try[k]
                    if positive and value < 0.0:
                        value = 0.0
                    w_try[k] = value
                    j = ws[k]
                    delta = value - w[j]
                    if delta != 0.0:
                        gram_axpy(G, j, delta, q_try)
                for k in range(n_ws):
                    j = ws[k]
                    obj_old += 0.5 * w[j] * q[j] - c[j] * w[j] + lam[j] * abs(w[j])
                    obj_new += 0.5 * w_try[k] * q_try[j] - c[j] * w_try[k] + lam[j] * abs(w_try[k])
                if obj_new < obj_old:
                    for k in range(n_ws):
                        w[ws[k]] = w_try[k]
                    q[:] = q_try
        if epoch % ANDERSON_K == 0 or epoch == max_epochs:
            gap = gram_gap(yy, c, q, w, lam, positive, ws, diag)[0]
            if gap <= tol_in:
                break
    return epoch, gap


# --------------------------------------------------------------------------------------------
# quadratic datafit on a working set, from the Gram matrix of its columns (dense X, path)
#
# Everything is local to the working set: ``G = X_ws^T X_ws``, ``cy = X_ws^T y``, and the loop
# keeps ``g = X_ws^T r``, ``rr = ||r||^2`` and ``yr = y^T r`` up to date (a step of ``delta``
# on coordinate k: ``g -= delta G[:, k]``, ``rr += delta^2 G_kk - 2 delta g_k``,
# ``yr -= delta cy_k``). An epoch costs O(|ws|) per coefficient that moves, not O(n_samples)
# per coefficient; the caller moves ``r`` once at the end.


@njit(**_REASSOC)
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


@njit(**_JIT)
def gather_block(G, idx, out):
    """``out = G[idx][:, idx]`` (``G`` symmetric, Fortran order: its columns are read)."""
    m = idx.shape[0]
    for a in range(m):
        col = idx[a]
        for b in range(m):
            out[a, b] = G[idx[b], col]


@njit(**_JIT)
def local_gap(g, rr, yr, w, lam, diag, positive):
    """Duality gap (times n) of the working-set problem, as ``quad_gap``."""
    ratio = 0.0
    penalty = 0.0
    excess = 0.0
    for k in range(w.shape[0]):
        penalty += lam[k] * abs(w[k])
        if lam[k] > 0.0:
            c = g[k] if positive else abs(g[k])
            if c > ratio * lam[k]:
                ratio = c / lam[k]
        elif diag[k] > 0.0 and not (positive and g[k] < 0.0):
            excess += g[k] * g[k] / (2.0 * diag[k])
    kappa = 1.0 if ratio <= 1.0 else 1.0 / ratio
    return 0.5 * rr * (1.0 + kappa * kappa) + penalty - kappa * yr + excess


@njit(**_FAST)
def local_axpy(G, k, scale, g):
    """``g += scale * G[:, k]``, read as the row ``G[k]`` (``G`` symmetric, C order)."""
    for i in range(g.shape[0]):
        g[i] += scale * G[k, i]


@njit(**_JIT)
def local_gram_inner(G, cy, w, g, rr, yr, lam, positive, max_epochs, tol_in, use_anderson):
    """Coordinate descent on the working set from its Gram matrix; as ``quad_inner`` otherwise.

    ``w`` and ``g`` (local to the working set) are updated in place. Returns (epochs, gap).
    """
    m = w.shape[0]
    diag = np.empty(m)
    for k in range(m):
        diag[k] = G[k, k]
    buffer = np.empty((ANDERSON_K + 1, m))
    n_stored = 0
    w_try = np.empty(m)
    g_try = np.empty(m)
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        for k in range(m):
            if diag[k] <= 0.0:
                continue
            new = soft_threshold(w[k] + g[k] / diag[k], lam[k] / diag[k], positive)
            delta = new - w[k]
            if delta != 0.0:
                rr += delta * (delta * diag[k] - 2.0 * g[k])
                yr -= delta * cy[k]
                local_axpy(G, k, -delta, g)
                w[k] = new
        if use_anderson:
            buffer[n_stored] = w
            n_stored, extrapolated = anderson_step(buffer, n_stored, w_try)
            if extrapolated:
                g_try[:] = g
                d_g = 0.0
                d_cy = 0.0
                pen_old = 0.0
                pen_new = 0.0
                for k in range(m):
                    if positive and w_try[k] < 0.0:
                        w_try[k] = 0.0
                    delta = w_try[k] - w[k]
                    if delta != 0.0:
                        local_axpy(G, k, -delta, g_try)
                        d_g += delta * g[k]
                        d_cy += delta * cy[k]
                    pen_old += lam[k] * abs(w[k])
                    pen_new += lam[k] * abs(w_try[k])
                # ||r - X d||^2 = rr - d.g - d.g_try
                d_g_try = 0.0
                for k in range(m):
                    d_g_try += (w_try[k] - w[k]) * g_try[k]
                rr_try = rr - d_g - d_g_try
                if 0.5 * rr_try + pen_new < 0.5 * rr + pen_old:
                    w[:] = w_try
                    g[:] = g_try
                    rr = rr_try
                    yr -= d_cy
        if epoch % ANDERSON_K == 0 or epoch == max_epochs:
            gap = local_gap(g, rr, yr, w, lam, diag, positive)
            if gap <= tol_in:
                break
    return epoch, gap
