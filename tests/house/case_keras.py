"""Cases of l1reg.keras: the regularizers' constructors, the callback and the report."""

from __future__ import annotations

from house import Case, method


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


def _kernel():
    import numpy as np

    return np.array([[1.0, -0.5], [0.02, 0.3], [-2.0, 0.01]], dtype="float32")


def _metric():
    import numpy as np

    return np.full((3, 2), 2.0, dtype="float32")


def _regularizer_methods(name: str, make) -> list:
    target = f"l1reg.keras.{name}"
    return [
        Case(f"{target}.value", lambda: {"self": make(), "x": _kernel()}, call=method("value")),
        Case(
            f"{target}.prox",
            lambda: {"self": make(), "x": _kernel(), "threshold": 0.1, "metric": _metric()},
            call=method("prox"),
        ),
    ]


def _stateless():
    import l1reg.keras

    model = _model()
    optimizer = _optimizer()
    optimizer.build(model.trainable_variables)
    return {
        "self": l1reg.keras.ProximalL1(model, optimizer=optimizer),
        "trainable_variables": [v.value for v in model.trainable_variables],
        "optimizer_variables": [v.value for v in optimizer.variables],
    }


def _l1():
    import l1reg.keras

    return l1reg.keras.L1(0.01)


def _group_l1():
    import l1reg.keras

    return l1reg.keras.GroupL1(0.01, axis=1)


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
    *_regularizer_methods("L1", _l1),
    *_regularizer_methods("GroupL1", _group_l1),
    Case("l1reg.keras.ProximalL1.stateless_step", _stateless, call=method("stateless_step")),
]
