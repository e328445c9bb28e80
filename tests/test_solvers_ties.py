"""Features that tie at the threshold: exact zeros, not rounding, and one weight per set of copies.

Exact duplicate columns, and the two indicator columns of a two-level one-hot encoding (parallel
up to the intercept's column), have equal correlations: once one copy carries the weight, the
step of another lands on its threshold up to rounding (it left coefficients of 1e-16 and 1e-25),
and the steps in between leave it a small share of the weight (5e-11, 6e-14, ...).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from l1reg import L1LogisticRegressionCV, LassoCV
from l1reg.datafits import Logistic, Quadratic
from l1reg.linear_model import l1_logistic_path, lasso_path
from l1reg.solvers import LogisticProblem, QuadraticProblem, solve
from l1reg.solvers._problem import compiled
from l1reg.solvers._ties import merge_copies

SMALLEST = 1e-10  # no nonzero coefficient below this times the largest one of its fit


def _duplicates(seed=0, n=150):
    """Binary features, 20 of them twice more and 10 three times: ``copies`` is each column's
    original (standardized columns; ``raw`` the binary ones, for sparse X)."""
    rng = np.random.default_rng(seed)
    B = (rng.random((n, 40)) < 0.3).astype(float)
    raw = np.hstack([B, B[:, :20], B[:, :10]])
    X = (raw - raw.mean(0)) / raw.std(0)
    y = B[:, :5] @ [1, 2, -1, 1.5, 1] + rng.normal(size=n)
    copies = np.r_[np.arange(40), np.arange(20), np.arange(10)]
    return X, raw, y, copies


def _one_hot(seed=0, n=150):
    """A two-level factor as two indicator columns beside three Gaussian features."""
    rng = np.random.default_rng(seed)
    s = rng.choice([0.0, 1.0], n)
    raw = np.column_stack([s, 1 - s, rng.normal(size=(n, 3))])
    X = (raw - raw.mean(0)) / raw.std(0)
    y = 2 * s + X[:, 2] + rng.normal(size=n)
    return X, raw, y, np.array([0, 0, 1, 2, 3])


def _check_sparse_in_copies(coefs, copies):
    """No coefficient of rounding size, and at most one nonzero coefficient per set of copies."""
    coefs = np.asarray(coefs, dtype=np.float64).reshape(len(copies), -1)
    for k in range(coefs.shape[1]):
        w = coefs[:, k]
        kept = np.flatnonzero(w)
        if kept.shape[0] == 0:
            continue
        assert np.abs(w[kept]).min() >= SMALLEST * np.abs(w).max(), (k, np.sort(np.abs(w[kept])))
        assert np.unique(copies[kept]).shape[0] == kept.shape[0], (k, kept, copies[kept])


def _deduplicated(X, copies):
    """The first column of each set of copies, and each column as a multiple of it."""
    first = np.array([np.flatnonzero(copies == c)[0] for c in np.unique(copies)])
    Xc = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(0)
    rep = Xc[:, first[copies]]
    factor = np.einsum("ij,ij->j", Xc, rep) / np.einsum("ij,ij->j", rep, rep)
    return first, factor


CASES = {"duplicates": _duplicates, "one-hot": _one_hot}
# dense from its Gram matrix (n > p) or from X, in float64 and float32; sparse (the binary
# columns, centered implicitly)
LASSO_DESIGNS = ["gram", "x", "float32-gram", "float32-x", "sparse"]


def _design(case, design):
    X, raw, y, copies = CASES[case]()
    if design.startswith("float32"):
        X = X.astype(np.float32)
    elif design == "sparse":
        X = sp.csc_matrix(raw)
    return X, y, copies


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("design", LASSO_DESIGNS)
def test_lasso_path_gives_copies_exact_zeros_and_the_deduplicated_objective(case, design):
    X, y, copies = _design(case, design)
    precompute = design.endswith("gram")
    path = lasso_path(X, y, tol=1e-10, precompute=precompute)
    _check_sparse_in_copies(path.coefs, copies)
    first, factor = _deduplicated(X, copies)
    X_dedup = X[:, first]
    reference = lasso_path(X_dedup, y, alphas=path.alphas, tol=1e-10, precompute=precompute)
    datafit = Quadratic()
    Xd = X.toarray() if sp.issparse(X) else X.astype(np.float64)
    Xr = Xd[:, first]
    for k, alpha in enumerate(path.alphas):
        w, w_ref = path.coefs[:, k].astype(np.float64), reference.coefs[:, k].astype(np.float64)
        value = datafit.value(Xd, y, w, path.intercepts[k]) + alpha * np.abs(w).sum()
        value_ref = (
            datafit.value(Xr, y, w_ref, reference.intercepts[k]) + alpha * np.abs(w_ref).sum()
        )
        # one optimum value: each fit is within its certified gap of it
        slack = path.dual_gaps[k] + reference.dual_gaps[k] + 1e-12 * value_ref
        assert abs(value - value_ref) <= slack, (k, value - value_ref, slack)
        # the weight of a set of copies is the deduplicated coefficient
        summed = np.zeros(first.shape[0])
        np.add.at(summed, copies, factor * w)
        np.testing.assert_allclose(summed, w_ref, atol=2e-5 * max(1.0, np.abs(w_ref).max()))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("design", ["x", "float32-x", "sparse"])
def test_logistic_path_gives_copies_exact_zeros_and_the_deduplicated_objective(case, design):
    X, y, copies = _design(case, design)
    target = (y > np.median(y)).astype(int)
    path = l1_logistic_path(X, target, tol=1e-10)
    _check_sparse_in_copies(path.coefs, copies)
    first, _ = _deduplicated(X, copies)
    reference = l1_logistic_path(X[:, first], target, alphas=path.alphas, tol=1e-10)
    datafit = Logistic()
    Xd = X.toarray() if sp.issparse(X) else X.astype(np.float64)
    signs = np.where(target > 0, 1.0, -1.0)
    for k, alpha in enumerate(path.alphas):
        w, w_ref = path.coefs[:, k].astype(np.float64), reference.coefs[:, k].astype(np.float64)
        value = datafit.value(Xd, signs, w, path.intercepts[k]) + alpha * np.abs(w).sum()
        value_ref = (
            datafit.value(Xd[:, first], signs, w_ref, reference.intercepts[k])
            + alpha * np.abs(w_ref).sum()
        )
        slack = path.dual_gaps[k] + reference.dual_gaps[k] + 1e-12 * value_ref
        assert abs(value - value_ref) <= slack, (k, value - value_ref, slack)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("design", ["x", "float32-x", "sparse"])
def test_cross_validated_estimators_keep_one_copy_without_rounding_values(case, design):
    # the defect as reported: copies at 1e-16 counted as kept features
    X, y, copies = _design(case, design)
    lasso = LassoCV(cv=5, tol=1e-6).fit(X, y)
    _check_sparse_in_copies(lasso.coef_path_, copies)
    _check_sparse_in_copies(lasso.coef_, copies)
    logistic = L1LogisticRegressionCV(cv=5, tol=1e-6).fit(X, (y > np.median(y)).astype(int))
    _check_sparse_in_copies(logistic.coef_path_, copies)
    _check_sparse_in_copies(logistic.coef_, copies)


def test_penalty_weights_decide_between_copies():
    # Equal weights: a tie, one copy carries. A copy penalized more is strictly worse: it is 0,
    # and the cheaper copy carries even where it comes later.
    X, _, y, copies = _duplicates()
    weights = np.ones(X.shape[1])
    weights[:10] = 2.0  # the originals of the 10 features present three times
    for kind in ("quadratic", "logistic"):
        target = y if kind == "quadratic" else np.where(y > np.median(y), 1.0, -1.0)
        problem_class = QuadraticProblem if kind == "quadratic" else LogisticProblem
        problem = problem_class(X, target)
        state = problem.init_state()
        alpha_max = problem.alpha_max(weights)
        for alpha in alpha_max * np.geomspace(1, 1e-3, 30):
            result = solve(problem, alpha, state, weights=weights, tol=1e-10, max_iter=10**5)
            assert result.converged
            _check_sparse_in_copies(result.coef, copies)
            assert not result.coef[:10].any()


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
@pytest.mark.parametrize("container", [np.asarray, sp.csc_matrix])
def test_moving_the_weight_of_a_copy_keeps_the_fit_and_the_gap(kind, container):
    # raw one-hot columns: x_1 = 1 - x_0, a copy up to the intercept's column, which moves
    _, raw, y, _ = _one_hot()
    raw = np.hstack([raw, raw[:, 2:3]])  # and an exact duplicate of column 2
    X = container(raw)
    target = y if kind == "quadratic" else np.where(y > np.median(y), 1.0, -1.0)
    problem_class, datafit = {
        "quadratic": (QuadraticProblem, Quadratic()),
        "logistic": (LogisticProblem, Logistic()),
    }[kind]
    problem = problem_class(X, target)
    alpha = 0.05 * problem.alpha_max()
    lam = problem.lam(alpha, None)
    w = np.array([0.3, -0.2, 0.4, 0.1, 0.0, 0.25])  # split copies, of one sign and of the other
    state = problem.init_state(w) if kind == "quadratic" else problem.init_state(w, 0.1)
    fitted = raw @ w + problem.intercept(state)
    penalty = np.abs(w).sum()
    assert merge_copies(problem, state, lam, False)
    w_merged = state["w"]
    assert np.count_nonzero(w_merged[:2]) == 1 and np.count_nonzero(w_merged[[2, 5]]) == 1
    np.testing.assert_allclose(raw @ w_merged + problem.intercept(state), fitted, atol=1e-12)
    assert np.abs(w_merged).sum() <= penalty + 1e-15
    # the state is the merged point's (the loops' residual or margins agree with it)
    problem.prepare_gap(state)
    gap = problem.to_objective_units(
        problem.gap(state, lam, False, problem.features, _correlations(problem, state))[0]
    )
    reference = datafit.duality_gap(raw, target, w_merged, problem.intercept(state), alpha)
    assert gap == pytest.approx(reference, rel=1e-6, abs=1e-12)


def _correlations(problem, state):
    out = np.empty(problem.features.shape[0])
    problem.correlations(state, problem.features, out)
    return out


def test_positive_keeps_opposite_copies_apart():
    # x_1 = -x_0: under positive a weight moved from one to the other would change sign
    X, _, y, copies = _one_hot()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = lasso_path(X, y, positive=True, tol=1e-10)
    assert (path.coefs >= 0).all()
    _check_sparse_in_copies(path.coefs, copies)


def test_a_step_within_the_rounding_of_its_threshold_is_zero():
    common = compiled("common")
    threshold, margin = 0.5, 1e-14
    for positive in (False, True):
        assert common.soft_threshold(threshold + 0.5 * margin, threshold, positive, margin) == 0
        assert common.soft_threshold(threshold + 2 * margin, threshold, positive, margin) > 0
    assert common.soft_threshold(-threshold - 0.5 * margin, threshold, False, margin) == 0
    assert common.soft_threshold(-threshold - 2 * margin, threshold, False, margin) < 0
    # no kink, no tie: an unpenalized coordinate moves by any amount
    assert common.soft_threshold(1e-300, 0.0, False, margin) == 1e-300
    # the margin is the rounding of the gradient, in the units of the step
    assert common.tie_margin(3.0, 2.0, 4.0) == pytest.approx(common.TIE_EPS * 1.5)


def test_copies_found_in_one_fit_follow_the_weights_of_the_next():
    # The copies found along a path stay at 0 beside their carrier in the next fits; with other
    # penalty weights the carrier is a copy that is now cheaper.
    X, _, y, copies = _duplicates()
    problem = QuadraticProblem(X, y)
    state = problem.init_state()
    alpha_max = problem.alpha_max()
    for alpha in alpha_max * np.geomspace(1, 1e-2, 20):
        result = solve(problem, alpha, state, tol=1e-10, max_iter=10**5)
        _check_sparse_in_copies(result.coef, copies)
    assert problem._copies  # found, and left out of the later fits
    kept = np.flatnonzero(result.coef[:20])  # originals of the doubled features, kept
    assert kept.shape[0] and not result.coef[40:][np.isin(copies[40:], kept)].any()
    weights = np.ones(X.shape[1])
    weights[kept] = 2.0  # now their copies are the cheaper ones
    result = solve(problem, alpha, state, weights=weights, tol=1e-10, max_iter=10**5)
    assert result.converged
    _check_sparse_in_copies(result.coef, copies)
    assert not result.coef[kept].any()
    fresh_problem = QuadraticProblem(X, y)
    fresh = solve(
        fresh_problem, alpha, fresh_problem.init_state(), weights=weights, tol=1e-10, max_iter=10**5
    )
    summed, summed_fresh = np.zeros(40), np.zeros(40)
    np.add.at(summed, copies, result.coef)
    np.add.at(summed_fresh, copies, fresh.coef)
    np.testing.assert_allclose(summed, summed_fresh, atol=1e-5)


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
def test_columns_that_differ_beyond_rounding_are_not_copies(kind):
    X, _, y, _ = _duplicates()
    rng = np.random.default_rng(1)
    near = X[:, :20] + 1e-5 * rng.standard_normal((X.shape[0], 20))  # measured, not copied
    X_near = np.hstack([X[:, :40], near])
    if kind == "quadratic":
        problem = QuadraticProblem(X_near, y)
    else:
        problem = LogisticProblem(X_near, np.sign(y - y.mean()))
    w = np.zeros(60)
    w[:20] = w[40:] = np.linspace(0.1, 0.3, 20)
    state = problem.init_state(w)
    lam = problem.lam(0.01 * problem.alpha_max(), None)
    assert not merge_copies(problem, state, lam, False)
    np.testing.assert_array_equal(state["w"], w)
    assert getattr(problem, "_copies", None) is None
