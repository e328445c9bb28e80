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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat

from ..datafits import Datafit, Logistic, Quadratic, _namespace, _normalized_weights
from ..prox import soft_threshold

__all__ = ["FistaResult", "fista"]


@dataclass
class FistaResult:
    coef: Any
    intercept: float
    gap: float
    n_iter: int
    converged: bool


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
) -> FistaResult:
    """Minimise ``datafit(X, y; w, b) + alpha * sum_j c_j |w_j|`` by FISTA.

    ``y`` is a float array (in {-1, 1} for the logistic datafit); ``weights`` (the ``c_j``) and
    ``sample_weight`` belong to ``y``'s library. Stops when the duality gap is at most ``tol``
    times the objective at ``w = 0``; else warns (``ConvergenceWarning``) after ``max_iter``.

    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 0.0, 1.0])
    >>> result = fista(X, y, 0.01, fit_intercept=False, tol=1e-10)
    >>> np.round(result.coef, 3)
    array([0.985, 0.   ])
    """
    from sklearn.exceptions import ConvergenceWarning

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
    reference = loss.value(X, y, w * 0, b, sample_weight)
    tol_abs = tol * reference
    if lipschitz == 0.0:
        return FistaResult(w, b, 0.0, 0, True)
    step = 1.0 / lipschitz
    thresholds = (alpha * step) * c
    v, vb = w, b
    t = 1.0
    gap = math.inf
    del a  # the datafit normalises the weights itself
    for iteration in range(1, max_iter + 1):
        grad, grad_b = loss.gradient(X, y, v, vb, sample_weight)
        w_next = soft_threshold(v - step * grad, thresholds)
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
            if gap <= tol_abs:
                return FistaResult(w, float(b), gap, iteration, True)
    warnings.warn(
        f"FISTA did not converge in max_iter={max_iter} iterations: duality gap {gap:.3e}, "
        f"tolerance {tol_abs:.3e}. Increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=2,
    )
    return FistaResult(w, float(b), gap, max_iter, False)
