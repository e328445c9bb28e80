"""Solvers: the only code in l1reg that iterates.

- :mod:`l1reg.solvers.coordinate_descent`: working-set coordinate descent with gap-safe screening
  and Anderson extrapolation, compiled with numba (imported at the first solve, not here);
- :mod:`l1reg.solvers.fista`: accelerated proximal gradient written once on the array API, so it
  runs on NumPy arrays, SciPy sparse matrices and torch tensors (on any device).
"""

from .coordinate_descent import (
    GramQuadraticProblem,
    LogisticProblem,
    QuadraticProblem,
    SharedGram,
    SolveResult,
    quadratic_problem,
    solve,
)
from .fista import fista

__all__ = [
    "GramQuadraticProblem",
    "LogisticProblem",
    "QuadraticProblem",
    "SharedGram",
    "SolveResult",
    "fista",
    "quadratic_problem",
    "solve",
]
