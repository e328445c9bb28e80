"""Cases of l1reg.jax: the optax transformations."""

from __future__ import annotations

from house import Case

_WORK = ("optax:masked", "optax:scale_by_adam", "l1reg.jax:_proximal_transformation")

CASES = [
    Case(
        "l1reg.jax.prox_l1",
        lambda: {
            "lambda_reg": 0.1,
            "learning_rate": 0.1,
            "mask": {"w": True, "b": False},
            "relax_after": 3,
        },
        work=_WORK,
    ),
    Case(
        "l1reg.jax.prox_group_l1",
        lambda: {
            "lambda_reg": 0.1,
            "learning_rate": 0.1,
            "axis": 1,
            "mask": {"w": True, "b": False},
            "relax_after": 3,
        },
        work=_WORK,
    ),
    Case(
        "l1reg.jax.adam_l1",
        lambda: {
            "learning_rate": 1e-3,
            "lambda_reg": 0.01,
            "b1": 0.9,
            "b2": 0.999,
            "eps": 1e-8,
            "axis": 1,
            "mask": {"w": True, "b": False},
            "relax_after": 3,
        },
        work=_WORK,
    ),
]
