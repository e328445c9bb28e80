r"""FISTA (accelerated proximal gradient) written once on the array API.

It runs on whatever library holds ``y`` (NumPy, torch on CPU or GPU, CuPy, ...) with ``X`` of the
same library, or a SciPy sparse ``X`` with NumPy ``y``. One iteration costs one ``X @ v`` and
one ``X.T @ r``; there is no compiled code, so it is the solver for accelerators and for data
the coordinate-descent loops cannot read (the estimators use coordinate descent).

.. math::

    w_{k+1} = \operatorname{prox}_{\alpha c \|\cdot\|_1 / L}\big(v_k - \nabla f(v_k) / L\big),
    \qquad v_{k+1} = w_{k+1} + \tfrac{t_k - 1}{t_{k+1}} (w_{k+1} - w_k)

with the momentum reset whenever it points uphill (adaptive restart, O'Donoghue and Candès).
The intercept is an unpenalized coordinate of the same iteration. It stops on the duality gap
of :mod:`l1reg.datafits`, measured every ``check_every`` iterations, like the other solver.

With a penalty object ``P`` (:mod:`l1reg.penalties`) the penalty term is :math:`\alpha P(w)`,
the step is ``P.prox(v - grad / L, alpha / L)``, and the certificate is the KKT violation
``max_j dist(-grad_j, alpha dP(w)_j)`` (``P.subdiff_distance``; the intercept's derivative
too): the methods of :data:`REQUIRED_PENALTY_METHODS`, checked before any work.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat

from .._validation import invalid_parameter
from ..datafits import Datafit, Logistic, Quadratic, _namespace, _normalized_weights
from ..penalties import Penalty
from ..prox import soft_threshold

__all__ = ["REQUIRED_PENALTY_METHODS", "FistaResult", "fista"]

#: What :func:`fista` calls on a penalty object: ``prox(w, step)`` for its step and
#: ``subdiff_distance(w, grad)`` for its stopping test.
REQUIRED_PENALTY_METHODS = ("prox", "subdiff_distance")


@dataclass
class FistaResult:
    coef: Any
    intercept: float
    gap: float  # the certificate's value, in the units of the objective (or of its gradient)
    n_iter: int
    converged: bool
    certificate: str = "duality gap"  # or "KKT violation", with a penalty object


def _check_penalty(penalty: Any) -> None:
    """TypeError naming the first method of ``REQUIRED_PENALTY_METHODS`` ``penalty`` lacks.

    A method still :class:`~l1reg.penalties.Penalty`'s own (which raises NotImplementedError)
    counts as missing.
    """
    for name in REQUIRED_PENALTY_METHODS:
        method = getattr(type(penalty), name, None)
        if not callable(method) or method is getattr(Penalty, name):
            raise TypeError(
                invalid_parameter(
                    "penalty",
                    "fista",
                    f"None or a penalty with the methods {', '.join(REQUIRED_PENALTY_METHODS)}",
                    penalty,
                )
                + f" It has no {name!r} method of its own."
            )


def _kkt_violation(loss, penalty, X, y, w, b, alpha, sample_weight, fit_intercept) -> float:
    """``max_j dist(-grad_j, alpha dP(w_j))``, and ``|d/db|`` of the datafit with an intercept."""
    xp = _namespace(X, y, sample_weight)
    grad, grad_b = loss.gradient(X, y, w, b, sample_weight)
    # dist(-g, alpha dP) = alpha dist(-g / alpha, dP): the penalty's own lambda_reg stays in
    distance = alpha * penalty.subdiff_distance(w, grad / alpha) if alpha > 0 else xp.abs(grad)
    worst = float(xp.max(distance)) if w.shape[0] else 0.0
    return max(worst, abs(grad_b)) if fit_intercept else worst


def _datafit(datafit: str | Datafit) -> Datafit:
    if isinstance(datafit, Datafit):
        return datafit
    if datafit == "quadratic":
        return Quadratic()
    if datafit == "logistic":
        return Logistic()
    raise ValueError(
        "The 'datafit' parameter of fista must be 'quadratic', 'logistic' or a Datafit. "
        f"Got {datafit!r} instead."
    )


def fista(
    X: Any,
    y: Any,
    alpha: float,
    *,
    datafit: str | Datafit = "quadratic",
    sample_weight: Any = None,
    weights: Any = None,
    fit_intercept: bool = True,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = 10_000,
    coef_init: Any = None,
    check_every: int = 10,
    penalty: Penalty | None = None,
) -> FistaResult:
    """Minimise ``datafit(X, y; w, b) + alpha * sum_j c_j |w_j|`` by FISTA.

    ``y`` is a float array (in {-1, 1} for the logistic datafit); ``weights`` (the ``c_j``) and
    ``sample_weight`` belong to ``y``'s library. Stops when the duality gap is at most ``tol``
    times the objective at ``w = 0``; else warns (``ConvergenceWarning``) after ``max_iter``.

    ``penalty``: a penalty object ``P`` instead of the weighted L1 (``weights`` and
    ``positive`` then stay unset); the objective is ``datafit + alpha * P(w)`` (``L1(1.0)`` is
    the default penalty), and the fit stops when the KKT violation is at most ``tol`` times the
    largest derivative of the datafit at ``w = 0`` (intercept fitted).

    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 0.0, 1.0])
    >>> result = fista(X, y, 0.01, fit_intercept=False, tol=1e-10)
    >>> np.round(result.coef, 3)
    array([0.985, 0.   ])
    """
    from sklearn.exceptions import ConvergenceWarning

    if penalty is not None:
        _check_penalty(penalty)
        # the penalty object carries the weights, and its subdifferential knows no bound
        if weights is not None:
            raise ValueError(
                invalid_parameter("weights", "fista", "None when a penalty is given", weights)
            )
        if positive:
            raise ValueError(
                invalid_parameter("positive", "fista", "False when a penalty is given", positive)
            )
    loss = _datafit(datafit)
    xp = _namespace(X, y, sample_weight)
    device = array_api_compat.device(y)
    n_features = X.shape[1]
    a = _normalized_weights(xp, y, sample_weight)
    if weights is None:
        c = xp.ones((n_features,), dtype=y.dtype, device=device)
    else:
        c = xp.asarray(weights, dtype=y.dtype, device=device)
    lipschitz = loss.lipschitz(X, sample_weight)
    if fit_intercept:
        lipschitz += loss._curvature  # the intercept's column of ones has a-norm 1
    w = xp.zeros((n_features,), dtype=y.dtype, device=device)
    if coef_init is not None:
        w = xp.asarray(coef_init, dtype=y.dtype, device=device)
    b = loss.best_intercept_at_zero(y, sample_weight) if fit_intercept else 0.0
    if penalty is None:
        certificate = "duality gap"
        reference = loss.value(X, y, w * 0, b, sample_weight)
    else:
        certificate = "KKT violation"
        grad_at_zero, _ = loss.gradient(X, y, w * 0, b, sample_weight)
        reference = float(xp.max(xp.abs(grad_at_zero))) if n_features else 0.0
    tol_abs = tol * reference
    if lipschitz == 0.0:
        return FistaResult(w, b, 0.0, 0, True, certificate)
    step = 1.0 / lipschitz
    thresholds = (alpha * step) * c
    v, vb = w, b
    t = 1.0
    gap = math.inf
    del a  # the datafit normalises the weights itself
    for iteration in range(1, max_iter + 1):
        grad, grad_b = loss.gradient(X, y, v, vb, sample_weight)
        if penalty is None:
            w_next = soft_threshold(v - step * grad, thresholds)
        else:
            w_next = penalty.prox(v - step * grad, alpha * step)
        if positive:
            w_next = xp.clip(w_next, 0, None)
        b_next = vb - step * grad_b if fit_intercept else 0.0
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        # Restart when the momentum points uphill: <v - w_next, w_next - w> > 0.
        uphill = float(xp.sum((v - w_next) * (w_next - w))) + (vb - b_next) * (b_next - b)
        if uphill > 0:
            t_next = 1.0
            v, vb = w_next, b_next
        else:
            beta = (t - 1) / t_next
            v = w_next + beta * (w_next - w)
            vb = b_next + beta * (b_next - b)
        w, b, t = w_next, b_next, t_next
        if iteration % check_every == 0 or iteration == max_iter:
            if penalty is None:
                gap = loss.duality_gap(
                    X,
                    y,
                    w,
                    b,
                    alpha,
                    sample_weight=sample_weight,
                    weights=c,
                    positive=positive,
                    fit_intercept=fit_intercept,
                )
            else:
                gap = _kkt_violation(loss, penalty, X, y, w, b, alpha, sample_weight, fit_intercept)
            if gap <= tol_abs:
                return FistaResult(w, float(b), gap, iteration, True, certificate)
    warnings.warn(
        f"FISTA did not converge in max_iter={max_iter} iterations: {certificate} {gap:.3e}, "
        f"tolerance {tol_abs:.3e}. Increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=2,
    )
    return FistaResult(w, float(b), gap, max_iter, False, certificate)
