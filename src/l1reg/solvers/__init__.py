"""Solvers: the only code in l1reg that iterates.

- :mod:`l1reg.solvers.coordinate_descent`: working-set coordinate descent with gap-safe screening
  and Anderson extrapolation, for the separable weighted L1; the problems it solves are
  prepared by ``_quadratic.py`` (the Lasso) and ``_logistic.py``, and their loops are compiled
  with numba (imported at the first problem, not here) in ``_cd_*.py``;
- :mod:`l1reg.solvers.fista`: accelerated proximal gradient written once on the array API, so it
  runs on NumPy arrays, SciPy sparse matrices and torch tensors (on any device), with any
  penalty that has a prox.
"""

from ._logistic import LogisticProblem
from ._quadratic import (
    GramQuadraticProblem,
    QuadraticProblem,
    SharedGram,
    quadratic_problem,
    uses_gram,
)
from .coordinate_descent import SolveResult, solve
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
    "uses_gram",
]
