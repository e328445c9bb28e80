"""Check: FISTA (l1reg.solvers.fista) on torch CUDA tensors gives the CPU solution, and its time.

Lasso and L1 logistic regression on dense 2000x5000 (Toeplitz 0.5) at alpha_max/10, float64 and
float32 on the GPU, against coordinate descent on the CPU (duality gap 1e-10 times the objective
at 0). Prints the largest coefficient difference, the gap reached and the time.

    python benchmarks/check_fista_gpu.py [cuda|cpu]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from _l1bench import toeplitz_design

from l1reg.datafits import Logistic, Quadratic
from l1reg.solvers import LogisticProblem, QuadraticProblem, fista, solve


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    n, p = (2000, 5000) if device == "cuda" else (200, 500)  # "cpu": a quick dry run
    if device == "cuda":
        print("device:", torch.cuda.get_device_name(0))
    rng = np.random.default_rng(0)
    X = toeplitz_design(n, p, 0.5, rng)
    w = np.zeros(p)
    w[rng.choice(p, 20, replace=False)] = rng.uniform(1, 2, 20)
    z = X @ w + rng.standard_normal(n)
    for kind, y, problem_class, datafit in (
        ("quadratic", z, QuadraticProblem, Quadratic()),
        ("logistic", np.where(z > np.median(z), 1.0, -1.0), LogisticProblem, Logistic()),
    ):
        problem = problem_class(X, y)
        alpha = problem.alpha_max() / 10
        reference = solve(problem, alpha, problem.init_state(), tol=1e-10, max_iter=100_000)
        for dtype in (torch.float64, torch.float32):
            Xt = torch.as_tensor(X, dtype=dtype, device=device)
            yt = torch.as_tensor(y, dtype=dtype, device=device)
            fista(Xt, yt, alpha, datafit=kind, tol=1e-2)  # warm-up (kernels, cuBLAS)
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            sync()
            start = time.perf_counter()
            result = fista(Xt, yt, alpha, datafit=kind, tol=1e-6, max_iter=20_000)
            sync()
            seconds = time.perf_counter() - start
            coef = result.coef.double().cpu().numpy()
            diff = np.abs(coef - reference.coef).max() / np.abs(reference.coef).max()
            gap = datafit.duality_gap(X, y, coef, result.intercept, alpha)
            print(
                f"{kind} {dtype}: {result.n_iter} iterations, {seconds:.3f} s, converged "
                f"{result.converged}, max rel. coef diff {diff:.1e}, CPU-checked gap "
                f"{gap:.2e} (objective at 0: {problem.objective_at_zero:.3e}), support "
                f"{np.count_nonzero(coef)} vs {np.count_nonzero(reference.coef)}"
            )


if __name__ == "__main__":
    main()
