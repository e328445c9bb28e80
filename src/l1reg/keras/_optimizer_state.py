"""Every read of Keras's private optimizer state, behind small named functions.

``l1reg.keras.ProximalL1`` follows the optimizer's step: it needs the slots of the adaptive
optimizers (``_velocities``, ``_velocity_hats``, ``_u``, ``_accumulators``,
``_average_gradients``), the index of a variable in them (``_get_variable_index``), the learning
rate as set (``_learning_rate``) and as used (``_get_current_learning_rate``), and a hook at
the end of ``apply`` / ``stateless_apply``. None of these is public Keras API; a Keras upgrade
that renames one breaks this module only (``tests/test_keras.py`` checks each accessor on each
supported optimizer and backend).
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = [
    "current_learning_rate",
    "learning_rate_setting",
    "metric_slots",
    "restore_method",
    "variable_index",
    "wrap_method",
]


def metric_slots(optimizer: Any) -> tuple[list[list[Any]], Any] | None:
    """The diagonal metric ``D`` in which ``optimizer`` steps, or None for the plain one (SGD).

    Returns (for each kind of slot the metric needs, the optimizer's list of those slots, indexed
    like its variables; a function ``(slots, iterations, sqrt) -> D``). Keras's Adam step is
    ``lr * m_hat / D`` with ``D = sqrt(v_hat) + eps``; the others likewise with their denominator.
    """
    optimizers = keras.optimizers
    epsilon = float(getattr(optimizer, "epsilon", 0.0) or 0.0)
    if isinstance(optimizer, (optimizers.Adam, optimizers.Nadam)):  # AdamW is an Adam
        beta_2 = float(optimizer.beta_2)
        second = (
            optimizer._velocity_hats
            if getattr(optimizer, "amsgrad", False)
            else optimizer._velocities
        )

        def adam(slots, iterations, sqrt):
            return sqrt(slots[0] / (1 - beta_2**iterations)) + epsilon

        return [second], adam
    if isinstance(optimizer, optimizers.Adamax):
        return [optimizer._u], lambda slots, iterations, sqrt: slots[0] + epsilon
    if isinstance(optimizer, optimizers.Adagrad):
        return [optimizer._accumulators], lambda slots, iterations, sqrt: sqrt(slots[0] + epsilon)
    if isinstance(optimizer, optimizers.RMSprop):
        if optimizer.centered:
            return [optimizer._velocities, optimizer._average_gradients], (
                lambda slots, iterations, sqrt: sqrt(slots[0] - slots[1] * slots[1] + epsilon)
            )
        return [optimizer._velocities], lambda slots, iterations, sqrt: sqrt(slots[0] + epsilon)
    return None


def variable_index(optimizer: Any, variable: Any) -> int:
    """The index of ``variable`` in the optimizer's slot lists."""
    return optimizer._get_variable_index(variable)


def learning_rate_setting(optimizer: Any) -> Any:
    """The learning rate as set: a number, a variable or a ``LearningRateSchedule``."""
    return optimizer._learning_rate


def current_learning_rate(optimizer: Any) -> Any:
    """The learning rate of the current step (a variable, a tensor or a callable)."""
    return optimizer._get_current_learning_rate()


def wrap_method(optimizer: Any, name: str, make: Any) -> None:
    """Replace ``optimizer.<name>`` (``apply`` or ``stateless_apply``) by ``make(original)``,
    as an instance attribute; :func:`restore_method` takes it off."""
    setattr(optimizer, name, make(getattr(optimizer, name)))


def restore_method(optimizer: Any, name: str) -> None:
    """Undo :func:`wrap_method`: the class's method shows again."""
    delattr(optimizer, name)
