r"""Data terms of the L1-regularized linear models, and their duality gaps.

Two datafits, both averaged over the samples with optional sample weights ``s_i >= 0`` (the
average is taken with weights ``s_i / sum(s)``, so a weight of 2 is the same as a repeated row):

- :class:`Quadratic` (the Lasso): :math:`\frac{1}{2 S}\sum_i s_i (y_i - x_i^\top w - b)^2`;
- :class:`Logistic`: :math:`\frac{1}{S}\sum_i s_i \log(1 + \exp(-y_i (x_i^\top w + b)))`,
  with ``y_i`` in {-1, +1};

where :math:`S = \sum_i s_i` (``n`` without weights). Each offers ``value``, ``gradient``,
``lipschitz`` (of the gradient with respect to ``w``, globally and per coordinate), ``alpha_max``
(the smallest ``alpha`` whose solution is ``w = 0``, intercept fitted) and ``duality_gap`` for the
objective ``datafit + alpha * sum_j c_j |w_j|``.

``X`` is a NumPy array, a SciPy sparse matrix or an array of another array-API library (a torch
tensor, say); ``y`` and ``w`` belong to the library of ``X`` (NumPy for sparse ``X``). Everything
here is written once on the array API, the reference the compiled solvers are tested against.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from ._numerics import log1p_exp, sigmoid

__all__ = ["Datafit", "Logistic", "Quadratic", "positive_class_share"]


def _namespace(*arrays: Any) -> Any:
    """The array namespace of the dense arrays among ``arrays`` (SciPy sparse counts as NumPy)."""
    dense = [a for a in arrays if a is not None and not _is_scipy_sparse(a)]
    return array_api_compat.array_namespace(*dense) if dense else np


def _is_scipy_sparse(x: Any) -> bool:
    return type(x).__module__.startswith("scipy.sparse")


def _normalized_weights(xp: Any, y: Any, sample_weight: Any) -> Any:
    """Weights ``a_i = s_i / sum(s)`` (``1/n`` each when ``sample_weight`` is None)."""
    n = y.shape[0]
    if sample_weight is None:
        return xp.full((n,), 1.0 / n, dtype=y.dtype, device=array_api_compat.device(y))
    return sample_weight / xp.sum(sample_weight)


def positive_class_share(xp: Any, y: Any, a: Any, *, owner: str, context: str = "") -> float:
    """The weight share of the samples with ``y > 0`` (labels in {-1, +1}, weights ``a`` summing
    to 1), refused unless both classes have positive weight (the one check of it: the intercept
    at ``w = 0`` is the log-odds of this share)."""
    share = float(xp.sum(a * (y > 0)))
    if not 0.0 < share < 1.0:
        raise ValueError(
            f"{owner} needs samples of both classes with positive weight{context}; "
            f"got a positive-class weight share of {share:g}."
        )
    return share


def _penalty_weights(xp: Any, w: Any, weights: Any) -> Any:
    if weights is None:
        return xp.ones_like(w)
    return xp.asarray(weights, dtype=w.dtype, device=array_api_compat.device(w))


def _dual_scaling(xp: Any, correlations: Any, alpha: float, c: Any, positive: bool) -> float:
    """The largest ``k <= 1`` putting ``k * correlations`` in the set ``|corr_j| <= alpha c_j``."""
    values = correlations if positive else xp.abs(correlations)
    penalized = c > 0
    if not bool(xp.any(penalized)):
        return 1.0
    ratio = float(xp.max(values[penalized] / c[penalized]))
    return 1.0 if ratio <= alpha else alpha / ratio


def _column_mean_squares(xp: Any, X: Any, a: Any) -> Any:
    if _is_scipy_sparse(X):
        return np.asarray(X.multiply(X).T @ a).ravel()
    return (a @ (X * X)) if xp is not np else np.einsum("i,ij,ij->j", a, X, X)


def _spectral_norm_squared(xp: Any, X: Any, a: Any, n_iter: int = 100) -> float:
    """Largest eigenvalue of ``X^T diag(a) X`` by power iteration (a slight over-estimate)."""
    p = X.shape[1]
    v = xp.ones((p,), dtype=a.dtype, device=array_api_compat.device(a)) / math.sqrt(max(p, 1))
    estimate = 0.0
    for _ in range(n_iter):
        u = X.T @ (a * (X @ v))
        norm = float(xp.sqrt(xp.sum(u * u)))
        if norm == 0.0:
            return 0.0
        v = u / norm
        if abs(norm - estimate) <= 1e-6 * norm:
            estimate = norm
            break
        estimate = norm
    return estimate * 1.01


def _free_columns(xp: Any, X: Any, w: Any, c: Any, fit_intercept: bool) -> Any:
    """The columns of the unpenalized part of the model, dense (n, m): ones for the intercept
    (when fitted) and the features with ``c_j = 0``; None when there are none."""
    columns = []
    if fit_intercept:
        columns.append(xp.ones((X.shape[0], 1), dtype=w.dtype, device=array_api_compat.device(w)))
    free = c == 0
    if bool(xp.any(free)):
        index = xp.nonzero(free)[0]
        if _is_scipy_sparse(X):
            columns.append(np.asarray(X[:, np.asarray(index)].toarray(), dtype=w.dtype))
        else:
            columns.append(xp.take(X, index, axis=1))
    return xp.concat(columns, axis=1) if columns else None


class Datafit:
    """Base class: the per-sample loss is defined by subclasses."""

    def value(self, X, y, w, intercept=0.0, sample_weight=None) -> float:
        raise NotImplementedError

    def gradient(self, X, y, w, intercept=0.0, sample_weight=None) -> tuple[Any, float]:
        """(gradient with respect to ``w``, derivative with respect to the intercept)."""
        raise NotImplementedError

    def lipschitz(self, X, sample_weight=None) -> float:
        """A Lipschitz constant of the gradient with respect to ``w`` (power iteration)."""
        xp = _namespace(X, sample_weight)
        a = _normalized_weights(xp, _ones_like_rows(xp, X, sample_weight), sample_weight)
        return self._curvature * _spectral_norm_squared(xp, X, a)

    def lipschitz_coordinates(self, X, sample_weight=None) -> Any:
        """Per coordinate ``j``, the Lipschitz constant of the gradient along ``w_j``."""
        xp = _namespace(X, sample_weight)
        a = _normalized_weights(xp, _ones_like_rows(xp, X, sample_weight), sample_weight)
        return self._curvature * _column_mean_squares(xp, X, a)

    _curvature = 1.0

    def alpha_max(
        self, X, y, *, sample_weight=None, fit_intercept=True, weights=None, positive=False
    ) -> float:
        """The smallest ``alpha`` for which ``w = 0`` (with the best intercept) is optimal.

        ``max_j |grad_j| / c_j`` over the penalized features, where ``grad`` is the gradient of the
        datafit at ``w = 0`` and the intercept that is best for ``w = 0``.
        """
        xp = _namespace(X, y, sample_weight)
        w = xp.zeros((X.shape[1],), dtype=y.dtype, device=array_api_compat.device(y))
        b = self.best_intercept_at_zero(y, sample_weight) if fit_intercept else 0.0
        grad, _ = self.gradient(X, y, w, b, sample_weight)
        c = _penalty_weights(xp, w, weights)
        values = -grad if positive else xp.abs(grad)
        penalized = c > 0
        if not bool(xp.any(penalized)):
            return 0.0
        return max(float(xp.max(values[penalized] / c[penalized])), 0.0)

    def best_intercept_at_zero(self, y, sample_weight=None) -> float:
        raise NotImplementedError

    def duality_gap(
        self, X, y, w, intercept, alpha, *, sample_weight=None, weights=None, positive=False
    ) -> float:
        """Primal minus dual objective, at a dual point built from ``(w, intercept)``."""
        raise NotImplementedError


def _ones_like_rows(xp: Any, X: Any, sample_weight: Any) -> Any:
    """A vector of ones, one per row of ``X``, of the dtype and device the weights will have."""
    if sample_weight is not None:
        return xp.ones_like(sample_weight)
    if _is_scipy_sparse(X):
        return np.ones(X.shape[0], dtype=np.float64)
    return xp.ones((X.shape[0],), dtype=X.dtype, device=array_api_compat.device(X))


class Quadratic(Datafit):
    r"""The Lasso datafit :math:`\frac{1}{2S}\sum_i s_i (y_i - x_i^\top w - b)^2`.

    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]]); y = np.array([1.0, 2.0])
    >>> Quadratic().value(X, y, np.zeros(2))
    1.25
    """

    _curvature = 1.0

    def _residual(self, X, y, w, intercept):
        return y - X @ w - intercept

    def value(self, X, y, w, intercept=0.0, sample_weight=None) -> float:
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        r = self._residual(X, y, w, intercept)
        return 0.5 * float(xp.sum(a * r * r))

    def gradient(self, X, y, w, intercept=0.0, sample_weight=None):
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        ar = a * self._residual(X, y, w, intercept)
        return -(X.T @ ar), -float(xp.sum(ar))

    def best_intercept_at_zero(self, y, sample_weight=None) -> float:
        xp = _namespace(y, sample_weight)
        return float(xp.sum(_normalized_weights(xp, y, sample_weight) * y))

    def duality_gap(
        self,
        X,
        y,
        w,
        intercept,
        alpha,
        *,
        sample_weight=None,
        weights=None,
        positive=False,
        fit_intercept=True,
    ) -> float:
        r"""Duality gap of the (weighted) Lasso at ``(w, intercept)``.

        With :math:`a_i = s_i / S` and residual :math:`r = y - Xw - b`, the dual of
        :math:`\frac12\sum_i a_i r_i^2 + \alpha\sum_j c_j|w_j|` over ``(w, b)`` is

        .. math:: D(\theta) = \tfrac12\textstyle\sum_i a_i (y_i^2 - (y_i - \theta_i)^2)

        subject to :math:`|\sum_i a_i \theta_i x_{ij}| \le \alpha c_j` and, with an intercept,
        :math:`\sum_i a_i \theta_i = 0`. The dual point is the residual, centered (weighted) when
        there is an intercept and scaled into the constraint set, so the gap is a certificate for
        every ``(w, b)``: the distance of the objective to its minimum is at most the gap.
        Unpenalized features (``c_j = 0``) have the equality constraints
        :math:`\sum_i a_i \theta_i x_{ij} = 0`, as the intercept has: the residual is projected
        (weighted least squares) onto the complement of their columns and the column of ones,
        which is the residual of the best unpenalized part for the penalized one.
        """
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        r = self._residual(X, y, w, intercept)
        primal = 0.5 * float(xp.sum(a * r * r))
        c = _penalty_weights(xp, w, weights)
        primal += alpha * float(xp.sum(c * xp.abs(w)))
        free = _free_columns(xp, X, w, c, fit_intercept)
        theta = r
        if free is not None:
            weighted = a[:, None] * free
            coef = xp.linalg.pinv(free.T @ weighted) @ (weighted.T @ r)
            theta = r - free @ coef
        k = _dual_scaling(xp, X.T @ (a * theta), alpha, c, positive)
        theta = k * theta
        dual = 0.5 * float(xp.sum(a * (y * y - (y - theta) ** 2)))
        return primal - dual


def _binary_entropy_term(xp: Any, u: Any) -> Any:
    """``u log u + (1 - u) log(1 - u)`` with ``0 log 0 = 0``."""
    safe = xp.clip(u, 1e-300, 1.0)
    safe_c = xp.clip(1 - u, 1e-300, 1.0)
    return xp.where(u > 0, u * xp.log(safe), 0.0) + xp.where(u < 1, (1 - u) * xp.log(safe_c), 0.0)


def _best_free_scores(xp: Any, y: Any, a: Any, scores: Any, free: Any) -> Any:
    """``scores`` moved along the columns ``free`` (intercept, unpenalized features) to the
    minimum of the logistic datafit for the rest of the model fixed (damped Newton)."""
    value = float(xp.sum(a * log1p_exp(xp, -y * scores)))
    for _ in range(100):
        p = sigmoid(xp, -y * scores)
        grad = free.T @ (-(a * y * p))
        hess = free.T @ ((a * p * (1 - p))[:, None] * free)
        move = free @ (-(xp.linalg.pinv(hess) @ grad))
        size = float(xp.max(xp.abs(move)))
        if size <= 1e-13 * (1.0 + float(xp.max(xp.abs(scores)))):
            return scores + move  # (a step this small is below what the datafit can resolve)
        step = 1.0
        while step > 1e-12:  # halve until the datafit goes down (to its rounding)
            trial = scores + step * move
            new = float(xp.sum(a * log1p_exp(xp, -y * trial)))
            if new <= value + 1e-14 * abs(value):
                break
            step /= 2
        else:
            return scores
        scores, value = trial, new
    return scores


class Logistic(Datafit):
    r"""The logistic datafit :math:`\frac1S\sum_i s_i\log(1+\exp(-y_i(x_i^\top w + b)))`, y = ±1.

    >>> import numpy as np
    >>> round(Logistic().value(np.eye(2), np.array([1.0, -1.0]), np.zeros(2)), 6)  # log(2)
    0.693147
    """

    _curvature = 0.25

    def value(self, X, y, w, intercept=0.0, sample_weight=None) -> float:
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        return float(xp.sum(a * log1p_exp(xp, -y * (X @ w + intercept))))

    def gradient(self, X, y, w, intercept=0.0, sample_weight=None):
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        d = -a * y * sigmoid(xp, -y * (X @ w + intercept))
        return X.T @ d, float(xp.sum(d))

    def best_intercept_at_zero(self, y, sample_weight=None) -> float:
        xp = _namespace(y, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        p = positive_class_share(xp, y, a, owner="The logistic datafit")
        return math.log(p / (1 - p))

    def duality_gap(
        self,
        X,
        y,
        w,
        intercept,
        alpha,
        *,
        sample_weight=None,
        weights=None,
        positive=False,
        fit_intercept=True,
    ) -> float:
        r"""Duality gap of the L1 logistic regression at ``(w, intercept)``.

        With :math:`a_i = s_i / S` and :math:`f(t) = \log(1 + e^{-t})`, whose conjugate gives
        :math:`f(t) = \max_{u\in[0,1]} -ut - u\log u - (1-u)\log(1-u)`, the dual is

        .. math:: D(u) = -\textstyle\sum_i a_i\,(u_i\log u_i + (1-u_i)\log(1-u_i))

        subject to :math:`|\sum_i a_i u_i y_i x_{ij}| \le \alpha c_j`, an equality
        (:math:`= 0`) for the unpenalized features (``c_j = 0``) and, with an intercept,
        :math:`\sum_i a_i u_i y_i = 0`. The dual point is :math:`u_i = \sigma(-y_i z_i)` scaled
        into the constraint set, with the margins ``z`` of the best intercept and unpenalized
        coefficients for the penalized ones (which meet the equality constraints), so the gap
        bounds the distance to the optimum for any ``(w, intercept)``.
        """
        xp = _namespace(X, y, w, sample_weight)
        a = _normalized_weights(xp, y, sample_weight)
        scores = X @ w + intercept
        c = _penalty_weights(xp, w, weights)
        primal = float(xp.sum(a * log1p_exp(xp, -y * scores)))
        primal += alpha * float(xp.sum(c * xp.abs(w)))
        free = _free_columns(xp, X, w, c, fit_intercept)
        if free is not None:
            # The primal stays at the given (w, intercept): it can only be higher.
            scores = _best_free_scores(xp, y, a, scores, free)
        u = sigmoid(xp, -y * scores)
        k = _dual_scaling(xp, X.T @ (a * y * u), alpha, c, positive)
        dual = -float(xp.sum(a * _binary_entropy_term(xp, k * u)))
        return primal - dual
