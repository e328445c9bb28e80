"""Question: is the 100-alpha Lasso path at most half of skglm's time, at the same accuracy?

Dense 500x5000 (Toeplitz 0.5, 20 true features), 100 alphas from alpha_max to alpha_max/1000,
warm-started. Every solver runs on centered data without an intercept (scikit-learn's and celer's
path functions fit none), at the loosest tolerance that brings its worst relative objective
error over the path within 1e-6 of l1reg's certified path (duality gap 1e-12 times the objective
at 0). Medians over repeats (a single timed run for a path that takes over 30 s);
ratio = peer / l1reg.

    python benchmarks/bench_path.py [--quick] [--repeats N]
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _l1bench import TARGET, lasso_problems, machine, parse_args, timed, versions

# Half-decade steps: every solver needs 1e-6 or tighter here, and a ten-fold ladder would time
# a solver that just misses one step at a tolerance ten times tighter than it needs.
TOLERANCES = [1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 3e-8, 1e-8, 1e-9]


def l1reg_path(X, y, alphas, tol):
    from l1reg.linear_model import lasso_path

    return lasso_path(X, y, alphas=alphas, fit_intercept=False, tol=tol, max_iter=100_000).coefs


def sklearn_path(X, y, alphas, tol):
    from sklearn.linear_model import lasso_path

    return lasso_path(X, y, alphas=alphas, tol=tol, max_iter=100_000)[1]


def skglm_path(X, y, alphas, tol):
    from skglm import Lasso

    model = Lasso(fit_intercept=False, tol=tol, max_iter=1000, max_epochs=100_000)
    return model.path(X, y, alphas)[1]


def celer_path(X, y, alphas, tol):
    from celer import celer_path as path

    return path(X, y, "lasso", alphas=alphas, tol=tol, max_iter=1000, max_epochs=100_000)[1]


SOLVERS = {
    "l1reg": l1reg_path,
    "scikit-learn": sklearn_path,
    "skglm": skglm_path,
    "celer": celer_path,
}


def objectives(X, y, alphas, coefs):
    residuals = y[:, None] - X @ coefs
    return 0.5 * np.mean(residuals**2, axis=0) + alphas * np.abs(coefs).sum(axis=0)


def path_problem(quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centered dense 500x5000 problem and its alphas (30 with ``quick``, else 100)."""
    problem = lasso_problems(quick=True)[0]
    X = problem.X - problem.X.mean(axis=0)
    y = problem.y - problem.y.mean()
    alpha_max = np.abs(X.T @ y).max() / X.shape[0]
    return X, y, np.geomspace(alpha_max, alpha_max / 1000, 30 if quick else 100)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    X, y, alphas = path_problem(args.quick)
    print(f"# path, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print(f"# dense {X.shape[0]}x{X.shape[1]}, {len(alphas)} alphas down to alpha_max/1000")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = objectives(X, y, alphas, l1reg_path(X, y, alphas, 1e-12))
        print("| solver | tol used | worst relative error | median (s) | peer / l1reg |")
        print("| --- | --- | --- | --- | --- |")
        results = {}
        for name, path in SOLVERS.items():
            chosen, worst = None, np.inf
            for tol in TOLERANCES:
                start = time.perf_counter()
                coefs = path(X, y, alphas, tol)
                last = time.perf_counter() - start
                worst = float(np.max((objectives(X, y, alphas, coefs) - best) / best))
                if worst <= TARGET:
                    chosen = tol
                    break
            if chosen is None:
                results[name] = (None, worst, float("nan"))
                continue
            # A path that takes minutes is timed once more, not `repeats` times.
            repeats = args.repeats if last < 30 else 1
            seconds, _ = timed(lambda p=path, t=chosen: p(X, y, alphas, t), repeats)
            results[name] = (chosen, worst, seconds)
        ours = results["l1reg"][2]
        for name, (tol, worst, seconds) in results.items():
            ratio = "" if name == "l1reg" else f"{seconds / ours:.2f}"
            tol_text = "none reached 1e-6" if tol is None else f"{tol:g}"
            print(f"| {name} | {tol_text} | {worst:.1e} | {seconds:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
