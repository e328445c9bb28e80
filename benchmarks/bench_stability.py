"""Question: what does StabilitySelection (100 complementary pairs) cost, in LassoCV(cv=5) fits?

StabilitySelection(Lasso(), n_resamples=100) solves 200 paths, each on half the rows, over the
100-alpha grid of LassoCV (from alpha_max down to 1e-3 alpha_max), down to the end of its default
region (each path stops a little past it); LassoCV(cv=5) solves 6 paths (5 folds and all data)
over the whole grid. Both at their default tol=1e-4; the selector over the whole grid
(max_selected=None) shows what stopping the paths early saves. n_jobs=1 and n_jobs=2. Medians over
repeats; ratio = time / LassoCV's time in the same run, for the same n_jobs.

    python benchmarks/bench_stability.py [--quick] [--repeats N] [--only NAME]
"""

from __future__ import annotations

import time
import warnings

import numba
import numpy as np
import sklearn
from _l1bench import Problem, lasso_problems, machine, parse_args, timed


def problems() -> list[Problem]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return [Problem("diabetes 442x10", X, y, "lasso"), lasso_problems(quick=True)[0]]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    from l1reg.linear_model import Lasso, LassoCV, StabilitySelection

    runs = {
        "LassoCV(cv=5)": lambda n_jobs: LassoCV(cv=5, n_jobs=n_jobs),
        "StabilitySelection(n_resamples=100)": lambda n_jobs: StabilitySelection(
            Lasso(), n_resamples=100, n_jobs=n_jobs
        ),
        "  same, whole grid (max_selected=None)": lambda n_jobs: StabilitySelection(
            Lasso(), n_resamples=100, n_jobs=n_jobs, max_selected=None
        ),
    }
    print(
        f"# StabilitySelection, {time.strftime('%Y-%m-%d')}, {machine()}; numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, numba {numba.__version__}"
    )
    print("| problem | n_jobs | fit | median (s) | / LassoCV | selected | bound | region |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for problem in problems():
        if args.only not in problem.name:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for make in runs.values():  # compile and warm the caches once
                make(1).fit(problem.X, problem.y)
            for n_jobs in (1, 2):
                reference = None
                for name, make in runs.items():
                    seconds, model = timed(
                        lambda make=make, n_jobs=n_jobs, p=problem: make(n_jobs).fit(p.X, p.y),
                        args.repeats,
                    )
                    reference = reference or seconds
                    if isinstance(model, StabilitySelection):
                        selected = int(model.support_.sum())
                        bound = f"{model.expected_false_selections_:.3g}"
                        region = f"{model.alphas_.shape[0]} alphas, down to "
                        region += f"{model.alphas_[-1] / model.alphas_[0]:.3g} alpha_max"
                    else:
                        selected, bound, region = int(np.count_nonzero(model.coef_)), "", ""
                    print(
                        f"| {problem.name} | {n_jobs} | {name} | {seconds:.3f} | "
                        f"{seconds / reference:.1f} | {selected} | {bound} | {region} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
