"""The estimators: agreement with scikit-learn, sample weights, input checks, CV attributes."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sklm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold

import l1reg
from l1reg.datafits import Logistic, Quadratic
from l1reg.linear_model import (
    L1LogisticRegression,
    L1LogisticRegressionCV,
    Lasso,
    LassoCV,
    l1_logistic_path,
    lasso_path,
)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _lasso_objective(X, y, model, alpha, sw=None):
    return (
        Quadratic().value(X, y, model.coef_, model.intercept_, sw)
        + alpha * np.abs(model.coef_).sum()
    )


# --- Lasso ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0])
def test_lasso_matches_scikit_learn(diabetes, alpha):
    X, y = diabetes
    ours = Lasso(alpha=alpha, tol=1e-10).fit(X, y)
    theirs = sklm.Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-6 * np.abs(y).max())
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-8)
    assert np.array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    assert ours.dual_gap_ <= 1e-10 * Quadratic().value(X, y, 0 * ours.coef_, y.mean())


def test_lasso_at_default_tolerance_is_as_good_as_scikit_learn(diabetes):
    X, y = diabetes
    ours = Lasso(alpha=0.05).fit(X, y)
    theirs = sklm.Lasso(alpha=0.05).fit(X, y)
    best = sklm.Lasso(alpha=0.05, tol=1e-14, max_iter=100_000).fit(X, y)
    reference = _lasso_objective(X, y, best, 0.05)
    # Our gap bounds the error, and it is within tol times the objective at 0.
    error = _lasso_objective(X, y, ours, 0.05) - reference
    assert 0 <= error <= ours.dual_gap_
    assert error <= 1e-4 * Quadratic().value(X, y, 0 * ours.coef_, y.mean())
    assert error <= max(_lasso_objective(X, y, theirs, 0.05) - reference, 1e-9)


def test_lasso_alpha_above_alpha_max_gives_zero(diabetes):
    X, y = diabetes
    alpha_max = Quadratic().alpha_max(X, y)
    assert np.all(Lasso(alpha=alpha_max * 1.0001, tol=1e-12).fit(X, y).coef_ == 0)
    # Just below alpha_max, w = 0 is within the default tolerance; a tight one moves off it.
    assert np.any(Lasso(alpha=alpha_max * 0.99, tol=1e-12).fit(X, y).coef_ != 0)


def test_lasso_sparse_float32_and_orders_agree(diabetes):
    X, y = diabetes
    reference = Lasso(alpha=0.05, tol=1e-10).fit(X, y)
    for X_other in (sp.csr_matrix(X), sp.csc_matrix(X), np.asfortranarray(X)):
        model = Lasso(alpha=0.05, tol=1e-10).fit(X_other, y)
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-6)
        assert model.intercept_ == pytest.approx(reference.intercept_)
    single = Lasso(alpha=0.05, tol=1e-6).fit(X.astype(np.float32), y)
    assert single.coef_.dtype == np.float32
    np.testing.assert_allclose(
        single.coef_, reference.coef_, atol=1e-3 * np.abs(reference.coef_).max()
    )


def test_lasso_sample_weights_equal_repeated_rows(diabetes):
    X, y = diabetes
    X, y = X[:120], y[:120]
    counts = np.arange(120) % 4  # zeros included: those rows are left out
    weighted = Lasso(alpha=0.1, tol=1e-12).fit(X, y, sample_weight=counts)
    repeated = Lasso(alpha=0.1, tol=1e-12).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7, atol=1e-6)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, rel=1e-9)
    sparse = Lasso(alpha=0.1, tol=1e-12).fit(sp.csr_matrix(X), y, sample_weight=counts)
    np.testing.assert_allclose(sparse.coef_, weighted.coef_, rtol=1e-7, atol=1e-6)
    # And scikit-learn gives the same answer with the same weights.
    theirs = sklm.Lasso(alpha=0.1, tol=1e-14, max_iter=100_000).fit(X, y, sample_weight=counts)
    np.testing.assert_allclose(weighted.coef_, theirs.coef_, rtol=1e-5, atol=1e-4)


def test_lasso_positive_weights_and_warm_start(diabetes):
    X, y = diabetes
    positive = Lasso(alpha=0.01, positive=True).fit(X, y)
    theirs = sklm.Lasso(alpha=0.01, positive=True, tol=1e-12, max_iter=100_000).fit(X, y)
    assert positive.coef_.min() >= 0
    np.testing.assert_allclose(positive.coef_, theirs.coef_, rtol=1e-2, atol=1.0)
    c = np.ones(X.shape[1])
    c[0] = 0.0
    weighted = Lasso(alpha=5.0, weights=c).fit(X, y)  # alpha far above alpha_max
    assert np.flatnonzero(weighted.coef_).tolist() == [0]
    model = Lasso(alpha=0.1, warm_start=True, tol=1e-8).fit(X, y)
    first = model.n_iter_
    model.fit(X, y)
    assert model.n_iter_ < first


def test_lasso_warns_with_the_gap_when_max_iter_runs_out(diabetes):
    X, y = diabetes
    with pytest.warns(ConvergenceWarning, match=r"duality gap reached \d\.\d+e[-+]\d+"):
        model = Lasso(alpha=1e-4, max_iter=2, tol=1e-12).fit(X, y)
    assert model.dual_gap_ > 0


def test_lasso_path_matches_scikit_learn(diabetes):
    X, y = diabetes
    Xc, yc = X - X.mean(0), y - y.mean()
    ours = lasso_path(Xc, yc, alphas=20, fit_intercept=False, tol=1e-10)
    _, coefs, _ = sklm.lasso_path(Xc, yc, alphas=ours.alphas, tol=1e-12, max_iter=100_000)
    np.testing.assert_allclose(ours.coefs, coefs, rtol=1e-5, atol=1e-3)
    assert ours.coefs.shape == (X.shape[1], 20)
    assert np.all(np.diff(ours.alphas) < 0)
    assert np.all(ours.coefs[:, 0] == 0)
    # The path with an intercept fitted is the path on centered data.
    with_intercept = lasso_path(X, y, alphas=ours.alphas, tol=1e-10)
    np.testing.assert_allclose(with_intercept.coefs, ours.coefs, rtol=1e-6, atol=1e-4)
    expected_b = y.mean() - X.mean(0) @ with_intercept.coefs
    np.testing.assert_allclose(with_intercept.intercepts, expected_b)


# --- LassoCV ----------------------------------------------------------------------------------


def test_lasso_cv_matches_scikit_learn(diabetes):
    X, y = diabetes
    cv = KFold(5)
    ours = LassoCV(cv=cv, tol=1e-8).fit(X, y)
    theirs = sklm.LassoCV(cv=cv, tol=1e-10, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-5)
    assert ours.alpha_ == pytest.approx(theirs.alpha_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-4, atol=1e-2)
    assert ours.mse_path_.shape == (100, 5)
    assert ours.coef_path_.shape == (X.shape[1], 100)
    assert ours.intercept_path_.shape == (100,)
    best = np.argmin(ours.mse_path_.mean(1))
    np.testing.assert_array_equal(ours.coef_, ours.coef_path_[:, best])
    assert ours.alpha_1se_ >= ours.alpha_


def test_lasso_cv_one_standard_error_rule():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 30))
    y = X[:, :3] @ [3.0, -2.0, 1.0] + rng.standard_normal(80)
    model = LassoCV(alphas=30, cv=4).fit(X, y)
    mean = model.mse_path_.mean(1)
    best = np.argmin(mean)
    se = model.mse_path_[best].std(ddof=1) / 2
    within = model.alphas_[mean <= mean[best] + se]
    assert model.alpha_1se_ == within.max()
    assert model.alpha_1se_ > model.alpha_


@pytest.mark.parametrize("kind", ["lasso", "logistic3"])
def test_cv_selection_frequency_is_the_share_of_folds_keeping_each_feature(kind):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 12))
    score = X[:, :3] @ [2.0, -1.5, 1.0]
    if kind == "lasso":
        y, folds = score + rng.standard_normal(90), KFold(3, shuffle=True, random_state=0)
        model = LassoCV(alphas=12, cv=folds, tol=1e-10).fit(X, y)
        single = lambda alpha: Lasso(alpha=alpha, tol=1e-12)  # noqa: E731
    else:
        y = np.digitize(score + 0.5 * rng.standard_normal(90), [-1.0, 1.0])  # 3 classes
        folds = StratifiedKFold(3, shuffle=True, random_state=0)
        model = L1LogisticRegressionCV(alphas=12, cv=folds, tol=1e-10).fit(X, y)
        single = lambda alpha: L1LogisticRegression(alpha=alpha, tol=1e-12)  # noqa: E731
    assert model.selection_frequency_path_.shape == (12, 12)
    # An independent fit on each training fold at each alpha, counted.
    count = np.zeros((12, 12))
    for train, _ in folds.split(X, y):
        for i, alpha in enumerate(model.alphas_):
            coef = np.atleast_2d(single(alpha).fit(X[train], y[train]).coef_)
            count[:, i] += np.any(coef != 0, axis=0)
    np.testing.assert_array_equal(model.selection_frequency_path_, count / 3)
    best = int(np.flatnonzero(model.alphas_ == model.alpha_)[0])
    np.testing.assert_array_equal(model.selection_frequency_, count[:, best] / 3)
    assert np.all(model.selection_frequency_[:3] == 1.0)  # the true features, in every fold


def test_lasso_cv_alphas_array_callback_and_threads(diabetes):
    X, y = diabetes
    calls = []
    grid = [0.5, 0.01, 0.1]
    serial = LassoCV(alphas=grid, cv=3, callback=lambda done, total: calls.append((done, total)))
    serial.fit(X, y)
    np.testing.assert_array_equal(serial.alphas_, [0.5, 0.1, 0.01])
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    threaded = LassoCV(alphas=grid, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(threaded.mse_path_, serial.mse_path_)
    np.testing.assert_allclose(threaded.coef_, serial.coef_)


def test_lasso_cv_sample_weights_equal_repeated_rows(diabetes):
    X, y = diabetes
    X, y = X[:90], y[:90]
    counts = 1 + np.arange(90) % 3
    groups = np.arange(90) % 3
    folds_w = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in range(3)]
    rows = np.repeat(np.arange(90), counts)
    folds_r = [
        (np.flatnonzero(groups[rows] != g), np.flatnonzero(groups[rows] == g)) for g in range(3)
    ]
    weighted = LassoCV(alphas=15, cv=folds_w, tol=1e-12).fit(X, y, sample_weight=counts)
    repeated = LassoCV(alphas=15, cv=folds_r, tol=1e-12).fit(X[rows], y[rows])
    np.testing.assert_allclose(weighted.alphas_, repeated.alphas_)
    np.testing.assert_allclose(weighted.mse_path_, repeated.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-6)


# --- logistic ---------------------------------------------------------------------------------


def _logistic_objective(X, y01, coef, intercept, alpha):
    ypm = np.where(y01 == 1, 1.0, -1.0)
    return Logistic().value(X, ypm, coef, intercept) + alpha * np.abs(coef).sum()


@pytest.mark.parametrize("alpha", [0.002, 0.02])
def test_logistic_matches_scikit_learn_objective(cancer, alpha):
    X, y = cancer
    n = X.shape[0]
    ours = L1LogisticRegression(alpha=alpha, tol=1e-8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = sklm.LogisticRegression(
            C=1 / (n * alpha), l1_ratio=1.0, solver="saga", tol=1e-10, max_iter=20_000
        ).fit(X, y)
    mine = _logistic_objective(X, y, ours.coef_[0], ours.intercept_[0], alpha)
    other = _logistic_objective(X, y, theirs.coef_[0], theirs.intercept_[0], alpha)
    assert mine <= other + 1e-7
    assert other - mine < 1e-4
    ypm = np.where(y == 1, 1.0, -1.0)
    gap = Logistic().duality_gap(X, ypm, ours.coef_[0], ours.intercept_[0], alpha)
    assert 0 <= gap <= 1e-8 * np.log(2)
    assert ours.coef_.shape == (1, X.shape[1])
    agree = ours.predict(X) == theirs.predict(X)
    assert agree.mean() > 0.99


def test_logistic_sparse_weights_and_labels(cancer):
    X, y = cancer
    X = X[:200]
    labels = np.where(y[:200] == 1, "yes", "no")
    counts = np.arange(200) % 3
    weighted = L1LogisticRegression(alpha=0.01, tol=1e-12).fit(X, labels, sample_weight=counts)
    repeated = L1LogisticRegression(alpha=0.01, tol=1e-12).fit(
        np.repeat(X, counts, 0), np.repeat(labels, counts)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)
    sparse = L1LogisticRegression(alpha=0.01, tol=1e-12).fit(
        sp.csr_matrix(X), labels, sample_weight=counts
    )
    np.testing.assert_allclose(sparse.coef_, weighted.coef_, atol=1e-6)
    assert set(weighted.predict(X)) <= {"yes", "no"}
    assert list(weighted.classes_) == ["no", "yes"]


def test_logistic_multiclass_is_one_vs_rest():
    X, y = load_iris(return_X_y=True)
    model = L1LogisticRegression(alpha=0.01).fit(X, y)
    assert model.coef_.shape == (3, 4) and model.intercept_.shape == (3,)
    for k in range(3):
        binary = L1LogisticRegression(alpha=0.01).fit(X, (y == k).astype(int))
        np.testing.assert_allclose(model.coef_[k], binary.coef_[0], atol=1e-8)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("case", ["near_alpha_max", "unpenalized_no_intercept"])
def test_logistic_reaches_tight_tolerances(case):
    # Near the solution a Newton step's decrease (second order in the gradient) falls below the
    # rounding of the objective long before the gap (first order) reaches tol=1e-12; a line
    # search that must see a decrease stalled there (10 000 epochs at gap 2.4e-10 in the first
    # case, a scikit-learn conformance check's data; thousands in the second).
    rng = np.random.RandomState(0)
    if case == "near_alpha_max":
        X = rng.uniform(size=(40, 3))
        X[X < 0.6] = 0
        y = (4 * rng.uniform(size=40)).astype(int)
        train, _ = list(StratifiedKFold(3).split(X, y))[1]
        X, y = X[train], (y[train] == 0).astype(int)
        model = L1LogisticRegression(alpha=0.02486, tol=1e-12)
    else:
        X = rng.standard_normal((60, 12))
        X[:, 2] += 2 * X[:, 0]
        X[:, 5] -= X[:, 1]
        y = (X[:, 0] + rng.standard_normal(60) > 0).astype(int)
        weights = np.ones(12)
        weights[[2, 5]] = 0.0
        model = L1LogisticRegression(alpha=0.02, weights=weights, fit_intercept=False, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    assert model.n_iter_[0] < 200


def test_logistic_path_and_cv(cancer):
    X, y = cancer
    path = l1_logistic_path(X, y, alphas=10)
    assert path.coefs.shape == (X.shape[1], 10)
    assert np.all(path.coefs[:, 0] == 0)
    assert np.count_nonzero(path.coefs[:, -1]) > np.count_nonzero(path.coefs[:, 1])
    calls = []
    model = L1LogisticRegressionCV(alphas=10, cv=3, callback=lambda *a: calls.append(a)).fit(X, y)
    np.testing.assert_allclose(model.alphas_, path.alphas)
    assert model.loss_path_.shape == (10, 3)
    assert model.coef_path_.shape == (1, X.shape[1], 10)
    assert model.intercept_path_.shape == (1, 10)
    best = np.argmin(model.loss_path_.mean(1))
    assert model.alpha_ == model.alphas_[best]
    assert model.alpha_1se_ >= model.alpha_
    np.testing.assert_allclose(model.coef_path_[0], path.coefs, atol=1e-6)
    assert calls[-1] == (4, 4)
    assert model.score(X, y) > 0.95


def test_logistic_cv_default_grid_holds_the_cv_minimum(cancer):
    # The default grid reaches down to 1e-3 alpha_max: on breast cancer the CV loss has its
    # minimum inside it (down to 1e-2 it was still falling at the last alpha).
    X, y = cancer
    model = L1LogisticRegressionCV().fit(X, y)
    best = int(np.argmin(model.loss_path_.mean(1)))
    assert 0 < best < len(model.alphas_) - 1
    assert model.alphas_[-1] == pytest.approx(1e-3 * model.alphas_[0])


def test_logistic_cv_multiclass():
    X, y = load_iris(return_X_y=True)
    model = L1LogisticRegressionCV(alphas=8, cv=3, n_jobs=2).fit(X, y)
    assert model.coef_path_.shape == (3, 4, 8)
    assert model.coef_.shape == (3, 4)
    assert model.predict_proba(X).shape == (150, 3)


def test_logistic_refuses_one_class():
    with pytest.raises(ValueError, match="at least two classes"):
        L1LogisticRegression().fit(np.eye(3), [1, 1, 1])


# --- input checks, parameters -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("Estimator", [Lasso, L1LogisticRegression])
def test_non_finite_input_is_refused(Estimator, bad):
    X = np.random.default_rng(0).standard_normal((10, 3))
    y = np.arange(10) % 2
    X_bad = X.copy()
    X_bad[2, 1] = bad
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        Estimator().fit(X_bad, y)
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        Estimator().fit(sp.csr_matrix(X_bad), y)
    y_bad = y.astype(float)
    y_bad[0] = bad
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        Lasso().fit(X, y_bad)


def test_wrong_shapes_are_refused(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Lasso().fit(X, y[:-1])
    with pytest.raises(ValueError, match="'sample_weight' parameter of Lasso"):
        Lasso().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="'weights' parameter of Lasso"):
        Lasso(weights=np.ones(3)).fit(X, y)
    model = Lasso().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


def test_one_sample_gives_the_mean_and_zero_coefficients():
    model = Lasso(alpha=0.1).fit([[1.0, 2.0]], [3.0])
    assert np.all(model.coef_ == 0) and model.intercept_ == 3.0


def test_constant_and_zero_columns(diabetes):
    X, y = diabetes
    X2 = np.column_stack([X, np.zeros(len(y)), np.full(len(y), 4.2)])
    for X_other in (X2, sp.csc_matrix(X2)):
        model = Lasso(alpha=0.01, tol=1e-10).fit(X_other, y)
        assert model.coef_[-1] == 0 and model.coef_[-2] == 0
        reference = Lasso(alpha=0.01, tol=1e-10).fit(X, y)
        np.testing.assert_allclose(model.coef_[:-2], reference.coef_, rtol=1e-6, atol=1e-6)


def test_inputs_are_not_modified(diabetes):
    X, y = diabetes
    X = np.asfortranarray(X.copy())
    y = y.copy()
    sw = np.linspace(0.5, 2, len(y))
    copies = (X.copy(), y.copy(), sw.copy())
    Xs = sp.csc_matrix(X)
    data = Xs.data.copy()
    Lasso(alpha=0.1).fit(X, y, sample_weight=sw)
    LassoCV(alphas=5, cv=3).fit(Xs, y, sample_weight=sw)
    L1LogisticRegression().fit(X, y > y.mean(), sample_weight=sw)
    for before, after in zip(copies, (X, y, sw), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(Xs.data, data)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (
            Lasso(alpha=-1),
            "The 'alpha' parameter of Lasso must be a float in the range [0, inf). Got -1 instead.",
        ),
        (
            Lasso(max_iter=0),
            "The 'max_iter' parameter of Lasso"
            " must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            Lasso(fit_intercept="yes"),
            "The 'fit_intercept' parameter of Lasso"
            " must be an instance of 'bool'. Got 'yes' instead.",
        ),
        (LassoCV(cv=1), "The 'cv' parameter of LassoCV must be an int in the range [2, inf)"),
        (
            LassoCV(alphas=0),
            "The 'alphas' parameter of LassoCV"
            " must be an int in the range [1, inf) or a non-empty array-like of finite numbers"
            " >= 0. Got 0 instead.",
        ),
        # issue 11: no ZeroDivisionError for an empty grid; inf refused as scikit-learn does
        (LassoCV(alphas=[]), "The 'alphas' parameter of LassoCV must be an int in the range"),
        (
            L1LogisticRegressionCV(alphas=[]),
            "The 'alphas' parameter of L1LogisticRegressionCV must be an int in the range",
        ),
        (
            Lasso(alpha=float("inf")),
            "The 'alpha' parameter of Lasso must be a float in the range [0, inf). Got inf",
        ),
        (
            L1LogisticRegression(tol=float("inf")),
            "The 'tol' parameter of L1LogisticRegression must be a float in the range [0, inf).",
        ),
        (
            LassoCV(eps=float("inf")),
            "The 'eps' parameter of LassoCV must be a float in the range (0, inf). Got inf",
        ),
        (
            L1LogisticRegressionCV(tol=float("inf")),
            "The 'tol' parameter of L1LogisticRegressionCV must be a float in the range [0, inf).",
        ),
        (
            L1LogisticRegressionCV(eps=0),
            "The 'eps' parameter of L1LogisticRegressionCV"
            " must be a float in the range (0, inf). Got 0 instead.",
        ),
        (
            L1LogisticRegression(tol=float("nan")),
            "The 'tol' parameter of L1LogisticRegression"
            " must be a float in the range [0, inf). Got nan instead.",
        ),
    ],
)
def test_parameter_errors_name_the_parameter_and_value(estimator, message):
    with pytest.raises(ValueError) as error:
        estimator.fit(np.eye(4), [0, 1, 0, 1])
    assert str(error.value).startswith(message)


def test_docstring_examples_run():
    import doctest
    import importlib

    for name in ("datafits", "linear_model.lasso", "linear_model.logistic", "solvers.fista"):
        module = importlib.import_module(f"l1reg.{name}")
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, name


def test_lasso_path_gram_and_plain_solvers_agree(diabetes):
    X, y = diabetes
    sw = np.linspace(0.5, 2.0, len(y))
    plain = lasso_path(X, y, alphas=10, sample_weight=sw, precompute=False, tol=1e-10)
    gram = lasso_path(X, y, alphas=10, sample_weight=sw, precompute=True, tol=1e-10)
    np.testing.assert_allclose(gram.coefs, plain.coefs, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(gram.intercepts, plain.intercepts, rtol=1e-9)
    # A sparse X never uses the (dense) Gram matrix, whatever precompute says.
    sparse = lasso_path(
        sp.csr_matrix(X), y, alphas=10, sample_weight=sw, precompute=True, tol=1e-10
    )
    np.testing.assert_allclose(sparse.coefs, plain.coefs, rtol=1e-6, atol=1e-4)


def _kkt_violation(kind, X, y, model, lam, positive):
    """The largest violation of the optimality conditions of the fitted model (objective units)."""
    w = model.coef_.ravel()
    z = X @ w + float(np.ravel(model.intercept_)[0])
    if kind == "lasso":
        grad = -(X.T @ (y - z)) / len(y)
    else:
        s = 2.0 * y - 1.0
        grad = -(X.T @ (s / (1.0 + np.exp(s * z)))) / len(y)
    at_zero = -(grad + lam) if positive else np.abs(grad) - lam
    moving = np.abs(grad + lam * np.sign(w))
    return float(np.max(np.where(w != 0, moving, np.maximum(at_zero, 0.0))))


@pytest.mark.parametrize(
    "kind, n, sparse, positive",
    [
        ("lasso", 80, False, False),
        ("lasso", 80, False, True),
        ("lasso", 300, False, False),  # n > p: solved from the Gram matrix of X
        ("lasso", 80, True, False),
        ("logistic", 80, False, False),
    ],
)
def test_unpenalized_features_are_optimal_when_the_gap_says_so(kind, n, sparse, positive):
    # Penalty weight 0 makes a feature unpenalized: its dual constraint is an equality, and a gap
    # computed away from its optimum is wrong to the first order (it was negative here, with
    # KKT violations up to 0.25, before the solver made those features optimal first).
    worst = 0.0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, 120 if n < 120 else 60))
        X[:, 2] += 3 * X[:, 0]  # the unpenalized features are correlated with penalized ones
        X[:, 7] -= 2 * X[:, 1]
        y = X[:, :5] @ rng.standard_normal(5) + 0.3 * rng.standard_normal(n)
        if kind == "logistic":
            y = (y > 0).astype(float)
        c = np.ones(X.shape[1])
        c[[2, 7]] = 0.0
        data = sp.csc_matrix(X) if sparse else X
        for alpha in (0.05, 0.01):
            if kind == "lasso":
                model = Lasso(alpha=alpha, positive=positive, weights=c, tol=1e-10, max_iter=10**5)
            else:
                model = L1LogisticRegression(alpha=alpha, weights=c, tol=1e-10, max_iter=10**5)
            model.fit(data, y)
            assert np.all(np.ravel(model.dual_gap_) >= -1e-10)  # (rounding)
            worst = max(worst, _kkt_violation(kind, X, y, model, alpha * c, positive))
    assert worst < 1e-6


def _small(kind="regression", n=30, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    score = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, (score if kind == "regression" else (score > 0).astype(int))


@pytest.mark.parametrize(
    "bad",
    [
        {"alphas": [-1.0]},
        {"positive": "no"},
        {"tol": np.inf},
        {"max_iter": 0},
        {"eps": -1e-3},
        {"fit_intercept": "no"},
        {"weights": [1.0, -1.0, 1.0, 1.0, 1.0, 1.0]},
        {"weights": [1.0, np.nan, 1.0, 1.0, 1.0, 1.0]},
        {"weights": [1.0, np.inf, 1.0, 1.0, 1.0, 1.0]},
    ],
    ids=lambda bad: f"{next(iter(bad))}={next(iter(bad.values()))!r}",
)
@pytest.mark.parametrize("path", ["lasso_path", "l1_logistic_path"])
def test_paths_refuse_bad_parameters_before_any_work(path, bad, monkeypatch):
    # Each of these used to be accepted silently by l1_logistic_path (a negative penalty, "no"
    # taken as True, coefficients 17.5 off at tol=inf, zeros at max_iter=0, NaN alphas, numba's
    # TypingError), and the weights by both paths (inf weights gave NaN gaps).
    import l1reg.linear_model._base as base

    def no_work(*args, **kwargs):
        raise AssertionError("the solver ran")

    monkeypatch.setattr(base, "solve", no_work)
    X, y = _small("regression" if path == "lasso_path" else "classification")
    (name,) = bad
    with pytest.raises(ValueError, match=rf"'{name}' parameter of {path} must be"):
        getattr(l1reg, path)(X, y, **bad)


@pytest.mark.parametrize(
    "make, kind",
    [
        (Lasso, "regression"),
        (LassoCV, "regression"),
        (L1LogisticRegression, "classification"),
        (L1LogisticRegressionCV, "classification"),
    ],
)
def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was(make, kind):
    X4, y = _small(kind, p=4)
    X6, _ = _small(kind, p=6)
    model = make().fit(X4, y)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(model).items()}
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X6, y, sample_weight=-1)
    assert vars(model).keys() == before.keys()
    for key, value in before.items():
        assert np.array_equal(vars(model)[key], value), key
    assert model.predict(X4).shape == (len(y),)  # still the 4-feature model


@pytest.mark.parametrize("make", [Lasso, L1LogisticRegression])
def test_values_whose_squares_overflow_are_refused(make):
    X, y = _small("regression" if make is Lasso else "classification")
    with pytest.raises(ValueError, match=r"Input X of .* too large for float64"):
        make().fit(X * 1e307, y)
    with pytest.raises(ValueError, match=r"Input X of .* too large"):
        make().fit(sp.csr_matrix(X * 1e307), y)
    if make is Lasso:
        with pytest.raises(ValueError, match=r"Input y of .* too large"):
            make().fit(X, y * 1e307)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make().fit(X * 1e100, y)  # large but safe: accepted


def test_data_errors_name_the_argument():
    X, y = _small()
    with pytest.raises(ValueError, match="Invalid 'X' argument of Lasso: Expected 2D array"):
        Lasso().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="Invalid 'X' and 'y' arguments of lasso_path: Found"):
        lasso_path(X[:-1], y)
    with pytest.raises(ValueError, match="X has 5 features, but Lasso is expecting 6"):
        Lasso().fit(X, y).predict(X[:, :-1])
    with pytest.raises(ValueError, match="Input y contains NaN"):  # sklearn's own, names y
        Lasso().fit(X, np.full(len(y), np.nan))


def test_both_classes_are_checked_once_with_the_context():
    X, y = _small("classification")
    sw = np.where(y == 1, 0.0, 1.0)  # class 1 has no weight
    with pytest.raises(ValueError, match="L1LogisticRegression needs samples of both classes"):
        L1LogisticRegression().fit(X, y, sample_weight=sw)
    labels = np.array(["a", "b", "c"])[np.arange(len(y)) % 3]
    sw = np.where(labels == "c", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"both classes .* \(class 'c' against the rest\)"):
        L1LogisticRegression().fit(X, labels, sample_weight=sw)
    order = np.argsort(y)  # unshuffled 2-fold on sorted labels: single-class training folds
    with pytest.raises(ValueError, match="in every training fold"):
        L1LogisticRegressionCV(cv=[(order[:10], order[10:])]).fit(X, y)
