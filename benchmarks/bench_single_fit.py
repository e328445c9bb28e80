"""Question: is one l1reg fit at most as slow as the fastest peer, at the same accuracy?

Problems of issue 3: Lasso on dense 500x5000 (Toeplitz 0.5, 20 true features), dense 10000x500
and sparse 20000x50000 (density 1e-3), each at alpha_max/10 and alpha_max/100; L1 logistic
regression on 2000x5000 at alpha_max/10 and /100. Each solver runs at the loosest tolerance that
brings its objective within 1e-6 (relative) of the best; medians over repeats; ratio = peer / l1reg.

    python benchmarks/bench_single_fit.py [--quick] [--repeats N]
"""

from __future__ import annotations

import time

import numpy as np
from _l1bench import (
    SOLVERS,
    Problem,
    alpha_max,
    calibrate,
    lasso_problems,
    logistic_problem,
    machine,
    parse_args,
    quiet,
    reference_objective,
    timed,
    versions,
)


def one_pass_seconds(problem: Problem, repeats: int) -> float:
    """Median time of one ``X.T @ r``: the unit of "passes over X"."""
    r = np.random.default_rng(0).standard_normal(problem.X.shape[0])
    seconds, _ = timed(lambda: problem.X.T @ r, max(repeats, 5) * 4)
    return seconds


def measure(args):
    """Yield one row per (problem, alpha, solver): tolerance used, median seconds, passes over X."""
    problems = [*lasso_problems(args.quick), logistic_problem()]
    problems = [problem for problem in problems if args.only in problem.name]
    ratios = [10] if args.quick else [10, 100]
    if args.ratios:
        ratios = [int(r) for r in args.ratios.split(",")]
    for problem in problems:
        top = alpha_max(problem)
        unit = one_pass_seconds(problem, args.repeats)
        for ratio in ratios:
            alpha = top / ratio
            best = reference_objective(problem, alpha)
            group = []
            for name, solver in SOLVERS.items():
                tol, _ = calibrate(solver, problem, alpha, best)
                seconds = float("nan")
                if tol is not None:
                    seconds, _ = timed(
                        lambda s=solver, t=tol, p=problem, a=alpha: quiet(s, p, a, t),
                        args.repeats,
                    )
                group.append(
                    {
                        "problem": problem.name,
                        "alpha": f"alpha_max/{ratio}",
                        "solver": name,
                        "tol": tol,
                        "seconds": seconds,
                        "passes": seconds / unit,
                    }
                )
            ours = group[0]["seconds"]
            for row in group:
                row["ratio"] = row["seconds"] / ours
            yield from group


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print(f"# single fit, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print("| problem | alpha | solver | tol used | median (s) | peer / l1reg | passes over X |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in measure(args):
        tol_text = "n/a (see notes)" if row["tol"] is None else f"{row['tol']:g}"
        ratio_text = "" if row["solver"] == "l1reg" else f"{row['ratio']:.2f}"
        print(
            f"| {row['problem']} | {row['alpha']} | {row['solver']} | {tol_text} | "
            f"{row['seconds']:.4f} | {ratio_text} | {row['passes']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
