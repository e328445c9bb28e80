"""Datafits: values, gradients, Lipschitz constants, alpha_max and duality gaps."""

import numpy as np
import pytest
import scipy.sparse as sp

from l1reg.datafits import Logistic, Quadratic

DATAFITS = [Quadratic(), Logistic()]


def _problem(seed=0, n=30, p=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = np.sign(rng.standard_normal(n))
    y[y == 0] = 1
    sw = rng.uniform(0.5, 2.0, n)
    return X, y, sw


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: type(d).__name__)
def test_gradient_matches_finite_differences(datafit):
    X, y, sw = _problem()
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal(X.shape[1]) * 0.3, 0.2
    grad, grad_b = datafit.gradient(X, y, w, b, sw)
    h = 1e-6
    for j in range(X.shape[1]):
        e = np.zeros_like(w)
        e[j] = h
        numeric = (datafit.value(X, y, w + e, b, sw) - datafit.value(X, y, w - e, b, sw)) / (2 * h)
        assert numeric == pytest.approx(grad[j], rel=1e-5, abs=1e-8)
    numeric_b = (datafit.value(X, y, w, b + h, sw) - datafit.value(X, y, w, b - h, sw)) / (2 * h)
    assert numeric_b == pytest.approx(grad_b, rel=1e-5, abs=1e-8)


def test_values_follow_the_definitions():
    X, y, sw = _problem()
    w = np.linspace(-1, 1, X.shape[1])
    r = y - X @ w - 0.5
    assert Quadratic().value(X, y, w, 0.5) == pytest.approx(0.5 * np.mean(r**2))
    assert Quadratic().value(X, y, w, 0.5, sw) == pytest.approx(0.5 * np.average(r**2, weights=sw))
    margins = y * (X @ w - 0.5)
    assert Logistic().value(X, y, w, -0.5) == pytest.approx(np.mean(np.log1p(np.exp(-margins))))


def test_sample_weights_equal_repeated_rows():
    X, y, _ = _problem()
    counts = np.arange(X.shape[0]) % 3
    w = np.linspace(-1, 1, X.shape[1])
    for datafit in DATAFITS:
        weighted = datafit.value(X, y, w, 0.1, counts.astype(float))
        repeated = datafit.value(np.repeat(X, counts, 0), np.repeat(y, counts), w, 0.1)
        assert weighted == pytest.approx(repeated)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: type(d).__name__)
def test_lipschitz_constants_bound_the_curvature(datafit):
    X, _, sw = _problem()
    L = datafit.lipschitz(X, sw)
    L_j = datafit.lipschitz_coordinates(X, sw)
    a = sw / sw.sum()
    scale = 1.0 if isinstance(datafit, Quadratic) else 0.25
    exact = scale * np.linalg.eigvalsh(X.T @ (a[:, None] * X)).max()
    assert exact <= L <= 1.05 * exact
    assert L_j == pytest.approx(scale * (a @ X**2))


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: type(d).__name__)
def test_alpha_max_is_where_zero_stops_being_optimal(datafit):
    X, y, sw = _problem()
    alpha_max = datafit.alpha_max(X, y, sample_weight=sw)
    b0 = datafit.best_intercept_at_zero(y, sw)
    w0 = np.zeros(X.shape[1])
    # At alpha_max, w = 0 with the best intercept has a zero duality gap; just below, it does not.
    gap_at = datafit.duality_gap(X, y, w0, b0, alpha_max, sample_weight=sw)
    gap_below = datafit.duality_gap(X, y, w0, b0, 0.9 * alpha_max, sample_weight=sw)
    assert abs(gap_at) < 1e-12
    assert gap_below > 1e-6


def test_gap_is_a_certificate_for_any_point():
    X, y, sw = _problem()
    rng = np.random.default_rng(3)
    for datafit in DATAFITS:
        alpha = 0.3 * datafit.alpha_max(X, y)
        for _ in range(5):
            w = rng.standard_normal(X.shape[1])
            assert datafit.duality_gap(X, y, w, 0.1, alpha, sample_weight=sw) > 0


