r"""The Lasso: ``lasso_path`` does the work, ``Lasso`` and ``LassoCV`` wrap it.

Objective (scikit-learn's scaling, sample weights ``s_i`` normalised to sum to 1):

.. math::

    \min_{w, b}\ \frac{1}{2\sum_i s_i}\sum_i s_i (y_i - x_i^\top w - b)^2 + \alpha \sum_j c_j |w_j|

with ``c_j = 1`` unless per-feature ``weights`` are given (``c_j = 0``: feature ``j`` is not
penalized). Solved by working-set coordinate descent (:mod:`l1reg.solvers`), stopped when the
duality gap is below ``tol`` times the objective at ``w = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import (
    Boolean,
    Checked,
    NoneValue,
    StrOption,
    declare_params,
    invalid_parameter,
)
from ..solvers import QuadraticProblem, SharedGram, quadratic_problem, solve, uses_gram
from ._base import (
    DEFAULT_MAX_ITER,
    alpha_grid,
    linear_predict,
    solve_path,
    warn_not_converged,
    warn_path_failures,
)
from ._cv import CrossValidatedPath, CVData
from ._data import (
    FIT_DATA,
    check_penalty_weights,
    check_sample_weight,
    checked_data,
    checked_X,
    fit_method,
    predict_method,
)
from ._params import CV_CONSTRAINTS, FIT_CONSTRAINTS, PATH_CONSTRAINTS, check_parameters

__all__ = ["Lasso", "LassoCV", "LassoPath", "lasso_path"]

_X_CHECKS = {
    "accept_sparse": ("csc", "csr"),
    "dtype": (np.float64, np.float32),
    "y_numeric": True,
    "regression": True,
}
_PREDICT_CHECKS = {"accept_sparse": ("csr", "csc"), "dtype": (np.float64, np.float32)}
_PRECOMPUTE = [Boolean(), StrOption("auto")]


def _bad_coef_init(coef_init: Any) -> list:
    return ["abc", [1.0], [np.nan, 0.0, 0.0], [np.inf, 0.0, 0.0]]


class LassoPath(NamedTuple):
    """What :func:`lasso_path` returns."""

    alphas: np.ndarray  # (n_alphas,), decreasing
    coefs: np.ndarray  # (n_features, n_alphas)
    intercepts: np.ndarray  # (n_alphas,)
    dual_gaps: np.ndarray  # (n_alphas,), in objective units
    n_iter: np.ndarray  # (n_alphas,), epochs of coordinate descent


@declare_params(
    "lasso_path",
    **FIT_DATA,
    **PATH_CONSTRAINTS,
    coef_init=[NoneValue(), Checked("an array-like of n_features finite numbers", _bad_coef_init)],
    precompute=_PRECOMPUTE,
)
def lasso_path(
    X: Any,
    y: Any,
    *,
    alphas: int | Any = 100,
    eps: float = 1e-3,
    fit_intercept: bool = True,
    sample_weight: Any = None,
    weights: Any = None,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = DEFAULT_MAX_ITER,
    coef_init: Any = None,
    precompute: bool | str = "auto",
) -> LassoPath:
    """Lasso solutions along a decreasing grid of ``alpha``, warm-started one from the other.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_samples, n_features)
        Dense (C or F order, float32 or float64) or sparse (CSR or CSC, never densified).
    y : array-like of shape (n_samples,)
    alphas : int or array-like, default=100
        An int gives that many values from ``alpha_max`` (the smallest alpha whose solution is
        all zeros) down to ``eps * alpha_max``, geometrically; an array is used as given, sorted
        decreasing.
    eps : float, default=1e-3
    fit_intercept : bool, default=True
        Unlike scikit-learn's ``lasso_path``, which expects centered data, the intercept is
        fitted by default (as in the estimators).
    sample_weight, weights, positive, tol, max_iter : as in :class:`Lasso`.
    coef_init : array of shape (n_features,), optional
        Starting point of the first fit.
    precompute : "auto", True or False, default="auto"
        Solve from the Gram matrix ``X^T X`` (a coordinate step then costs O(n_features), not
        O(n_samples)); "auto" does so for dense ``X`` with more samples than features.

    Returns
    -------
    LassoPath
        A named tuple ``(alphas, coefs, intercepts, dual_gaps, n_iter)``; ``coefs`` is
        (n_features, n_alphas).

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg.linear_model import lasso_path
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]]); y = X @ [1.0, 0.0]
    >>> path = lasso_path(X, y, alphas=3)
    >>> path.coefs.shape, bool(np.all(path.coefs[:, 0] == 0))
    ((2, 3), True)
    """
    owner = "lasso_path"
    X, y = checked_data(X, y, owner, **_X_CHECKS)
    sw = check_sample_weight(sample_weight, X.shape[0], owner)
    c = check_penalty_weights(weights, X.shape[1], owner)
    if coef_init is not None:
        coef_init = _checked_coef_init(coef_init, X.shape[1], owner)
    problem = quadratic_problem(
        X, y, sample_weight=sw, fit_intercept=fit_intercept, precompute=precompute
    )
    grid = alpha_grid(problem.alpha_max(c, positive), alphas, eps)
    path, failures = solve_path(
        problem,
        grid,
        LassoPath,
        weights=c,
        positive=positive,
        tol=tol,
        max_iter=max_iter,
        coef_init=coef_init,
    )
    warn_path_failures(owner, failures, max_iter)
    return path


def _checked_coef_init(coef_init: Any, n_features: int, owner: str) -> np.ndarray:
    expected = f"None or an array-like of {n_features} finite numbers"
    try:
        start = np.asarray(coef_init, dtype=np.float64)
    except (TypeError, ValueError):
        start = None
    if start is None or start.shape != (n_features,) or not np.all(np.isfinite(start)):
        raise ValueError(invalid_parameter("coef_init", owner, expected, coef_init))
    return start


def _checked_input(estimator: Any, X: Any, y: Any, sample_weight: Any):
    """Parameters and data of a Lasso estimator checked, before any work: (X, y as float64,
    sample weights, penalty weights)."""
    check_parameters(estimator)
    owner = type(estimator).__name__
    X, y = checked_data(X, y, owner, estimator=estimator, **_X_CHECKS)
    sw = check_sample_weight(sample_weight, X.shape[0], owner)
    c = check_penalty_weights(estimator.weights, X.shape[1], owner)
    return X, np.asarray(y, dtype=np.float64), sw, c


def lasso_problems(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, *, fit_intercept: bool, precompute
) -> Callable[[Any], list]:
    """``problems(rows)``: the Lasso problem on ``rows`` (None: all rows), as a list of one.

    The template of the estimators that fit many subsets of one data set (``LassoCV``'s folds,
    ``StabilitySelection``'s half-samples). From a Gram matrix when there are more samples than
    features: computed once, each subset's is derived from it (SharedGram) instead of being
    recomputed.
    """
    if uses_gram(X, precompute):
        shared = SharedGram(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)
        return lambda rows: [shared.problem(rows)]

    def problems(rows):
        if rows is None:
            return [
                QuadraticProblem(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)
            ]
        return [
            QuadraticProblem(
                X[rows],
                y[rows],
                sample_weight=None if sample_weight is None else sample_weight[rows],
                fit_intercept=fit_intercept,
            )
        ]

    return problems


class _LassoBase(RegressorMixin, BaseEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @predict_method
    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = checked_X(self, X, f"{type(self).__name__}.predict", **_PREDICT_CHECKS)
        return linear_predict(X, self.coef_, self.intercept_)


class Lasso(_LassoBase):
    r"""Linear regression with an L1 penalty: ``1/(2n) ||y - Xw - b||^2 + alpha * ||w||_1``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the penalty. ``alpha >= alpha_max = ||X_c^T y_c||_inf / n`` (centered data)
        gives ``coef_ == 0``.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Maximum number of epochs of coordinate descent (passes over the working set).
    tol : float, default=1e-4
        Stop when the duality gap is at most ``tol`` times the objective at ``w = 0``;
        otherwise warn (``ConvergenceWarning``) with the gap reached.
    warm_start : bool, default=False
        Start from the previous ``coef_``.
    positive : bool, default=False
        Constrain the coefficients to be >= 0.
    weights : array-like of shape (n_features,), default=None
        Per-feature penalty weights ``c_j >= 0`` (penalty ``alpha * sum_j c_j |w_j|``); 0 leaves
        a feature unpenalized.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,), dtype of X
    intercept_ : float
    n_iter_ : int
        Epochs of coordinate descent run.
    dual_gap_ : float
        Duality gap at the solution, in objective units (a bound on its distance to the optimum).

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg.linear_model import Lasso
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]); y = 2 * X[:, 0] + 1
    >>> model = Lasso(alpha=0.1).fit(X, y)
    >>> np.round(model.coef_, 3), round(model.intercept_, 3)
    (array([1.92, 0.  ]), 1.12)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = FIT_CONSTRAINTS

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = DEFAULT_MAX_ITER,
        tol: float = 1e-4,
        warm_start: bool = False,
        positive: bool = False,
        weights: Any = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.weights = weights

    @fit_method
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Lasso:
        """Fit on ``X`` (dense or sparse) and ``y``; ``sample_weight`` as repeated rows."""
        X, y, sw, c = _checked_input(self, X, y, sample_weight)
        owner = type(self).__name__
        coef_init = None
        if self.warm_start and getattr(self, "coef_", None) is not None:
            if self.coef_.shape == (X.shape[1],):
                coef_init = np.asarray(self.coef_, dtype=np.float64)
        problem = QuadraticProblem(X, y, sample_weight=sw, fit_intercept=self.fit_intercept)
        state = problem.init_state(coef_init)
        result = solve(
            problem,
            float(self.alpha),
            state,
            weights=c,
            positive=self.positive,
            tol=self.tol,
            max_iter=self.max_iter,
            # A refit from this estimator's own solution: if its gap meets tol, it is the answer
            # (a warm refit on the same data is a no-op, as scikit-learn's).
            trust_start=coef_init is not None,
        )
        if not result.converged:
            warn_not_converged(
                owner, [float(self.alpha)], [result.gap], [result.tol_abs], self.max_iter
            )
        self.coef_ = result.coef.astype(X.dtype)
        self.intercept_ = float(result.intercept)
        self.n_iter_ = int(result.n_iter)
        self.dual_gap_ = float(result.gap)
        return self


