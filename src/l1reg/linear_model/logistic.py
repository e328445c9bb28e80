r"""L1-penalized logistic regression: ``l1_logistic_path``, ``L1LogisticRegression(CV)``.

Objective for a binary problem (labels mapped to ``y_i`` in {-1, +1}, sample weights ``s_i``):

.. math::

    \min_{w, b}\ \frac{1}{\sum_i s_i}\sum_i s_i \log\big(1 + e^{-y_i (x_i^\top w + b)}\big)
    + \alpha \sum_j c_j |w_j|

scikit-learn's ``LogisticRegression(penalty='l1', C=C)`` solves the same problem for
``C = 1 / (n alpha)``. More than two classes are fitted one-vs-rest: one binary problem per class
(that class against all others), each with the same ``alpha``; ``predict_proba`` normalises the
per-class probabilities to sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._numerics import log1p_exp, sigmoid
from .._validation import declare_params
from ..datafits import positive_class_share
from ..solvers import LogisticProblem, solve
from ._base import DEFAULT_MAX_ITER, alpha_grid, linear_predict, solve_path, warn_path_failures
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

__all__ = ["L1LogisticRegression", "L1LogisticRegressionCV", "LogisticPath", "l1_logistic_path"]

_X_CHECKS = {"accept_sparse": ("csc", "csr"), "dtype": (np.float64, np.float32)}


class LogisticPath(NamedTuple):
    """What :func:`l1_logistic_path` returns (one binary problem)."""

    alphas: np.ndarray  # (n_alphas,), decreasing
    coefs: np.ndarray  # (n_features, n_alphas)
    intercepts: np.ndarray  # (n_alphas,)
    dual_gaps: np.ndarray  # (n_alphas,)
    n_iter: np.ndarray  # (n_alphas,)


def _binary_targets(y: np.ndarray, classes: np.ndarray) -> list[np.ndarray]:
    """One {-1, +1} vector per binary problem: one for two classes, one per class for more."""
    if classes.shape[0] == 2:
        return [np.where(y == classes[1], 1.0, -1.0)]
    return [np.where(y == label, 1.0, -1.0) for label in classes]


def _check_classes(y: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    check_classification_targets(y)
    classes = np.unique(y)
    if classes.shape[0] < 2:
        raise ValueError(
            f"{owner} needs samples of at least two classes in y; got one class: {classes[0]!r}."
        )
    return y, classes


@declare_params("l1_logistic_path", **FIT_DATA, **PATH_CONSTRAINTS)
def l1_logistic_path(
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
) -> LogisticPath:
    """Binary L1 logistic regression along a decreasing grid of ``alpha``, warm-started.

    ``y`` has exactly two classes; the larger label (in sorted order) is the positive class.
    An int ``alphas`` gives a geometric grid from ``alpha_max`` down to ``eps * alpha_max``.
    Returns ``LogisticPath(alphas, coefs (n_features, n_alphas), intercepts, dual_gaps, n_iter)``.
    """
    owner = "l1_logistic_path"
    X, y = checked_data(X, y, owner, **_X_CHECKS)
    _, classes = _check_classes(y, owner)
    if classes.shape[0] != 2:
        raise ValueError(
            f"The 'y' parameter of {owner} must hold two classes. Got {classes.shape[0]} classes."
        )
    sw = check_sample_weight(sample_weight, X.shape[0], owner)
    c = check_penalty_weights(weights, X.shape[1], owner)
    (target,) = _binary_targets(y, classes)
    problem = LogisticProblem(X, target, sample_weight=sw, fit_intercept=fit_intercept, owner=owner)
    grid = alpha_grid(problem.alpha_max(c, positive), alphas, eps)
    path, failures = solve_path(
        problem,
        grid,
        LogisticPath,
        weights=c,
        positive=positive,
        tol=tol,
        max_iter=max_iter,
        intercept_dtype=np.float64,
    )
    warn_path_failures(owner, failures, max_iter)
    return path


class _LogisticBase(ClassifierMixin, BaseEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @predict_method
    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``: shape (n_samples,) for two classes, else (n, n_classes)."""
        check_is_fitted(self)
        X = checked_X(self, X, f"{type(self).__name__}.decision_function", **_X_CHECKS)
        scores = linear_predict(X, self.coef_, self.intercept_)
        return scores.ravel() if scores.shape[1] == 1 else scores

    @predict_method
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (one-vs-rest sigmoids normalised to sum to 1 for > 2 classes)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = sigmoid(np, scores)
            return np.column_stack([1 - positive, positive])
        probabilities = sigmoid(np, scores)
        total = probabilities.sum(axis=1, keepdims=True)
        return probabilities / np.where(total > 0, total, 1)

    @predict_method
    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    @predict_method
    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


