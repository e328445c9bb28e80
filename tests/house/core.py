"""Cases of the core functions: the penalty and the prox on arrays."""

from __future__ import annotations

import numpy as np

import l1reg
from house import Case, method


def _weights() -> list:
    return [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([-1.0, 3.0])]


CASES = [
    Case(
        "l1reg.l1_norm",
        lambda: {"weights": _weights(), "owner": "l1_norm"},
        work=("l1reg.regularization:_total",),
        arrays=("weights",),  # named by the path of the leaf that is wrong
    ),
    Case(
        "l1reg.l1_regularization",
        lambda: {"weights": _weights(), "lambda_reg": 0.01},
        work=("l1reg.regularization:_total",),
        arrays=("weights",),
    ),
    Case(
        "l1reg.prox_l1",
        lambda: {"x": np.array([-2.0, 0.5, 3.0]), "threshold": 1.0},
        work=("l1reg.prox:_shrinkage",),
    ),
    Case(
        "l1reg.prox_l1_",
        lambda: {"x": np.array([-2.0, 0.5, 3.0]), "threshold": 1.0},
        work=("l1reg.prox:_shrinkage",),
    ),
]


def _penalty_cases(name: str, make, w) -> list:
    """The constructor of a penalty and its five methods, on the point ``w``."""
    target = f"l1reg.{name}"
    return [
        Case(f"{target}.value", lambda: {"self": make(), "w": w()}, call=method("value")),
        Case(
            f"{target}.prox",
            lambda: {"self": make(), "w": w(), "step": 0.5},
            call=method("prox"),
        ),
        Case(
            f"{target}.subgradient", lambda: {"self": make(), "w": w()}, call=method("subgradient")
        ),
        Case(
            f"{target}.subdiff_distance",
            lambda: {"self": make(), "w": w(), "grad": -w()},
            call=method("subdiff_distance"),
        ),
        Case(
            f"{target}.alpha_max",
            lambda: {"self": make(), "grad_at_zero": w()},
            call=method("alpha_max"),
        ),
    ]


def _matrix() -> np.ndarray:
    return np.array([[1.0, -2.0, 0.0], [0.5, 0.0, 3.0]])


CASES += [
    Case("l1reg.Penalty", lambda: {"lambda_reg": 0.1}),
    Case("l1reg.L1", lambda: {"lambda_reg": 0.1}),
    Case("l1reg.WeightedL1", lambda: {"lambda_reg": 0.1, "weights": [1.0, 0.0, 2.0]}),
    Case("l1reg.GroupL1", lambda: {"lambda_reg": 0.1, "axis": 0}),
    *_penalty_cases("Penalty", lambda: l1reg.Penalty(0.1), _matrix),
    *_penalty_cases("L1", lambda: l1reg.L1(0.1), _matrix),
    *_penalty_cases("WeightedL1", lambda: l1reg.WeightedL1(0.1, [1.0, 0.0, 2.0]), _matrix),
    *_penalty_cases("GroupL1", lambda: l1reg.GroupL1(0.1, axis=0), _matrix),
]
