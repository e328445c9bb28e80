"""Solvers: duality-gap certificates, sparse == dense, float32, FISTA == coordinate descent."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from l1reg.datafits import Logistic, Quadratic
from l1reg.solvers import GramQuadraticProblem, LogisticProblem, QuadraticProblem, fista, solve

PROBLEMS = {"quadratic": (QuadraticProblem, Quadratic()), "logistic": (LogisticProblem, Logistic())}


def _data(kind, seed=0, n=60, p=40, density=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + rng.uniform(-2, 2, p)  # uncentered columns
    if density is not None:
        X[rng.uniform(size=X.shape) > density] = 0
    w = np.zeros(p)
    w[:5] = rng.standard_normal(5) * 2
    z = X @ w + 0.5 + 0.3 * rng.standard_normal(n)
    y = z if kind == "quadratic" else np.where(z > np.median(z), 1.0, -1.0)
    sw = rng.uniform(0.2, 3.0, n)
    return X, y, sw


def _solve(kind, X, y, alpha_ratio, *, sw=None, tol=1e-8, fit_intercept=True, **options):
    problem_class, _ = PROBLEMS[kind]
    problem = problem_class(X, y, sample_weight=sw, fit_intercept=fit_intercept)
    alpha = problem.alpha_max() * alpha_ratio
    options.setdefault("max_iter", 100_000)
    result = solve(problem, alpha, problem.init_state(), tol=tol, **options)
    return result, alpha


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gap_reported_is_the_reference_gap_and_below_tolerance(kind, fit_intercept):
    X, y, sw = _data(kind)
    result, alpha = _solve(kind, X, y, 0.1, sw=sw, tol=1e-6, fit_intercept=fit_intercept)
    _, datafit = PROBLEMS[kind]
    gap = datafit.duality_gap(
        X, y, result.coef, result.intercept, alpha, sample_weight=sw, fit_intercept=fit_intercept
    )
    assert result.converged
    assert 0 <= gap <= result.tol_abs
    assert gap == pytest.approx(result.gap, rel=1e-6, abs=1e-12)
    # The objective is within the gap of a much more precise solution.
    precise, _ = _solve(kind, X, y, 0.1, sw=sw, tol=1e-13, fit_intercept=fit_intercept)

    def objective(res):
        return datafit.value(X, y, res.coef, res.intercept, sw) + alpha * np.abs(res.coef).sum()

    assert -1e-12 <= objective(result) - objective(precise) <= gap + 1e-12


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
@pytest.mark.parametrize("container", [sp.csc_matrix, sp.csr_matrix])
def test_sparse_equals_dense(kind, container):
    X, y, sw = _data(kind, density=0.2)
    dense, _ = _solve(kind, X, y, 0.05, sw=sw, tol=1e-12)
    sparse, _ = _solve(kind, container(X), y, 0.05, sw=sw, tol=1e-12)
    assert np.count_nonzero(dense.coef) > 3
    np.testing.assert_allclose(sparse.coef, dense.coef, atol=1e-7)
    assert sparse.intercept == pytest.approx(dense.intercept, abs=1e-7)


def test_sparse_input_is_not_densified(monkeypatch):
    X, y, _ = _data("quadratic", density=0.1)
    Xs = sp.csc_matrix(X)
    calls = []
    for cls in (sp.csc_matrix, sp.csr_matrix):
        monkeypatch.setattr(cls, "toarray", lambda self, *a, **k: calls.append(1) or None)
    _solve("quadratic", Xs, y, 0.1)
    assert calls == []


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
def test_float32_and_fortran_order_give_the_float64_solution(kind):
    X, y, _ = _data(kind)
    reference, _ = _solve(kind, X, y, 0.1, tol=1e-10)
    single, _ = _solve(kind, X.astype(np.float32), y, 0.1, tol=1e-6)
    fortran, _ = _solve(kind, np.asfortranarray(X), y, 0.1, tol=1e-10)
    np.testing.assert_allclose(
        single.coef, reference.coef, atol=2e-3 * np.abs(reference.coef).max()
    )
    np.testing.assert_allclose(fortran.coef, reference.coef, atol=1e-12)


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
def test_screening_and_extrapolation_do_not_change_the_solution(kind):
    X, y, sw = _data(kind, p=80)
    plain, _ = _solve(kind, X, y, 0.05, sw=sw, tol=1e-12, screening=False, anderson=False)
    fast, _ = _solve(kind, X, y, 0.05, sw=sw, tol=1e-12)
    np.testing.assert_allclose(fast.coef, plain.coef, atol=1e-7)


def test_positive_and_penalty_weights():
    X, y, _ = _data("quadratic")
    result, alpha = _solve("quadratic", X, y, 0.05, tol=1e-10, positive=True)
    assert result.coef.min() >= 0 and np.count_nonzero(result.coef) > 0
    gap = Quadratic().duality_gap(X, y, result.coef, result.intercept, alpha, positive=True)
    assert gap <= result.tol_abs
    # Doubling every penalty weight is doubling alpha.
    problem = QuadraticProblem(X, y)
    doubled = solve(
        problem, alpha, problem.init_state(), weights=np.full(X.shape[1], 2.0), tol=1e-12
    )
    twice = solve(problem, 2 * alpha, problem.init_state(), tol=1e-12)
    np.testing.assert_allclose(doubled.coef, twice.coef, atol=1e-9)
    # A weight of 0 leaves a feature unpenalized: it is nonzero even at a huge alpha.
    c = np.ones(X.shape[1])
    c[7] = 0
    free = solve(problem, 100 * alpha, problem.init_state(), weights=c, tol=1e-10)
    assert np.flatnonzero(free.coef).tolist() == [7]
    least_squares = np.polyfit(X[:, 7], y, 1)[0]
    assert free.coef[7] == pytest.approx(least_squares, rel=1e-6)


def test_max_iter_stops_without_convergence():
    X, y, _ = _data("quadratic", p=200)
    result, _ = _solve("quadratic", X, y, 0.01, tol=1e-12, max_iter=3)
    assert not result.converged
    assert result.n_iter <= 3
    assert result.gap > result.tol_abs


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
def test_fista_agrees_with_coordinate_descent(kind):
    X, y, sw = _data(kind)
    cd, alpha = _solve(kind, X, y, 0.1, sw=sw, tol=1e-12)
    result = fista(X, y, alpha, datafit=kind, sample_weight=sw, tol=1e-9, max_iter=200_000)
    assert result.converged
    np.testing.assert_allclose(result.coef, cd.coef, atol=1e-3 * np.abs(cd.coef).max())
    sparse = fista(
        sp.csr_matrix(X), y, alpha, datafit=kind, sample_weight=sw, tol=1e-9, max_iter=200_000
    )
    np.testing.assert_allclose(sparse.coef, result.coef, atol=1e-10)


def test_fista_runs_on_torch_tensors():
    torch = pytest.importorskip("torch")
    X, y, _ = _data("quadratic")
    cd, alpha = _solve("quadratic", X, y, 0.1, tol=1e-12)
    result = fista(torch.from_numpy(X), torch.from_numpy(y), alpha, tol=1e-9, max_iter=100_000)
    assert isinstance(result.coef, torch.Tensor)
    np.testing.assert_allclose(result.coef.numpy(), cd.coef, atol=1e-3 * np.abs(cd.coef).max())


def test_fista_warns_with_the_gap_when_max_iter_runs_out():
    X, y, _ = _data("quadratic")
    with pytest.warns(ConvergenceWarning, match=r"duality gap \d"):
        result = fista(X, y, 0.001, tol=1e-14, max_iter=20)
    assert not result.converged


def test_an_all_zero_or_constant_column_gets_a_zero_coefficient():
    X, y, _ = _data("quadratic")
    X[:, 3] = 0.0
    X[:, 4] = 7.5
    for container in (np.asarray, sp.csc_matrix):
        result, _ = _solve("quadratic", container(X), y, 0.01)
        assert result.coef[3] == 0 and result.coef[4] == 0
        assert np.all(np.isfinite(result.coef))


def test_import_l1reg_stays_light():
    code = (
        "import sys, l1reg, l1reg.linear_model, l1reg.solvers\n"
        "heavy = [m for m in ('numba', 'torch', 'jax', 'keras', 'sklearn.linear_model')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_warning_when_converged():
    X, y, _ = _data("quadratic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _solve("quadratic", X, y, 0.1)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gram_solver_gives_the_same_solution(fit_intercept):
    X, y, sw = _data("quadratic", n=120, p=30)
    c = np.ones(X.shape[1])
    c[2] = 0.0  # an unpenalized feature
    results = []
    for problem_class in (QuadraticProblem, GramQuadraticProblem):
        problem = problem_class(X, y, sample_weight=sw, fit_intercept=fit_intercept)
        alpha = 0.05 * problem.alpha_max(c)
        state = problem.init_state()
        for positive in (False, True):
            results.append(solve(problem, alpha, state, weights=c, positive=positive, tol=1e-12))
    for plain, gram in zip(results[:2], results[2:], strict=True):
        assert gram.converged and gram.gap <= gram.tol_abs
        np.testing.assert_allclose(gram.coef, plain.coef, atol=1e-7)
        assert gram.intercept == pytest.approx(plain.intercept, abs=1e-7)
        assert gram.gap == pytest.approx(plain.gap, abs=1e-10)


@pytest.mark.parametrize("problem_class", [QuadraticProblem, GramQuadraticProblem])
def test_a_warm_start_that_meets_tol_is_still_improved(problem_class):
    # tol scales with the objective at 0: at a small alpha the previous alpha's solution can
    # meet it at once; the solver still runs a round (as scikit-learn runs an epoch).
    X, y, _ = _data("quadratic", n=80, p=40)
    problem = problem_class(X, y)
    alpha = 1e-3 * problem.alpha_max()
    state = problem.init_state()
    solve(problem, 1.05 * alpha, state, tol=1e-12)
    start = state["w"].copy()
    loose = solve(problem, alpha, state, tol=1e-2)
    assert loose.converged and loose.n_iter > 0
    precise = solve(problem, alpha, problem.init_state(), tol=1e-13)

    def objective(w):
        residual = problem.y - problem.y.mean() - (X - X.mean(axis=0)) @ w
        return 0.5 * np.mean(residual**2) + alpha * np.abs(w).sum()

    assert objective(loose.coef) - objective(precise.coef) < 0.2 * (
        objective(start) - objective(precise.coef)
    )


def test_positive_from_a_warm_start_with_negative_coefficients():
    X, y, _ = _data("quadratic")
    c = np.ones(X.shape[1])
    c[2] = 0.0  # an unpenalized feature, held at 0 by its bound below
    problem = QuadraticProblem(X, y)
    alpha = 0.05 * problem.alpha_max(c)
    state = problem.init_state()
    solve(problem, alpha, state, weights=c, tol=1e-12)
    assert (state["w"] < 0).any()
    warm = solve(problem, alpha, state, weights=c, positive=True, tol=1e-12)
    cold = solve(problem, alpha, problem.init_state(), weights=c, positive=True, tol=1e-12)
    assert warm.converged and cold.converged
    assert (warm.coef >= 0).all()
    np.testing.assert_allclose(warm.coef, cold.coef, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("price_in_epochs", [0, 3])
def test_working_set_gram_gives_the_same_solution(
    monkeypatch, dtype, fit_intercept, price_in_epochs
):
    # Working sets are solved from the Gram matrix of their columns once that pays (dense X,
    # large working sets, many epochs); here it is forced on a small problem and compared:
    # bought at once, or after 3 epochs from X in the middle of a working set's solve.
    X, y, sw = _data("quadratic", n=50, p=120)
    X = X.astype(dtype)
    c = np.ones(X.shape[1])
    c[2] = 0.0  # an unpenalized feature
    results = []
    for force in (False, True):
        if force:
            monkeypatch.setattr(
                QuadraticProblem,
                "_gram_price",
                lambda self, state, ws: price_in_epochs * ws.shape[0] * self.n_samples,
            )
        problem = QuadraticProblem(X, y, sample_weight=sw, fit_intercept=fit_intercept)
        state = problem.init_state()
        for ratio, positive in ((0.1, False), (0.01, False), (0.01, True)):
            alpha = ratio * problem.alpha_max(c)
            result = solve(problem, alpha, state, weights=c, positive=positive, tol=1e-12)
            results.append((result.coef.copy(), result.intercept, result.gap, result.tol_abs))
        assert ("gram" in state) == force
    n = len(results) // 2
    for (coef, intercept, _, _), (coef_g, intercept_g, gap_g, tol_g) in zip(
        results[:n], results[n:], strict=True
    ):
        assert gap_g <= tol_g
        np.testing.assert_allclose(coef_g, coef, atol=1e-6)
        assert intercept_g == pytest.approx(intercept, abs=1e-6)


def test_a_path_buys_the_gram_matrix_of_its_working_sets():
    X, y, _ = _data("quadratic", n=100, p=400)
    problem = QuadraticProblem(X, y)
    state = problem.init_state()
    for ratio in np.geomspace(1, 1e-3, 30):
        assert solve(problem, ratio * problem.alpha_max(), state, tol=1e-8).converged
    assert state["gram"].size >= np.count_nonzero(state["w"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_gram_blocks_are_the_products_of_the_columns(dtype):
    from l1reg.solvers._quadratic import _ColumnGram

    rng = np.random.default_rng(1)
    X = np.asfortranarray(rng.standard_normal((37, 60)).astype(dtype))
    y = rng.standard_normal(37)
    cache = _ColumnGram(X, y, max_columns=40)
    # Odd sizes, repeated and new columns, and a set that overflows the 40 columns (a reset).
    for size in (1, 2, 7, 12, 13, 30, 38, 25):
        features = np.sort(rng.choice(60, size, replace=False))
        block, cy = cache.block(features)
        columns = X[:, features].astype(np.float64)
        np.testing.assert_allclose(block, columns.T @ columns, atol=1e-10)
        np.testing.assert_allclose(cy, columns.T @ y, atol=1e-10)
        assert cache.size <= 40