def test_sparse_X_gives_the_dense_values():
    X, y, sw = _problem()
    X[np.abs(X) < 0.8] = 0
    w = np.linspace(-1, 1, X.shape[1])
    for datafit in DATAFITS:
        for X_other in (sp.csr_matrix(X), sp.csc_matrix(X)):
            assert datafit.value(X_other, y, w, 0.2, sw) == pytest.approx(
                datafit.value(X, y, w, 0.2, sw), rel=1e-12
            )
            grad, grad_b = datafit.gradient(X_other, y, w, 0.2, sw)
            expected, expected_b = datafit.gradient(X, y, w, 0.2, sw)
            np.testing.assert_allclose(grad, expected, rtol=1e-12)
            assert grad_b == pytest.approx(expected_b, rel=1e-12)
            assert datafit.alpha_max(X_other, y) == pytest.approx(datafit.alpha_max(X, y))


def test_logistic_alpha_max_refuses_a_single_class():
    X, _, _ = _problem()
    with pytest.raises(ValueError, match="both classes"):
        Logistic().alpha_max(X, np.ones(X.shape[0]))


def test_torch_tensors_give_the_numpy_values():
    torch = pytest.importorskip("torch")
    X, y, sw = _problem()
    w = np.linspace(-1, 1, X.shape[1])
    c = np.ones(X.shape[1])
    c[[1, 4]] = 0.0  # unpenalized features: the gap projects on their columns
    for datafit in DATAFITS:
        for weights, fit_intercept in ((None, True), (c, True), (c, False)):
            options = {"weights": weights, "fit_intercept": fit_intercept}
            expected = datafit.duality_gap(X, y, w, 0.1, 0.05, sample_weight=sw, **options)
            got = datafit.duality_gap(
                torch.from_numpy(X),
                torch.from_numpy(y),
                torch.from_numpy(w),
                0.1,
                0.05,
                sample_weight=torch.from_numpy(sw),
                weights=None if weights is None else torch.from_numpy(weights),
                fit_intercept=fit_intercept,
            )
            assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: type(d).__name__)
def test_gap_bounds_the_distance_to_the_optimum_with_unpenalized_features(datafit, fit_intercept):
    # Unpenalized features (c_j = 0) have equality dual constraints: near the optimum, moved
    # along them, the gap of the scaled residual alone was below the true distance (negative).
    from l1reg.linear_model import L1LogisticRegression, Lasso

    X, y, sw = _problem(seed=0, n=60, p=12)
    X[:, 2] += 2 * X[:, 0]
    X[:, 5] -= X[:, 1]
    c = np.ones(X.shape[1])
    c[[2, 5]] = 0.0
    if isinstance(datafit, Quadratic):
        y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.3 * y
    alpha = 0.2 * datafit.alpha_max(X, y, weights=c, fit_intercept=fit_intercept)
    Estimator = Lasso if isinstance(datafit, Quadratic) else L1LogisticRegression
    best = Estimator(
        alpha=alpha, weights=c, fit_intercept=fit_intercept, tol=1e-10, max_iter=10**5
    ).fit(X, y, sample_weight=sw)  # (its objective is >= the optimum: the test only weakens)
    w_best, b_best = best.coef_.ravel(), float(np.ravel(best.intercept_)[0])

    def objective(w, b):
        return datafit.value(X, y, w, b, sw) + alpha * np.sum(c * np.abs(w))

    optimum = objective(w_best, b_best)
    rng = np.random.default_rng(0)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(5):
            w = w_best.copy()
            w[[2, 5]] += scale * rng.standard_normal(2)
            b = b_best + (scale * rng.standard_normal() if fit_intercept else 0.0)
            for X_used in (X, sp.csc_matrix(X)):
                gap = datafit.duality_gap(
                    X_used, y, w, b, alpha, sample_weight=sw, weights=c, fit_intercept=fit_intercept
                )
                assert gap >= objective(w, b) - optimum - 1e-12
    gap_at_best = datafit.duality_gap(
        X, y, w_best, b_best, alpha, sample_weight=sw, weights=c, fit_intercept=fit_intercept
    )
    assert abs(gap_at_best) <= 1e-9
