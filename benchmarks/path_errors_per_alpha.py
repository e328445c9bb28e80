"""Question: along the path of bench_path.py, which alphas miss 1e-6 at each tol, and why?

Same problem, alphas and reference as bench_path.py (l1reg's path at tol=1e-12). For each
tolerance of the half-decade ladder, l1reg's path is solved once; the script prints the worst
relative objective error, the alphas whose error is above 1e-6, how many of those ran no epoch
(a warm start already within tol), the epochs summed over the path, and, per tenth of the path,
the error, the epochs and the objective at 0 over the objective (how much looser tol makes the
gap at that alpha than the same tol relative to the objective itself).

    python benchmarks/path_errors_per_alpha.py [--quick]
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _l1bench import TARGET, machine, parse_args, versions
from bench_path import TOLERANCES, objectives, path_problem


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    from l1reg.linear_model import lasso_path

    X, y, alphas = path_problem(args.quick)

    def path(tol):
        return lasso_path(X, y, alphas=alphas, fit_intercept=False, tol=tol, max_iter=100_000)

    print(f"# path errors per alpha, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = objectives(X, y, alphas, path(1e-12).coefs)
        at_zero = 0.5 * np.mean(y**2)
        picks = np.unique(np.linspace(0, len(alphas) - 1, 11).astype(int))
        print("| tol | worst relative error | alphas above 1e-6 | of which 0 epochs | epochs |")
        print("| --- | --- | --- | --- | --- |")
        details = []
        for tol in TOLERANCES:
            result = path(tol)
            error = (objectives(X, y, alphas, result.coefs) - best) / best
            failing = np.flatnonzero(error > TARGET)
            idle = int(np.count_nonzero(result.n_iter[failing] == 0))
            listed = ", ".join(str(k) for k in failing) if failing.size else "none"
            print(
                f"| {tol:g} | {error.max():.1e} | {listed} | {idle} | {result.n_iter.sum()} |",
                flush=True,
            )
            details.append((tol, error, result.n_iter))
        print()
        print("| tol | " + " | ".join(f"alpha {k}" for k in picks) + " |")
        print("| --- |" + " --- |" * picks.size)
        ratio = " | ".join(f"{at_zero / best[k]:.0f}" for k in picks)
        print(f"| objective at 0 / objective | {ratio} |")
        for tol, error, n_iter in details:
            cells = " | ".join(f"{error[k]:.0e} ({n_iter[k]})" for k in picks)
            print(f"| {tol:g}: error (epochs) | {cells} |")


if __name__ == "__main__":
    main()
