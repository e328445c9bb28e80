"""Solvers: where a fit starts. A trusted warm start stays put; at alpha >= alpha_max, w = 0."""

import numpy as np
import pytest
import scipy.sparse as sp

from l1reg.datafits import Logistic, Quadratic
from l1reg.solvers import GramQuadraticProblem, LogisticProblem, QuadraticProblem, solve

PROBLEMS = {
    "quadratic": QuadraticProblem,
    "gram": GramQuadraticProblem,
    "logistic": LogisticProblem,
}


def _data(kind, seed=0, n=60, p=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + rng.uniform(-2, 2, p)  # uncentered columns
    X[rng.uniform(size=X.shape) > 0.3] = 0  # sparse enough to store as such
    w = np.zeros(p)
    w[:5] = rng.standard_normal(5) * 2
    z = X @ w + 0.5 + 0.3 * rng.standard_normal(n)
    y = np.where(z > np.median(z), 1.0, -1.0) if kind == "logistic" else z
    return X, y, rng.uniform(0.2, 3.0, n)


@pytest.mark.parametrize("kind", ["quadratic", "gram", "logistic"])
def test_a_trusted_start_that_meets_tol_is_returned_after_0_epochs(kind):
    X, y, sw = _data(kind, n=50, p=30 if kind == "gram" else 200)
    problem = PROBLEMS[kind](X, y, sample_weight=sw)
    alpha = 0.01 * problem.alpha_max()
    state = problem.init_state()
    first = solve(problem, alpha, state, tol=1e-3)
    assert first.converged and first.n_iter > 0
    coef = first.coef.copy()
    again = solve(problem, alpha, state, tol=1e-3, trust_start=True)
    assert again.converged and again.n_iter == 0
    np.testing.assert_array_equal(again.coef, coef)
    assert again.intercept == first.intercept and again.gap == first.gap
    # A trusted start that does not meet tol is improved as any other.
    tighter = solve(problem, alpha, state, tol=1e-9, trust_start=True)
    assert tighter.converged and tighter.n_iter > 0


def test_estimators_warm_refit_on_the_same_data_is_a_no_op():
    # The case: 50 x 200 at alpha 1e-3, tol 1e-3 ran 58 more epochs and moved 0.075.
    from l1reg import L1LogisticRegression, Lasso

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 200))
    y = X[:, :5] @ rng.standard_normal(5) + 0.1 * rng.standard_normal(50)
    for model, target in (
        (Lasso(alpha=1e-3, tol=1e-3, warm_start=True, max_iter=100_000), y),
        (L1LogisticRegression(alpha=1e-3, tol=1e-3, warm_start=True), y > np.median(y)),
    ):
        model.fit(X, target)
        coef, intercept = model.coef_.copy(), np.copy(model.intercept_)
        assert np.all(np.asarray(model.n_iter_) > 0)
        model.fit(X, target)
        assert np.all(np.asarray(model.n_iter_) == 0), type(model).__name__
        np.testing.assert_array_equal(model.coef_, coef)
        np.testing.assert_array_equal(model.intercept_, intercept)


def _best_intercept(kind, y, sw, fit_intercept):
    if not fit_intercept:
        return 0.0
    datafit = Logistic() if kind == "logistic" else Quadratic()
    return datafit.best_intercept_at_zero(y, sw)


@pytest.mark.parametrize("kind", ["quadratic", "gram", "logistic"])
@pytest.mark.parametrize("container", [np.asarray, sp.csc_matrix])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("positive", [False, True])
def test_at_alpha_max_every_coefficient_is_exactly_zero(kind, container, fit_intercept, positive):
    if kind == "gram" and container is sp.csc_matrix:
        pytest.skip("the Gram problem is dense")
    X, y, sw = _data(kind)
    problem = PROBLEMS[kind](container(X), y, sample_weight=sw, fit_intercept=fit_intercept)
    alpha_max = problem.alpha_max(positive=positive)
    assert alpha_max > 0
    warm = problem.init_state()
    below = solve(problem, 0.2 * alpha_max, warm, positive=positive, tol=1e-10)
    assert np.count_nonzero(below.coef) > 0
    for start in (problem.init_state(), warm):  # cold, and warm from a nonzero solution
        for alpha in (alpha_max, 1.5 * alpha_max):
            result = solve(problem, alpha, start, positive=positive, tol=1e-10)
            assert not result.coef.any(), np.abs(result.coef).max()
            assert result.n_iter == 0 and result.converged
            assert abs(result.gap) <= 1e-3 * result.tol_abs  # 0, to rounding (1e-13 here)
            expected = _best_intercept(kind, y, sw, fit_intercept)
            assert result.intercept == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_estimators_at_alpha_max_return_zeros(container, fit_intercept):
    from l1reg import L1LogisticRegression, Lasso

    X, y, _ = _data("quadratic")
    X = container(X)
    # (alpha_max of the same container: a sparse product rounds otherwise than a dense one)
    alpha_max = QuadraticProblem(X, y, fit_intercept=fit_intercept).alpha_max()
    lasso = Lasso(alpha=alpha_max, fit_intercept=fit_intercept).fit(X, y)
    assert not lasso.coef_.any() and lasso.n_iter_ == 0
    labels = y > np.median(y)
    target = np.where(labels, 1.0, -1.0)
    alpha_max = LogisticProblem(X, target, fit_intercept=fit_intercept).alpha_max()
    logistic = L1LogisticRegression(alpha=alpha_max, fit_intercept=fit_intercept).fit(X, labels)
    assert not logistic.coef_.any() and logistic.n_iter_.tolist() == [0]


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
def test_above_alpha_max_with_an_unpenalized_feature_only_it_is_fitted(kind):
    # alpha_max is not known before the unpenalized features are fitted: at a large alpha the
    # penalized part is zero and the unpenalized one is its datafit's best.
    X, y, _ = _data(kind)
    c = np.ones(X.shape[1])
    c[7] = 0.0
    problem = PROBLEMS[kind](X, y)
    for start in (problem.init_state(), None):
        if start is None:
            start = problem.init_state()
            solve(problem, 0.05 * problem.alpha_max(c), start, weights=c, tol=1e-10)
            assert np.count_nonzero(start["w"]) > 1
        result = solve(problem, 100 * problem.alpha_max(c), start, weights=c, tol=1e-12)
        assert result.converged
        assert np.flatnonzero(result.coef).tolist() == [7]
    single = PROBLEMS[kind](X[:, [7]], y)
    alone = solve(single, 0.0, single.init_state(), tol=1e-12)
    assert result.coef[7] == pytest.approx(alone.coef[0], rel=1e-6)
