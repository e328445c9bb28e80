"""Cases of l1reg.keras: the regularizers' constructors, the callback and the report."""

from __future__ import annotations

from house import Case


def _model():
    import keras

    import l1reg.keras

    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, kernel_regularizer=l1reg.keras.L1(0.01)),
        ]
    )


def _optimizer():
    import keras

    return keras.optimizers.Adam(0.01)


CASES = [
    Case("l1reg.keras.L1", lambda: {"l1": 0.01}),
    Case("l1reg.keras.GroupL1", lambda: {"l1": 0.01, "axis": 1}),
    Case(
        "l1reg.keras.ProximalL1",
        lambda: {
            "model": _model(),
            "optimizer": _optimizer(),
            "metric": "optimizer",
            "relax_after": 2,
        },
        work=("l1reg.keras._callback:_owned_weights",),
    ),
    Case(
        "l1reg.keras.sparsity",
        lambda: {"model": _model()},
        work=("l1reg.keras:sparsity_report",),
    ),
]
