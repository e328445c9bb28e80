"""Shared pieces of the linear-model benchmarks: the problems of issue 3, the peers, the timing.

Every solver is timed at the loosest tolerance (from a ladder of tolerances) that brings its
objective within ``TARGET`` (relative) of the best objective found by any solver, so that each is
timed at the same accuracy. Times are medians over repeats; ratios are peer time / l1reg time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

TARGET = 1e-6
TOLERANCES = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12]


# --- problems ---------------------------------------------------------------------------------


@dataclass
class Problem:
    name: str
    X: np.ndarray | sp.spmatrix
    y: np.ndarray
    kind: str  # "lasso" or "logistic"


def toeplitz_design(n: int, p: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian rows with correlation ``rho^|i-j|`` between features (an AR(1) across columns)."""
    X = np.empty((n, p), order="F")
    X[:, 0] = rng.standard_normal(n)
    scale = np.sqrt(1 - rho**2)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + scale * rng.standard_normal(n)
    return np.ascontiguousarray(X)


def _target(X, n_true: int, rng: np.random.Generator, snr: float = 3.0) -> np.ndarray:
    p = X.shape[1]
    w = np.zeros(p)
    support = rng.choice(p, n_true, replace=False)
    w[support] = rng.choice([-1.0, 1.0], n_true) * rng.uniform(1, 2, n_true)
    signal = np.asarray(X @ w).ravel()
    noise = rng.standard_normal(signal.shape[0])
    return signal + noise * np.linalg.norm(signal) / (snr * np.linalg.norm(noise))


def lasso_problems(quick: bool = False) -> list[Problem]:
    rng = np.random.default_rng(0)
    problems = []
    X = toeplitz_design(500, 5000, 0.5, rng)
    problems.append(Problem("dense 500x5000", X, _target(X, 20, rng), "lasso"))
    X = toeplitz_design(10000, 500, 0.5, rng)
    problems.append(Problem("dense 10000x500", X, _target(X, 20, rng), "lasso"))
    if not quick:
        X = sp.random(
            20000, 50000, density=1e-3, format="csc", random_state=1, data_rvs=rng.standard_normal
        )
        problems.append(Problem("sparse 20000x50000", X, _target(X, 20, rng), "lasso"))
    return problems


def logistic_problem() -> Problem:
    rng = np.random.default_rng(2)
    X = toeplitz_design(2000, 5000, 0.5, rng)
    z = _target(X, 20, rng)
    return Problem("logistic 2000x5000", X, np.where(z > 0, 1.0, -1.0), "logistic")


# --- objectives -------------------------------------------------------------------------------


def objective(problem: Problem, alpha: float, coef: np.ndarray, intercept: float) -> float:
    coef = np.asarray(coef, dtype=np.float64).ravel()
    z = np.asarray(problem.X @ coef).ravel() + float(np.ravel(intercept)[0])
    if problem.kind == "lasso":
        return 0.5 * np.mean((problem.y - z) ** 2) + alpha * np.abs(coef).sum()
    return np.mean(np.logaddexp(0, -problem.y * z)) + alpha * np.abs(coef).sum()


def alpha_max(problem: Problem) -> float:
    from l1reg.datafits import Logistic, Quadratic

    datafit = Quadratic() if problem.kind == "lasso" else Logistic()
    return datafit.alpha_max(problem.X, problem.y)


# --- solvers: (problem, alpha, tol) -> (coef, intercept) ---------------------------------------

Solver = Callable[[Problem, float, float], tuple[np.ndarray, float]]


def l1reg_fit(problem, alpha, tol):
    from l1reg.linear_model import L1LogisticRegression, Lasso

    if problem.kind == "lasso":
        model = Lasso(alpha=alpha, tol=tol, max_iter=100_000).fit(problem.X, problem.y)
    else:
        model = L1LogisticRegression(alpha=alpha, tol=tol, max_iter=100_000).fit(
            problem.X, problem.y
        )
    return model.coef_, model.intercept_


def sklearn_fit(problem, alpha, tol):
    from sklearn.linear_model import Lasso, LogisticRegression

    n = problem.X.shape[0]
    if problem.kind == "lasso":
        model = Lasso(alpha=alpha, tol=tol, max_iter=100_000).fit(problem.X, problem.y)
    else:
        # liblinear penalizes the intercept: with intercept_scaling=1e4 its penalty is negligible.
        model = LogisticRegression(
            C=1 / (n * alpha),
            l1_ratio=1.0,
            solver="liblinear",
            tol=tol,
            max_iter=100_000,
            intercept_scaling=1e4,
        )
        model.fit(problem.X, problem.y)
    return model.coef_, model.intercept_


def skglm_fit(problem, alpha, tol):
    from skglm import Lasso, SparseLogisticRegression

    if problem.kind == "lasso":
        model = Lasso(alpha=alpha, tol=tol, max_iter=1000, max_epochs=100_000)
    else:
        model = SparseLogisticRegression(alpha=alpha, tol=tol, max_iter=1000, max_epochs=100_000)
    model.fit(problem.X, problem.y)
    return model.coef_, model.intercept_


def celer_fit(problem, alpha, tol):
    from celer import Lasso

    if problem.kind == "lasso":
        model = Lasso(alpha=alpha, tol=tol, max_iter=1000, max_epochs=100_000)
    else:
        # celer 0.7 fits no intercept for logistic regression: it is timed on the problem
        # without one, against its own best objective (see logistic_without_intercept).
        return None
    model.fit(problem.X, problem.y)
    return model.coef_, model.intercept_


SOLVERS: dict[str, Solver] = {
    "l1reg": l1reg_fit,
    "scikit-learn": sklearn_fit,
    "skglm": skglm_fit,
    "celer": celer_fit,
}


# --- timing -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def calibrate(
    solver: Solver, problem: Problem, alpha: float, best: float, tolerances=TOLERANCES
) -> tuple[float | None, float]:
    """The loosest tolerance whose objective is within TARGET of ``best`` (None if none is)."""
    value = np.inf
    for tol in tolerances:
        result = quiet(solver, problem, alpha, tol)
        if result is None:  # the solver does not handle this problem
            return None, np.nan
        coef, intercept = result
        value = objective(problem, alpha, coef, intercept)
        if (value - best) <= TARGET * abs(best):
            return tol, value
    return None, value


def reference_objective(problem: Problem, alpha: float) -> float:
    """A certified objective: l1reg at a duality gap of 1e-12 times the objective at 0."""
    coef, intercept = quiet(l1reg_fit, problem, alpha, 1e-12)
    return objective(problem, alpha, coef, intercept)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller problems, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5)")
    parser.add_argument("--only", default="", help="run the problems whose name contains this")
    parser.add_argument("--ratios", default=None, help="alpha_max divisors, e.g. 10,100")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    return args


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def versions() -> str:
    import celer
    import numba
    import skglm
    import sklearn

    return (
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, skglm {skglm.__version__}, "
        f"celer {celer.__version__}, numba {numba.__version__}"
    )