def _checked_input(estimator, X: Any, y: Any, sample_weight: Any):
    """Parameters and data checked, before any work: (X, y, classes, one-vs-rest targets, sample
    weights, penalty weights)."""
    check_parameters(estimator)
    owner = type(estimator).__name__
    X, y = checked_data(X, y, owner, estimator=estimator, **_X_CHECKS)
    y, classes = _check_classes(y, owner)
    sw = check_sample_weight(sample_weight, X.shape[0], owner)
    c = check_penalty_weights(estimator.weights, X.shape[1], owner)
    return X, y, classes, _binary_targets(y, classes), sw, c


class L1LogisticRegression(_LogisticBase):
    r"""Logistic regression with an L1 penalty, binary or one-vs-rest.

    Minimises ``1/n sum_i log(1 + exp(-y_i (x_i.w + b))) + alpha * ||w||_1`` (sample weights as
    repeated rows); scikit-learn's ``LogisticRegression(penalty='l1', C=1/(n*alpha))`` has the
    same solution. With more than two classes, one such problem per class (one-vs-rest).

    Parameters
    ----------
    alpha : float, default=0.01
    fit_intercept, max_iter, tol, warm_start, positive, weights : as in :class:`Lasso`
        (``tol`` times the objective at ``w = 0`` with the best intercept bounds the gap).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,) or (n_classes,), epochs per binary problem
    dual_gap_ : ndarray of shape (1,) or (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg.linear_model import L1LogisticRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]); y = [0, 0, 1, 1]
    >>> L1LogisticRegression(alpha=0.05).fit(X, y).predict(X)
    array([0, 0, 1, 1])
    """

    _parameter_constraints: ClassVar[dict[str, list]] = FIT_CONSTRAINTS

    def __init__(
        self,
        alpha: float = 0.01,
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
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> L1LogisticRegression:
        X, y, classes, targets, sw, c = _checked_input(self, X, y, sample_weight)
        owner = type(self).__name__
        warm = (
            self.warm_start
            and getattr(self, "coef_", None) is not None
            and self.coef_.shape == (len(targets), X.shape[1])
        )
        coefs = np.zeros((len(targets), X.shape[1]))
        intercepts = np.zeros(len(targets))
        n_iter = np.zeros(len(targets), dtype=np.int64)
        gaps = np.zeros(len(targets))
        failures = []
        X_solver = _column_major(X)  # one copy for all the one-vs-rest problems
        for k, target in enumerate(targets):
            label = np.asarray(classes[k]).item()  # "c", not np.str_("c"), in messages
            problem = LogisticProblem(
                X_solver,
                target,
                sample_weight=sw,
                fit_intercept=self.fit_intercept,
                owner=owner,
                context="" if len(targets) == 1 else f" (class {label!r} against the rest)",
            )
            if warm:
                state = problem.init_state(self.coef_[k], self.intercept_[k])
            else:
                state = problem.init_state()
            result = solve(
                problem,
                float(self.alpha),
                state,
                weights=c,
                positive=self.positive,
                tol=self.tol,
                max_iter=self.max_iter,
                trust_start=warm,  # a warm refit whose gap meets tol is a no-op
            )
            coefs[k], intercepts[k] = result.coef, result.intercept
            n_iter[k], gaps[k] = result.n_iter, result.gap
            if not result.converged:
                failures.append((float(self.alpha), result.gap, result.tol_abs))
        warn_path_failures(owner, failures, self.max_iter)
        self.classes_ = classes
        self.coef_ = coefs.astype(X.dtype)
        self.intercept_ = intercepts.astype(X.dtype)
        self.n_iter_ = n_iter
        self.dual_gap_ = gaps
        return self


def _column_major(X):
    """Dense ``X`` in Fortran order (the solver's layout), so that it is copied only once."""
    return X if sp.issparse(X) else np.asfortranarray(X)


def logistic_problems(
    X: Any,
    targets: list[np.ndarray],
    sample_weight: np.ndarray | None,
    *,
    fit_intercept: bool,
    owner: str,
    context: str,
) -> Callable[[Any], list]:
    """``problems(rows)``: one binary problem per target on ``rows`` (None: all rows).

    The template of the estimators that fit many subsets of one data set (the CV's training
    folds, ``StabilitySelection``'s half-samples). A subset without both classes (with positive
    weight) is refused, ``context`` saying which subsets the rule is about.
    """
    X_solver = _column_major(X)  # one copy for all the one-vs-rest problems

    def problems(rows):
        if rows is None:
            return [
                LogisticProblem(
                    X_solver,
                    t,
                    sample_weight=sample_weight,
                    fit_intercept=fit_intercept,
                    owner=owner,
                )
                for t in targets
            ]
        X_train = _column_major(X[rows])
        sw = None if sample_weight is None else sample_weight[rows]
        a = np.full(rows.shape[0], 1.0 / rows.shape[0]) if sw is None else sw
        found = []
        for target in targets:
            # Refused with or without an intercept: a subset of one class selects nothing.
            positive_class_share(np, target[rows], a / a.sum(), owner=owner, context=context)
            found.append(
                LogisticProblem(
                    X_train,
                    target[rows],
                    sample_weight=sw,
                    fit_intercept=fit_intercept,
                    owner=owner,
                )
            )
        return found

    return problems


class L1LogisticRegressionCV(CrossValidatedPath, _LogisticBase):
    """L1 logistic regression with ``alpha`` chosen by K-fold cross-validation (held-out log-loss).

    For more than two classes, the one-vs-rest problems share one alpha grid (from the largest
    ``alpha_max`` of the classes) and the CV error is the held-out log-loss summed over the
    binary problems; probabilities are not renormalised for the CV error. The folds run in
    parallel threads (``n_jobs``) and the path on all data is computed too.

    Parameters
    ----------
    alphas : int or array-like, default=100
        An int gives a geometric grid from ``alpha_max`` down to ``eps * alpha_max``.
    eps : float, default=1e-3
        As for the Lasso. A grid down to 1e-2 left the CV minimum at its smallest alpha on 3 of
        4 problems tried (breast cancer and three ``make_classification`` sets); down to 1e-3 it
        found the minimum inside the grid on all four, for 1.2-2x the time.
    cv, fit_intercept, positive, weights, tol, max_iter, n_jobs, callback : as in
        :class:`~l1reg.linear_model.LassoCV`.

    Attributes
    ----------
    classes_, alphas_ : ndarrays
    loss_path_ : ndarray of shape (n_alphas, n_folds)
        Held-out mean log-loss (weighted by ``sample_weight``).
    alpha_, alpha_1se_ : float
    coef_ : ndarray of shape (1 or n_classes, n_features)
    intercept_ : ndarray of shape (1 or n_classes,)
    coef_path_ : ndarray of shape (1 or n_classes, n_features, n_alphas)
    intercept_path_ : ndarray of shape (1 or n_classes, n_alphas)
    selection_frequency_path_ : ndarray of shape (n_features, n_alphas)
        The fraction of the folds whose fit at each alpha keeps each feature (a nonzero
        coefficient, for any class): how stable the selection is across folds.
    selection_frequency_ : ndarray of shape (n_features,)
        Its column at ``alpha_``.
    """

    _parameter_constraints: ClassVar[dict[str, list]] = CV_CONSTRAINTS
    _path_type = LogisticPath
    _errors_name = "loss_path_"

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

    def _checked_input(self, X: Any, y: Any, sample_weight: Any) -> CVData:
        X, y, classes, targets, sw, c = _checked_input(self, X, y, sample_weight)
        return CVData(X, y, targets, sw, c, classes)

    def _problems(self, data: CVData) -> Callable[[Any], list]:
        return logistic_problems(
            data.X,
            data.targets,
            data.sample_weight,
            fit_intercept=self.fit_intercept,
            owner=type(self).__name__,
            context=" in every training fold (use fewer folds or a stratified splitter)",
        )

    @staticmethod
    def _held_out_error(target: np.ndarray, scores: np.ndarray, weights) -> np.ndarray:
        """Held-out mean log-loss of each column of ``scores`` for one binary problem."""
        return np.average(log1p_exp(np, -target[:, None] * scores), axis=0, weights=weights)