class LassoCV(CrossValidatedPath, _LassoBase):
    """Lasso with ``alpha`` chosen by K-fold cross-validation over a path of alphas.

    Each fold's path is warm-started along the grid and the folds run in parallel threads
    (``n_jobs``). The path on all the data is computed too (as glmnet's ``cv.glmnet``), and the
    coefficients at ``alpha_`` are read from it: that fit is warm-started from the previous alpha
    and solved to the same tolerance, so it is the refit on all data at ``alpha_``.

    Parameters
    ----------
    alphas : int or array-like, default=100
        An int gives a geometric grid of that many values from ``alpha_max`` (computed on all the
        data) down to ``eps * alpha_max``, as scikit-learn 1.9; an array is used as given.
    eps : float, default=1e-3
    cv : int, cross-validation splitter or iterable of (train, test) splits, default=5
    fit_intercept, positive, weights, tol, max_iter : as in :class:`Lasso`.
    n_jobs : int, default=None
        Threads for the folds (None: 1; -1: all cores).
    callback : callable, default=None
        Called in this process as ``callback(n_done, n_total)`` each time a fold's path, or the
        path on all data, is done (``n_total = n_folds + 1``): a progress bar's hook.
    precompute : "auto", True or False, default="auto"
        As in :func:`lasso_path`: solve from the Gram matrix (dense ``X``, more samples than
        features, for "auto").

    Attributes
    ----------
    alphas_ : ndarray of shape (n_alphas,), decreasing
    mse_path_ : ndarray of shape (n_alphas, n_folds)
        Held-out mean squared error (weighted by ``sample_weight``) of each fold at each alpha.
    alpha_ : float
        The alpha of least mean CV error.
    alpha_1se_ : float
        The largest alpha whose mean CV error is within one standard error of the least
        (glmnet's ``lambda.1se``); the standard error is the standard deviation of the errors of
        the folds at ``alpha_`` over the square root of the number of folds.
    coef_, intercept_, dual_gap_, n_iter_ : the fit on all data at ``alpha_``.
    coef_path_ : ndarray of shape (n_features, n_alphas)
    intercept_path_ : ndarray of shape (n_alphas,)
        The path on all the data over ``alphas_``.
    selection_frequency_path_ : ndarray of shape (n_features, n_alphas)
        The fraction of the folds whose fit at each alpha keeps each feature (a nonzero
        coefficient): how stable the selection is across folds.
    selection_frequency_ : ndarray of shape (n_features,)
        Its column at ``alpha_``.
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        **CV_CONSTRAINTS,
        "precompute": _PRECOMPUTE,
    }
    _path_type = LassoPath
    _errors_name = "mse_path_"
    _one_target = True

    def __init__(
        self,
        alphas: int | Any = 100,
        *,
        eps: float = 1e-3,
        cv: Any = 5,
        fit_intercept: bool = True,
        positive: bool = False,
        weights: Any = None,
        tol: float = 1e-4,
        max_iter: int = DEFAULT_MAX_ITER,
        n_jobs: int | None = None,
        callback: Callable[[int, int], Any] | None = None,
        precompute: bool | str = "auto",
    ) -> None:
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.positive = positive
        self.weights = weights
        self.tol = tol
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.callback = callback
        self.precompute = precompute

    def _checked_input(self, X: Any, y: Any, sample_weight: Any) -> CVData:
        X, y, sw, c = _checked_input(self, X, y, sample_weight)
        return CVData(X, y, [y], sw, c, None)

    def _problems(self, data: CVData) -> Callable[[Any], list]:
        return lasso_problems(
            data.X,
            data.y,
            data.sample_weight,
            fit_intercept=self.fit_intercept,
            precompute=self.precompute,
        )

    @staticmethod
    def _held_out_error(target: np.ndarray, scores: np.ndarray, weights) -> np.ndarray:
        return np.average((target[:, None] - scores) ** 2, axis=0, weights=weights)
