r"""Keras 3 adapter of l1reg: L1 regularizers that give exact zeros, on every Keras backend.

Importing this module imports Keras, which needs a backend. Without ``KERAS_BACKEND`` Keras picks
TensorFlow; where TensorFlow is not installed this module says so and stops (it never sets
``KERAS_BACKEND`` for you: the backend is fixed for the whole process).

- :class:`L1` and :class:`GroupL1` are ``kernel_regularizer``\ s, serializable (a ``.keras`` file
  that uses them loads back with no ``custom_objects`` once ``l1reg.keras`` is imported).
- :class:`ProximalL1` is a callback: after each optimizer step it applies the proximal step of
  every :class:`L1` / :class:`GroupL1` on the model's weights, which is what makes exact zeros.
  While it does, those regularizers leave the loss (prox or loss, never both). With
  ``relax_after`` it is the relaxed lasso: select for that many epochs, then refit the selected
  weights without shrinkage, their zeros held at exactly zero.
- :func:`sparsity` is the per-weight report, the same table as ``l1reg.torch.sparsity``.

Typical use, the textbook model with exact zeros::

    import l1reg.keras

    model = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(64, activation="relu", kernel_regularizer=l1reg.keras.L1(0.01)),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, callbacks=[l1reg.keras.ProximalL1()])
    print(l1reg.keras.sparsity(model))
"""

from __future__ import annotations

from typing import Any

try:
    import keras  # noqa: F401  (the import that fails without a backend)
except ModuleNotFoundError as error:  # Keras fell back on TensorFlow, which is not installed
    if not (error.name or "").startswith("tensorflow"):
        raise
    raise ImportError(
        "l1reg.keras needs a Keras backend. Keras chose the TensorFlow backend (the default when "
        "the KERAS_BACKEND environment variable is unset), but TensorFlow is not installed. Set "
        "KERAS_BACKEND=torch or KERAS_BACKEND=jax before Python starts (or before the first "
        "`import keras`), or install TensorFlow."
    ) from error


from keras import ops

from .._validation import Instance, declare_params
from ..report import SparsityReport, sparsity_report
from ._callback import ProximalL1
from ._regularizers import L1, GroupL1, _invalid, _wording

__all__ = ["L1", "GroupL1", "ProximalL1", "sparsity"]


@declare_params(
    "sparsity",
    wording=_wording,
    model=[Instance("keras:layers.Layer", text="a Keras model or layer")],
)
def sparsity(model: Any) -> SparsityReport:
    """The sparsity report of a Keras model or layer: one row per trainable weight.

    For kernels (... x inputs x units) it counts the inputs and units that keep a nonzero weight;
    ``print(sparsity(model))`` shows the table, ``.to_dict()`` gives it as a dict.
    """
    if not hasattr(model, "trainable_weights"):
        raise TypeError(_invalid("model", "a Keras model or layer", model))
    named = [
        (getattr(variable, "path", variable.name), ops.convert_to_numpy(variable.value))
        for variable in model.trainable_weights
    ]
    return sparsity_report(named, input_axis=-2, output_axis=-1)
