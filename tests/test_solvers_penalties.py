"""Solvers: what they need from a penalty. FISTA takes penalty objects; CD the weighted L1."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from l1reg import L1, GroupL1, Penalty, WeightedL1
from l1reg.solvers import LogisticProblem, QuadraticProblem, fista, solve
from l1reg.solvers.coordinate_descent import PENALTIES
from l1reg.solvers.fista import REQUIRED_PENALTY_METHODS

PROBLEMS = {"quadratic": QuadraticProblem, "logistic": LogisticProblem}


def _data(kind, seed=0, n=60, p=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + rng.uniform(-1, 1, p)
    z = X[:, :4] @ rng.standard_normal(4) + 0.3 + 0.3 * rng.standard_normal(n)
    y = np.where(z > np.median(z), 1.0, -1.0) if kind == "logistic" else z
    return X, y


def _weights(p):
    c = np.linspace(0.5, 2.0, p)
    c[3] = 0.0  # an unpenalized feature
    return c


@pytest.mark.parametrize("kind", ["quadratic", "logistic"])
@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix])
def test_fista_with_a_penalty_object_reaches_the_weighted_l1_solution(kind, container):
    X, y = _data(kind)
    problem = PROBLEMS[kind](X, y)
    c = _weights(X.shape[1])
    alpha = 0.1 * problem.alpha_max(c)
    cases = ((L1(1.0), None), (L1(0.5), None), (WeightedL1(1.0, c), c))
    for penalty, weights in cases:
        # alpha * P: L1(0.5) at 2 alpha is L1(1.0) at alpha
        scale = 1.0 / penalty.lambda_reg
        reference = solve(problem, alpha, problem.init_state(), weights=weights, tol=1e-13)
        result = fista(
            container(X),
            y,
            alpha * scale,
            datafit=kind,
            penalty=penalty,
            tol=1e-10,
            max_iter=200_000,
        )
        assert result.converged and result.certificate == "KKT violation"
        np.testing.assert_allclose(result.coef, reference.coef, atol=1e-6)
        assert result.intercept == pytest.approx(reference.intercept, abs=1e-6)
        # The certificate is the KKT violation of alpha * P at the result, intercept included.
        datafit_grad = _gradient(kind, X, y, result.coef, result.intercept)
        grad, grad_b = datafit_grad
        distance = alpha * scale * penalty.subdiff_distance(result.coef, grad / (alpha * scale))
        assert result.gap == pytest.approx(max(distance.max(), abs(grad_b)), rel=1e-9)


def _gradient(kind, X, y, w, b):
    from l1reg.datafits import Logistic, Quadratic

    return (Logistic() if kind == "logistic" else Quadratic()).gradient(X, y, w, b)


def test_fista_with_the_l1_penalty_object_takes_the_same_steps_as_without():
    from sklearn.exceptions import ConvergenceWarning

    X, y = _data("quadratic")
    with pytest.warns(ConvergenceWarning):  # tol 0: 50 iterations each, then compared
        plain = fista(X, y, 0.05, tol=0.0, max_iter=50)
        with_object = fista(X, y, 0.05, tol=0.0, max_iter=50, penalty=L1(1.0))
    np.testing.assert_array_equal(with_object.coef, plain.coef)
    assert with_object.intercept == plain.intercept
    assert (plain.certificate, with_object.certificate) == ("duality gap", "KKT violation")


def test_fista_with_a_group_penalty_meets_its_optimality_conditions():
    # Any penalty with a prox and a subdifferential: here one group (the whole vector).
    X, y = _data("quadratic")
    penalty = GroupL1(1.0, axis=0)
    alpha = 0.3 * float(np.linalg.norm(X.T @ (y - y.mean()) / len(y))) / np.sqrt(X.shape[1])
    result = fista(X, y, alpha, penalty=penalty, tol=1e-9, max_iter=100_000)
    assert result.converged and 0 < np.count_nonzero(result.coef)
    grad, _ = _gradient("quadratic", X, y, result.coef, result.intercept)
    assert float(np.max(alpha * penalty.subdiff_distance(result.coef, grad / alpha))) < 1e-6


class _NoSubdifferential(Penalty):
    def value(self, w):
        return self.lambda_reg * np.abs(w).sum()

    def prox(self, w, step):
        return np.sign(w) * np.maximum(np.abs(w) - step * self.lambda_reg, 0)


class _NoProx:
    lambda_reg = 1.0

    def subdiff_distance(self, w, grad):
        return np.abs(grad)


class _Untouchable:
    """An X that fails on any use: the penalty must be refused before X is read."""

    def __getattr__(self, name):
        raise AssertionError(f"X.{name} was read")


@pytest.mark.parametrize(
    ("penalty", "missing"),
    [(_NoSubdifferential(1.0), "subdiff_distance"), (_NoProx(), "prox"), ("l1", "prox")],
)
def test_fista_refuses_a_penalty_without_a_required_method_before_any_work(penalty, missing):
    assert missing in REQUIRED_PENALTY_METHODS
    with pytest.raises(TypeError, match=rf"'penalty' parameter of fista.*no '{missing}' method"):
        fista(_Untouchable(), np.zeros(3), 0.1, penalty=penalty)


@pytest.mark.parametrize(("name", "value"), [("weights", np.ones(30)), ("positive", True)])
def test_fista_refuses_weights_or_positive_beside_a_penalty(name, value):
    X, y = _data("quadratic")
    with pytest.raises(ValueError, match=rf"'{name}' parameter of fista"):
        fista(X, y, 0.1, penalty=L1(1.0), **{name: value})


def test_fista_with_a_penalty_warns_with_its_certificate():
    from sklearn.exceptions import ConvergenceWarning

    X, y = _data("quadratic")
    with pytest.warns(ConvergenceWarning, match=r"KKT violation \d"):
        result = fista(X, y, 0.001, tol=1e-14, max_iter=20, penalty=L1(1.0))
    assert not result.converged


def test_coordinate_descent_states_the_penalty_it_handles():
    # The weighted L1 is the penalty CD solves: L1 is its case of weights 1, and a WeightedL1's
    # weights are solve's weights (same solution as FISTA with the object itself).
    assert PENALTIES == (L1, WeightedL1)
    assert "weighted L1" in solve.__doc__ and "soft-thresholding" in solve.__doc__
    X, y = _data("quadratic")
    problem = QuadraticProblem(X, y)
    c = _weights(X.shape[1])
    alpha = 0.1 * problem.alpha_max(c)
    cd = solve(problem, alpha, problem.init_state(), weights=c, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fista(X, y, alpha, penalty=WeightedL1(1.0, c), tol=1e-10, max_iter=100_000)
    np.testing.assert_allclose(ours.coef, cd.coef, atol=1e-6)
