"""Question: is LassoCV (5 folds, 100 alphas) at most half of scikit-learn's LassoCV?

"At the same accuracy": each runs at the loosest tolerance (from a ladder) whose cross-validated
errors (mse_path_) are within 1e-4 (relative, worst entry) of l1reg's at tol=1e-10, with the same
folds and the same alpha grid. Both are also timed at their default tol=1e-4, where scikit-learn's
looser criterion (gap <= tol * ||y||^2, half as strict as l1reg's at the same tol, checked only
once the coordinate updates are small) can leave its mse_path_ further from the reference.
n_jobs=1 and n_jobs=2. skglm and celer ship no LassoCV and are left out. Medians over repeats.

    python benchmarks/bench_lasso_cv.py [--quick] [--repeats N] [--only NAME]
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _l1bench import lasso_problems, machine, parse_args, timed, versions
from sklearn.model_selection import KFold

ACCURACY = 1e-4
LADDER = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    from sklearn.linear_model import LassoCV as SkLassoCV

    from l1reg.linear_model import LassoCV

    estimators = {"l1reg": LassoCV, "scikit-learn": SkLassoCV}
    problems = lasso_problems(quick=True)
    if args.quick:
        problems = problems[1:]
    problems = [problem for problem in problems if args.only in problem.name]
    print(f"# LassoCV, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print(
        "| problem | n_jobs | solver | tol | worst rel. error of mse_path_ | median (s) | "
        "scikit-learn / l1reg |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for problem in problems:
        cv = list(KFold(5, shuffle=True, random_state=0).split(problem.X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = LassoCV(cv=cv, tol=1e-10, max_iter=100_000).fit(problem.X, problem.y)

            def error(model, reference=reference):
                return float(
                    np.max(np.abs(model.mse_path_ - reference.mse_path_) / reference.mse_path_)
                )

            # the loosest tolerance of each that reaches the accuracy (single-threaded)
            chosen = {}
            for name, estimator in estimators.items():
                chosen[name] = None
                for tol in LADDER:
                    model = estimator(cv=cv, tol=tol, max_iter=100_000).fit(problem.X, problem.y)
                    if error(model) <= ACCURACY:
                        chosen[name] = tol
                        break
            for n_jobs in (1, 2):
                for label, tols in (
                    ("same accuracy", chosen),
                    ("default tol", dict.fromkeys(estimators, 1e-4)),
                ):
                    times = {}
                    for name, estimator in estimators.items():
                        tol = tols[name]
                        if tol is None:
                            times[name] = (None, np.nan, np.nan)
                            continue
                        seconds, model = timed(
                            lambda e=estimator, t=tol, j=n_jobs, p=problem, cv=cv: e(
                                cv=cv, tol=t, max_iter=100_000, n_jobs=j
                            ).fit(p.X, p.y),
                            args.repeats,
                        )
                        times[name] = (tol, error(model), seconds)
                    ours = times["l1reg"][2]
                    for name, (tol, err, seconds) in times.items():
                        tol_text = f"{tol:g} ({label})" if tol else "none reached 1e-4"
                        ratio = "" if name == "l1reg" else f"{seconds / ours:.2f}"
                        print(
                            f"| {problem.name} | {n_jobs} | {name} | {tol_text} | {err:.1e} | "
                            f"{seconds:.3f} | {ratio} |",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
