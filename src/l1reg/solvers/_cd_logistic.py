r"""Compiled loops of the logistic datafit (importing this module imports numba).

The solver minimises :math:`\sum_i a_i \log(1 + e^{-y_i z_i}) + \sum_j \lambda_j |w_j|` with
margins :math:`z = Xw + b`, ``y`` in {-1, +1} and ``a`` the normalised sample weights (they sum
to 1), by proximal Newton steps on each working set (:func:`logistic_inner`).

The duality gap at the dual point :math:`\kappa\,\sigma(-y z)` (``kappa`` as in
:mod:`._cd_common`) is the primal minus
:math:`-\sum_i a_i\, h(\kappa \sigma(-y_i z_i))`, :math:`h(u) = u \log u + (1 - u) \log(1 - u)`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._cd_common import (
    ANDERSON_K,
    INLINE,
    JIT,
    anderson_candidate,
    col_axpy,
    col_dot,
    dual_scaling,
    largest_share,
    penalty_value,
    soft_threshold,
    tie_margin,
    unpenalized_excess,
)

MODEL_EPOCHS = 100  # cap on the coordinate-descent epochs per proximal Newton step
# float64's machine epsilon (a compile-time constant in the kernels)
_EPS = float(np.finfo(np.float64).eps)


@njit(**INLINE)
def log1p_exp(t):
    if t > 0.0:
        return t + np.log1p(np.exp(-t))
    return np.log1p(np.exp(t))


@njit(**INLINE)
def sigmoid(t):
    if t >= 0.0:
        return 1.0 / (1.0 + np.exp(-t))
    e = np.exp(t)
    return e / (1.0 + e)


@njit(**JIT)
def logistic_datafit(y, a, z):
    total = 0.0
    for i in range(y.shape[0]):
        total += a[i] * log1p_exp(-y[i] * z[i])
    return total


@njit(**JIT)
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


@njit(**JIT)
def logistic_correlations(X, data, indices, indptr, is_sparse, y, a, z, features, out):
    """``out[k] = -partial_j`` for ``j = features[k]`` (``X_j^T (a y sigmoid(-y z))``)."""
    n = y.shape[0]
    d = np.empty(n)
    for i in range(n):
        d[i] = a[i] * y[i] * sigmoid(-y[i] * z[i])
    for k in range(features.shape[0]):
        out[k] = col_dot(features[k], X, data, indices, indptr, is_sparse, d)


@njit(**JIT)
def logistic_gap(y, a, z, w, lam, positive, features, corr, curvature):
    """Duality gap and ``kappa``, the dual point scaled into the set of ``features``."""
    kappa = dual_scaling(lam, positive, features, corr)
    primal = penalty_value(w, lam, features)
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
    return primal - dual + excess, kappa


@njit(**JIT)
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


@njit(**JIT)
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

    A tie at the threshold resolves to 0 (``tie_margin``). The model's gradient along ``x_j``
    sums ``x_ij (d_i + h_i u_i)``: ``|d_i| <= a_i`` bounds the first terms by ``||x_j||_a``
    (weights ``a``, summing to 1), and ``h_i <= a_i / 4`` the rounding that the margins ``z``
    and each coefficient's share of them carry into the others.
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
    # Anderson extrapolates the model's iterates w + delta (not delta: a coordinate at 0 in every
    # iterate then stays exactly 0, where -w + w would leave its rounding)
    local = np.arange(n_ws)
    point = np.empty(n_ws)
    floor = np.zeros(n_ws)  # with ``positive``: w + delta >= 0
    delta_try = np.empty(n_ws)
    u_try = np.empty(n)
    col_norms = np.empty(n_ws)  # ||x_j||_a = sqrt(sum_i a_i x_ij^2) = 2 sqrt(lipschitz_j)
    tie_units = np.empty(n_ws)  # tie_margin at scale 1, per Newton step
    for k in range(n_ws):
        col_norms[k] = 2.0 * np.sqrt(lipschitz[ws[k]])
    gap = np.inf
    epoch = 0
    while epoch < max_epochs:
        z_norm2 = 0.0
        for i in range(n):
            p = sigmoid(-y[i] * z[i])
            d[i] = -a[i] * y[i] * p
            h[i] = a[i] * p * (1.0 - p)
            z_norm2 += a[i] * z[i] * z[i]
        z_norm = np.sqrt(z_norm2)
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
            tie_units[k] = tie_margin(1.0, col_norms[k], hess[k]) if hess[k] > 1e-300 else 0.0
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
            scale = 1.0 + 0.25 * (z_norm + largest_share(w, ws, delta, col_norms))
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
                new = soft_threshold(
                    old - g / hess[k], lam[j] / hess[k], positive, scale * tie_units[k]
                )
                change = new - old
                if change != 0.0:
                    delta[k] = new - w[j]  # (w + delta is then exactly 0 where new is)
                    col_axpy(j, X, data, indices, indptr, is_sparse, change, u)
                    if center:
                        h_u += change * means[k] * hess_b
                    decrease += hess[k] * change * change
            if use_anderson:
                for k in range(n_ws):
                    point[k] = w[ws[k]] + delta[k]
                n_stored, extrapolated = anderson_candidate(
                    buffer, n_stored, point, local, floor, positive, delta_try
                )
                if extrapolated:
                    for k in range(n_ws):
                        delta_try[k] -= w[ws[k]]
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
