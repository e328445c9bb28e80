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

import contextlib
import math
import numbers
from collections.abc import Sequence
from typing import Any

try:
    import keras
except ModuleNotFoundError as error:  # Keras fell back on TensorFlow, which is not installed
    if not (error.name or "").startswith("tensorflow"):
        raise
    raise ImportError(
        "l1reg.keras needs a Keras backend. Keras chose the TensorFlow backend (the default when "
        "the KERAS_BACKEND environment variable is unset), but TensorFlow is not installed. Set "
        "KERAS_BACKEND=torch or KERAS_BACKEND=jax before Python starts (or before the first "
        "`import keras`), or install TensorFlow."
    ) from error

import numpy as np
from keras import ops

from .report import SparsityReport, sparsity_report

__all__ = ["L1", "GroupL1", "ProximalL1", "sparsity"]

# Arrays of more values than this are summed block by block (as l1reg.l1_regularization does), so
# that no float32 running sum covers more than _BLOCK terms.
_BLOCK = 4096
_LOW_PRECISION = ("float16", "bfloat16")
_METRICS = ("optimizer", "plain")
# Newton steps of the group prox in the optimizer's metric (from its lower-bound start, the relative
# error of the group norm is below 1e-6 after 5, even with D spread over six decades in a group).
_NEWTON_STEPS = 5


def _invalid(name: str, expected: str, value: object) -> str:
    """Keras's wording: ``Invalid value for argument l1: expected ... Received: l1=-1``."""
    return f"Invalid value for argument {name}: expected {expected}. Received: {name}={value!r}"


def _check_l1(value: object) -> float:
    expected = "a non-negative float"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(_invalid("l1", expected, value))
    as_float = float(value)
    if not math.isfinite(as_float) or as_float < 0:
        raise ValueError(_invalid("l1", expected, value))
    return as_float


def _check_relax_after(value: object) -> int | None:
    if value is None:
        return None
    expected = "None or a non-negative int (a number of epochs)"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(_invalid("relax_after", expected, value))
    if value < 0:
        raise ValueError(_invalid("relax_after", expected, value))
    return int(value)


def _check_axis(axis: object) -> int | tuple[int, ...]:
    def is_int(a: object) -> bool:
        return isinstance(a, numbers.Integral) and not isinstance(a, bool)

    if is_int(axis):
        return int(axis)
    if isinstance(axis, (tuple, list)) and axis and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(_invalid("axis", "an int or a non-empty tuple of ints", axis))


def _accumulation_dtype(dtype: Any) -> str:
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype in _LOW_PRECISION:
        return "float32"
    if "float" in dtype:
        return dtype
    return keras.config.floatx()


def _sum(x: Any) -> Any:
    """Sum of all values of ``x``, blocked so that no running sum covers more than _BLOCK values.

    Up to _BLOCK values it is ``ops.sum(x)``, the very sum of ``keras.regularizers.L1``.
    """
    n = math.prod(x.shape) if all(d is not None for d in x.shape) else None
    if n is None or n <= _BLOCK:
        return ops.sum(x)
    flat = ops.reshape(x, (-1,))
    head = (n // _BLOCK) * _BLOCK
    total = _sum(ops.sum(ops.reshape(flat[:head], (-1, _BLOCK)), axis=1))
    return total + ops.sum(flat[head:]) if head < n else total


class _ProximalRegularizer(keras.regularizers.Regularizer):
    """The part :class:`L1` and :class:`GroupL1` share: ``l1``, configs and prox ownership.

    While a :class:`ProximalL1` applies this regularizer's proximal step, it *owns* it and calling
    the regularizer returns 0: the penalty is in the prox, not in the loss (it must not be in both).
    """

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _check_l1(l1)
        self._owners: set[int] = set()

    @property
    def applied_by_prox(self) -> bool:
        """True while a :class:`ProximalL1` applies this penalty (then ``__call__`` returns 0)."""
        return bool(self._owners)

    def __call__(self, x: Any) -> Any:
        if self._owners:
            return ops.zeros((), dtype=_accumulation_dtype(x.dtype))
        return self.value(x)

    def value(self, x: Any) -> Any:
        """The penalty of ``x``, whether or not a :class:`ProximalL1` owns this regularizer."""
        raise NotImplementedError

    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        """The proximal step of ``threshold / l1 * penalty`` on ``x`` (threshold = lr * l1).

        ``metric`` (a tensor like ``x``, or None for the identity) is the diagonal metric ``D`` of
        an adaptive optimizer: the prox minimises ``||w - x||_D^2 / (2 lr) + penalty(w)``.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))


@keras.saving.register_keras_serializable(package="l1reg")
class L1(_ProximalRegularizer):
    r"""The L1 penalty :math:`\ell_1 \sum_i |w_i|`, a drop-in for ``keras.regularizers.L1``.

    It has Keras's values on float32 weights; float16/bfloat16 weights are summed in float32, and
    its gradient at 0 is 0 on every backend. Under :class:`ProximalL1` it gives exact zeros.

    Args:
        l1: the regularization factor, a finite float >= 0.

    >>> Dense(64, kernel_regularizer=l1reg.keras.L1(0.01))  # doctest: +SKIP
    """

    def value(self, x: Any) -> Any:
        x = ops.convert_to_tensor(x)
        dtype = _accumulation_dtype(x.dtype)
        if keras.backend.standardize_dtype(x.dtype) != dtype:
            x = ops.cast(x, dtype)
        # x * sign(x) is |x| with the gradient sign(x), which is 0 at 0 (jax's abs has 1 there).
        return ops.cast(self.l1, dtype) * _sum(x * ops.sign(x))

    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        if metric is not None:
            threshold = threshold / metric
        # x - clip(x, -t, t): sign(x) * max(|x| - t, 0) with an exact zero where |x| <= t.
        return x - ops.minimum(ops.maximum(x, -threshold), threshold)


@keras.saving.register_keras_serializable(package="l1reg")
class GroupL1(_ProximalRegularizer):
    r"""The group L1 (L2,1) penalty :math:`\ell_1 \sum_g \sqrt{|g|}\, \|w_g\|_2`.

    The L2 norm is taken along ``axis``, so each group is a slice with the other indices fixed. On
    a ``Dense`` kernel (inputs x units) ``axis=1`` makes one group per input feature (feature
    selection: under :class:`ProximalL1` whole input rows become exactly zero) and ``axis=0`` one
    group per unit (pruning). On a ``Conv2D`` kernel (h x w x in x out), ``axis=(0, 1, 3)`` groups
    by input channel and ``axis=(0, 1, 2)`` by filter.

    Args:
        l1: the regularization factor, a finite float >= 0.
        axis: an int or a tuple of ints, the axes of each group.
    """

    def __init__(self, l1: float = 0.01, axis: int | Sequence[int] = 1) -> None:
        super().__init__(l1)
        self.axis = _check_axis(axis)

    def get_config(self) -> dict[str, Any]:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {"l1": self.l1, "axis": axis}

    def _axes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        ndim = len(shape)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(
                f"Invalid value for argument axis: expected an axis of the weight, which has shape "
                f"{tuple(shape)}. Received: axis={self.axis!r}"
            )
        return tuple(sorted({a % ndim for a in axes}))

    def _squared_norms(self, x: Any, axes: tuple[int, ...]) -> Any:
        if keras.backend.standardize_dtype(x.dtype) in _LOW_PRECISION:
            x = ops.cast(x, "float32")
        return ops.sum(x * x, axis=axes, keepdims=True)

    def value(self, x: Any) -> Any:
        x = ops.convert_to_tensor(x)
        axes = self._axes(tuple(x.shape))
        if "float" not in keras.backend.standardize_dtype(x.dtype):
            x = ops.cast(x, keras.config.floatx())
        squares = self._squared_norms(x, axes)
        # sqrt has no derivative at 0: routing empty groups around it makes their gradient 0.
        positive = squares > 0
        norms = ops.where(positive, ops.sqrt(ops.where(positive, squares, 1)), 0)
        scale = math.sqrt(math.prod(x.shape[a] for a in axes))
        return ops.cast(self.l1 * scale, norms.dtype) * _sum(norms)

    def prox(self, x: Any, threshold: Any, metric: Any = None) -> Any:
        axes = self._axes(tuple(x.shape))
        scale = math.sqrt(math.prod(x.shape[a] for a in axes))
        squares = self._squared_norms(x, axes)
        group_threshold = ops.cast(threshold * scale, squares.dtype)
        if metric is None:
            norms = ops.sqrt(squares)
            keep = norms > group_threshold
            factor = ops.where(keep, 1 - group_threshold / ops.where(keep, norms, 1), 0)
            return x * ops.cast(factor, x.dtype)
        # The exact prox in the metric diag(D) (see ProximalL1): zero iff ||D z|| <= tau, else
        # x_i = z_i s / (s + tau / D_i) with s = ||x|| found by Newton's method.
        z = ops.cast(x, squares.dtype)
        # (D = 0, a coordinate without any gradient under eps = 0, gives tau / D huge and x_i ~ 0.)
        tiny = float(np.finfo(keras.backend.standardize_dtype(squares.dtype)).tiny)
        metric = ops.maximum(ops.cast(metric, squares.dtype), tiny)
        positive = group_threshold > 0
        weighted = metric * z
        keep = ops.logical_and(
            ops.sum(weighted * weighted, axis=axes, keepdims=True) > group_threshold**2, positive
        )
        c = ops.where(positive, group_threshold, 1) / metric
        safe_squares = ops.where(keep, squares, 1)
        s = ops.sqrt(safe_squares) - ops.sum(z * z * c, axis=axes, keepdims=True) / safe_squares
        s = ops.maximum(s, 0)
        for _ in range(_NEWTON_STEPS):
            a = s + c
            q2 = ops.square(z / a)
            g = ops.where(keep, ops.sum(q2, axis=axes, keepdims=True), 1)
            slope = ops.where(keep, ops.sum(q2 / a, axis=axes, keepdims=True), 1)
            s = ops.maximum(s + (ops.sqrt(g) - 1) * g / slope, 0)
        new = ops.where(keep, z * (s / (s + c)), ops.where(positive, 0, z))
        return ops.cast(new, x.dtype)


def _owned_weights(layer: Any) -> list[tuple[Any, _ProximalRegularizer]]:
    """(variable, regularizer) for every trainable weight that carries an l1reg regularizer."""
    return [
        (variable, variable.regularizer)
        for variable in layer.trainable_weights
        if isinstance(getattr(variable, "regularizer", None), _ProximalRegularizer)
    ]


def _optimizer_metric(optimizer: Any) -> tuple[list[list[Any]], Any] | None:
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


class ProximalL1(keras.callbacks.Callback):
    r"""Apply the proximal step of the model's :class:`L1` / :class:`GroupL1` after each update.

    A gradient step never makes a weight exactly zero; the proximal step does: after the optimizer
    has updated weight ``w`` with learning rate ``lr``, ``w`` becomes

    - with ``L1(l1)``: :math:`\operatorname{sign}(w)\max(|w| - \tau, 0)` (soft-thresholding);
    - with ``GroupL1(l1, axis)``: each group :math:`w_g` becomes 0 when
      :math:`\|w_g\| \le \tau\sqrt{|g|}`, and :math:`(1 - \tau\sqrt{|g|}/\|w_g\|)\, w_g` otherwise;

    with :math:`\tau = lr \cdot \ell_1` after SGD, and :math:`\tau_i = lr\cdot\ell_1 / D_i` after
    optimizers that scale their step per coordinate: the prox in the optimizer's own metric, with
    :math:`D = \sqrt{\hat v} + \epsilon` for Adam, AdamW and Nadam, :math:`u + \epsilon` for
    Adamax, :math:`\sqrt{a + \epsilon}` for Adagrad and RMSprop (the thresholds of
    ``l1reg.torch.ProximalL1``). ``metric="plain"`` uses :math:`D = 1` with any optimizer.
    Measured on the textbook model (``benchmarks/bench_keras.py --compare-metrics``,
    100 000 samples, 4 epochs of Adam, torch backend), the plain threshold leaves 0 of 640 kernel
    weights at zero, since Adam moves every weight by about ``lr`` per step whatever its gradient,
    and the optimizer's metric 480, at the textbook recipe's accuracy (98.83 % against 98.69 %).

    The group prox in the metric :math:`D` is taken exactly (the same rule in ``l1reg.torch`` and
    ``l1reg.jax``): with :math:`\tau = lr\,\ell_1\sqrt{|g|}`, each group solves
    :math:`\min_x \frac12\|x - w_g\|_D^2 + \tau\|x\|_2`, whose solution is 0 iff
    :math:`\|D_g \odot w_g\| \le \tau` (for a group that was zero before Adam's step, iff
    :math:`\|\hat m_g\| \le \ell_1\sqrt{|g|}`: the optimality condition of the penalized
    loss), and otherwise :math:`x_i = w_i\, s / (s + \tau / D_i)`, where :math:`s = \|x\|`
    is the root of :math:`\sum_i w_i^2 / (s + \tau/D_i)^2 = 1`. The function
    :math:`(\sum_i w_i^2/(s + \tau/D_i)^2)^{-1/2}` is increasing and concave in :math:`s` (the
    secular function of trust-region methods), so 5 Newton steps from the lower bound
    :math:`s_0 = \|w\| - \sum_i w_i^2 (\tau/D_i) / \|w\|^2` (Jensen; exact when :math:`D`
    is constant on the group, where the rule is block soft-thresholding with threshold
    :math:`\tau / D`) approach the root from below, to a relative error under 1e-6 even with
    :math:`D` spread over six decades in one group (on the torch backend's CPU tensors it stops
    once every step is below 1e-6 of :math:`s`). The former rule, one scalar metric per group
    (the mean of :math:`D`), kept a closed form but is not the prox in :math:`D`; at the same
    inputs kept it gave 0.07-0.38 point less accuracy (``benchmarks/group_prox_study.py``, 3
    seeds), and with ``L1(0.01)`` on the second kernel (``bench_keras.py --group-study``, torch
    backend, seed 0) 95.2 % against 97.6 % for the exact rule, both keeping the 3 relevant inputs.

    The learning rate is the one the optimizer used for the step, schedules included. While this
    callback is attached (from ``on_train_begin`` to ``on_train_end``, or inside ``with``), the
    regularizers it applies return 0 when called, so their penalty is not also in the loss; the
    compiled train and test functions are rebuilt when that changes.

    From ``model.fit``::

        model.fit(x, y, epochs=4, callbacks=[l1reg.keras.ProximalL1()])

    (on the torch backend the step runs from ``on_train_batch_end``, so ``steps_per_execution``
    must be 1; on JAX and TensorFlow it runs inside the compiled train step, at the end of the
    optimizer's ``stateless_apply`` / ``apply``).

    From a custom training loop (any backend with stateful variables)::

        with l1reg.keras.ProximalL1(model, optimizer=optimizer) as prox:
            for x, y in dataset:
                ...  # loss (model.losses give 0 for the l1reg penalties), gradients
                optimizer.apply(grads, model.trainable_variables)
                prox.step()

    and from a stateless JAX loop, ``prox.stateless_step(trainable_values, optimizer_values)``
    returns the new trainable values (jit-compatible).

    The relaxed lasso (Meinshausen 2007; glmnet's ``relax=TRUE``): a penalty strong enough to
    select also shrinks the weights it keeps. With ``relax_after=k`` the first ``k`` epochs of
    ``model.fit`` select as above; at the start of epoch ``k`` (counted as Keras counts them, so
    ``initial_epoch`` included) :meth:`relax` records the support of every weight this callback
    applies a penalty to (each weight for :class:`L1`, each group for :class:`GroupL1`), and from
    then on each step only projects onto it: what was zero stays exactly zero, the rest follows
    the optimizer with no shrinkage, and the penalty stays out of the loss::

        model.fit(x, y, epochs=4, callbacks=[l1reg.keras.ProximalL1(relax_after=2)])

    On the textbook model (``benchmarks/bench_keras.py --relax-study``, seeds 0 and 1, torch and
    JAX backends), ``GroupL1(0.02)`` with ``L1(0.01)`` on kernel 2 and ``relax_after=2`` of 4
    epochs keeps exactly the 3 relevant inputs at 99.15-99.45 % test accuracy, against
    98.54-98.94 % for the textbook ``regularizers.l1(0.01)`` and 96.51-97.15 % for the same
    penalties without relaxation.

    In a custom loop, call ``prox.relax()`` when selection should end. (On JAX the support enters
    the jitted step as a constant: ``model.fit`` traces its train step again at the switch; a
    jitted loop that calls :meth:`stateless_step` must be traced again after :meth:`relax` too.)
    The support is forgotten when the callback detaches (at the end of ``model.fit``, or on
    leaving ``with``).

    Args:
        model: the model, or None to let ``model.fit`` set it.
        optimizer: the optimizer whose steps this follows; default ``model.optimizer``.
        metric: ``"optimizer"`` (the optimizer's own metric, as above) or ``"plain"``.
        relax_after: None (select throughout), or the number of epochs of ``model.fit`` that
            select before :meth:`relax` (0 keeps the zeros the weights have when training starts).
    """

    def __init__(
        self,
        model: Any = None,
        *,
        optimizer: Any = None,
        metric: str = "optimizer",
        relax_after: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(metric, str) or metric not in _METRICS:
            raise ValueError(_invalid("metric", "'optimizer' or 'plain'", metric))
        self.metric = metric
        self.relax_after = _check_relax_after(relax_after)
        self._support: list[Any] | None = None
        self._optimizer = optimizer
        self._weights: list[tuple[Any, _ProximalRegularizer]] = []
        self._plan: tuple[Any, ...] | None = None
        self._attached = False
        self._wrapped: Any = None
        self._detach_at_end = False
        if model is not None:
            self.set_model(model)

    # -- attaching ---------------------------------------------------------------------------

    @property
    def optimizer(self) -> Any:
        optimizer = self._optimizer
        if optimizer is None:
            optimizer = getattr(self._model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "ProximalL1 needs an optimizer: compile the model, or pass ProximalL1(model, "
                "optimizer=...). Received: optimizer=None"
            )
        # A LossScaleOptimizer (mixed precision) keeps the state in its inner optimizer.
        return getattr(optimizer, "inner_optimizer", optimizer)

    def attach(self) -> None:
        """Take the model's l1reg regularizers out of the loss; ``step`` now applies them."""
        self._attach(inside_the_step=False)

    def _attach(self, inside_the_step: bool) -> None:
        if self._attached:
            return
        model = getattr(self, "_model", None)
        if model is None:
            raise ValueError("ProximalL1 has no model: pass ProximalL1(model) or use model.fit.")
        weights = _owned_weights(model)
        if not weights:
            raise ValueError(
                "ProximalL1 found no l1reg.keras.L1 or GroupL1 regularizer on the trainable "
                f"weights of model {model.name!r}: give a layer kernel_regularizer="
                "l1reg.keras.L1(...) (keras.regularizers.L1 is not applied by ProximalL1)."
            )
        optimizer = self.optimizer
        steps = getattr(model, "steps_per_execution", 1)
        if steps != 1 and not inside_the_step:
            raise ValueError(
                "ProximalL1 applies its step after every optimizer step, so it needs "
                f"steps_per_execution=1 in model.compile. Received: steps_per_execution={steps}"
            )
        accumulation = getattr(optimizer, "gradient_accumulation_steps", None)
        if accumulation:
            raise ValueError(
                "ProximalL1 does not support gradient accumulation yet. Received: "
                f"gradient_accumulation_steps={accumulation}"
            )
        for _, regularizer in weights:
            regularizer._owners.add(id(self))
        self._weights = weights
        self._plan = None
        self._attached = True
        if inside_the_step and keras.config.backend() == "jax":
            self._wrap_stateless_apply(optimizer)
        elif inside_the_step:
            self._wrap_apply(optimizer)
        _retrace(model)

    def detach(self) -> None:
        """Put the regularizers back into the loss; ``step`` no longer applies them."""
        if not self._attached:
            return
        for _, regularizer in self._weights:
            regularizer._owners.discard(id(self))
        self._weights = []
        self._plan = None
        self._support = None
        self._attached = False
        if self._wrapped is not None:
            optimizer, name = self._wrapped
            delattr(optimizer, name)  # the instance attribute; the method shows again
            self._wrapped = None
        _retrace(self._model)

    def _wrap_stateless_apply(self, optimizer: Any) -> None:
        """Make ``optimizer.stateless_apply`` end with the proximal step (JAX's ``model.fit``).

        The step then runs inside the jitted train step: no weights leave the device state, and
        ``steps_per_execution > 1`` works. A LossScaleOptimizer calls this inner optimizer only
        for finite gradients, so a skipped step skips the prox too.
        """
        original = optimizer.stateless_apply
        # (This class reads self._model, never self.model: on JAX, Callback.model writes the
        # training state back to the variables, which must not happen inside the traced step.)

        def stateless_apply(optimizer_variables, grads, trainable_variables):
            trainable, optimizer_variables = original(
                optimizer_variables, grads, trainable_variables
            )
            return self.stateless_step(trainable, optimizer_variables), optimizer_variables

        optimizer.stateless_apply = stateless_apply
        self._wrapped = (optimizer, "stateless_apply")

    def _wrap_apply(self, optimizer: Any) -> None:
        """Make ``optimizer.apply`` end with the proximal step (TensorFlow's ``model.fit``).

        The step then becomes part of the compiled train function, as on JAX: run from
        ``on_train_batch_end`` instead, its eager operations would cost more than the step itself.
        """
        original = optimizer.apply

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            result = original(grads, trainable_variables)
            self.step()
            return result

        optimizer.apply = apply
        self._wrapped = (optimizer, "apply")

    def __enter__(self) -> ProximalL1:
        self.attach()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    def on_train_begin(self, logs: Any = None) -> None:
        if self._attached:  # inside `with ProximalL1(model)`: the user steps it
            return
        # On JAX and TensorFlow, model.fit runs a compiled step: the prox goes inside it. On torch
        # it runs after each step, from on_train_batch_end (eager torch is fast at this).
        self._attach(inside_the_step=keras.config.backend() in ("jax", "tensorflow"))
        self._detach_at_end = True

    def on_train_end(self, logs: Any = None) -> None:
        if self._detach_at_end:
            self._detach_at_end = False
            self.detach()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self.relax_after is not None and epoch >= self.relax_after and self._attached:
            self.relax()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._wrapped is None and self._detach_at_end:
            self.step()

    # -- the relaxed lasso -------------------------------------------------------------------

    @property
    def relaxed(self) -> bool:
        """True once :meth:`relax` has fixed the support (until the callback detaches)."""
        return self._support is not None

    def relax(self) -> None:
        """End selection: fix the current support; later steps project onto it and never shrink.

        The support is the set of nonzero weights (:class:`L1`) or nonzero groups
        (:class:`GroupL1`) of every weight this callback applies a penalty to. Called again, it
        does nothing: the support recorded first stays.
        """
        if not self._attached:
            raise ValueError(
                "ProximalL1.relax needs the callback attached: call it inside "
                "`with ProximalL1(model) as prox:` (or after prox.attach()), or pass "
                "relax_after to use it from model.fit."
            )
        if self._support is not None:
            return
        # On JAX inside model.fit, the variables may lag the training state: write it back first
        # (as Callback.model does; this runs between steps, never inside the traced one).
        sync = getattr(self._model, "jax_state_sync", None)
        if sync is not None:
            sync()
        support = []
        for variable, regularizer in self._weights:
            value = variable.value
            nonzero = ops.not_equal(value, ops.zeros((), dtype=value.dtype))
            if isinstance(regularizer, GroupL1):
                axes = regularizer._axes(tuple(value.shape))
                nonzero = ops.any(nonzero, axis=axes, keepdims=True)
            support.append(nonzero)
        self._support = support
        self._plan = None
        if self._wrapped is not None:  # a compiled model.fit step: traced again with it
            _retrace(self._model)

    # -- the proximal step -------------------------------------------------------------------

    def _build_plan(self) -> tuple[Any, ...]:
        optimizer = self.optimizer
        if not optimizer.built:
            raise ValueError(
                "ProximalL1.step runs after an optimizer step; the optimizer has not taken one "
                "(it is not built yet)."
            )
        if self._support is not None:
            return self._projection_plan(self._support)
        spec = _optimizer_metric(optimizer) if self.metric == "optimizer" else None
        slot_variables = []
        if spec is not None:
            slots, metric_of = spec
            for variable, _ in self._weights:
                index = optimizer._get_variable_index(variable)
                slot_variables.append([slot[index] for slot in slots])
        schedule = optimizer._learning_rate
        is_schedule = isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
        regularizers = [regularizer for _, regularizer in self._weights]

        def proximal(values, slots, iterations, learning_rate):
            # iterations counts the steps taken; the step just taken used lr(iterations - 1).
            if is_schedule:
                learning_rate = schedule(iterations - 1)
            learning_rate = ops.cast(learning_rate, "float32")
            # (at least 1: before any step Adam's bias correction 1 - beta_2**0 would be 0)
            steps = ops.maximum(ops.cast(iterations, "float32"), 1.0)
            new_values = []
            for i, (value, regularizer) in enumerate(zip(values, regularizers)):
                metric = None
                if spec is not None:
                    moments = [ops.cast(slot, "float32") for slot in slots[i]]
                    metric = metric_of(moments, steps, ops.sqrt)
                threshold = learning_rate * regularizer.l1
                if keras.backend.standardize_dtype(value.dtype) in _LOW_PRECISION:
                    new = regularizer.prox(ops.cast(value, "float32"), threshold, metric)
                    new_values.append(ops.cast(new, value.dtype))
                else:
                    if metric is not None:
                        metric = ops.cast(metric, value.dtype)
                    new_values.append(
                        regularizer.prox(value, ops.cast(threshold, value.dtype), metric)
                    )
            return new_values

        run = proximal
        if keras.config.backend() == "jax":
            import jax

            run = jax.jit(proximal)
        elif keras.config.backend() == "torch" and not is_schedule:
            # Tiny tensors make each keras.ops call cost its Python overhead; the same arithmetic
            # in torch, in place, costs a third (and schedules keep the generic path).
            metric_fn = None if spec is None else metric_of

            def run(values, slots, iterations, learning_rate):
                _torch_proximal_(values, slots, iterations, learning_rate, regularizers, metric_fn)
                return values

        return (run, slot_variables, is_schedule)

    def _projection_plan(self, support: list[Any]) -> tuple[Any, ...]:
        """After :meth:`relax`: the projection onto the support, no shrinkage."""

        def project(values, slots, iterations, learning_rate):
            return [
                ops.where(kept, value, ops.zeros_like(value))
                for value, kept in zip(values, support)
            ]

        run = project
        if keras.config.backend() == "jax":
            import jax

            run = jax.jit(project)  # (the support is a constant of the trace)
        elif keras.config.backend() == "torch":
            dropped = [ops.logical_not(kept) for kept in support]

            def run(values, slots, iterations, learning_rate):
                for value, zero in zip(values, dropped):
                    value.masked_fill_(zero, 0)
                return values

        # (no optimizer slots; "is a schedule" skips reading the learning rate)
        return (run, [], True)

    def _new_values(self) -> list[Any]:
        if not self._attached:
            raise ValueError(
                "ProximalL1.step needs the callback attached: call it inside "
                "`with ProximalL1(model) as prox:` (or after prox.attach()), or use model.fit."
            )
        if self._plan is None:
            self._plan = self._build_plan()
        run, slot_variables, is_schedule = self._plan
        optimizer = self.optimizer
        learning_rate = 0.0 if is_schedule else optimizer._get_current_learning_rate()
        if isinstance(learning_rate, keras.Variable):
            learning_rate = learning_rate.value
        elif callable(learning_rate):
            learning_rate = learning_rate()
        with _no_grad():
            return run(
                [variable.value for variable, _ in self._weights],
                [[slot.value for slot in slots] for slots in slot_variables],
                optimizer.iterations.value,
                learning_rate,
            )

    def step(self) -> None:
        """Apply the proximal step to the weights, in place (call it after each optimizer step)."""
        new_values = self._new_values()
        for (variable, _), value in zip(self._weights, new_values):
            if value is not variable.value:  # the torch path updates the weights in place
                variable.assign(value)

    def stateless_step(
        self, trainable_variables: Sequence[Any], optimizer_variables: Sequence[Any]
    ) -> list[Any]:
        """The proximal step in a stateless (JAX) loop: returns the new trainable values.

        ``trainable_variables`` and ``optimizer_variables`` are the values of
        ``model.trainable_variables`` and ``optimizer.variables`` after
        ``optimizer.stateless_apply``.
        """
        model_variables = list(self._model.trainable_variables)
        mapping = list(zip(model_variables, trainable_variables)) + list(
            zip(self.optimizer.variables, optimizer_variables)
        )
        with keras.StatelessScope(state_mapping=mapping):
            new_values = self._new_values()
        replaced = {id(variable): value for (variable, _), value in zip(self._weights, new_values)}
        return [
            replaced.get(id(variable), value)
            for variable, value in zip(model_variables, trainable_variables)
        ]


def _torch_proximal_(
    values: list[Any],
    slots: list[list[Any]],
    iterations: Any,
    learning_rate: Any,
    regularizers: list[_ProximalRegularizer],
    metric_of: Any,
) -> None:
    """The arithmetic of ``ProximalL1`` in torch, updating ``values`` in place (under no_grad)."""
    import torch

    low_precision = (torch.float16, torch.bfloat16)
    steps = iterations.to(torch.float32).clamp(min=1.0)
    for i, (value, regularizer) in enumerate(zip(values, regularizers)):
        w = value.float() if value.dtype in low_precision else value
        threshold = learning_rate * regularizer.l1
        if torch.is_tensor(threshold):
            threshold = threshold.to(w.dtype)
        metric = None
        if metric_of is not None:
            metric = metric_of([slot.to(w.dtype) for slot in slots[i]], steps, torch.sqrt)
        if isinstance(regularizer, GroupL1):
            axes = regularizer._axes(tuple(w.shape))
            scale = math.sqrt(math.prod(w.shape[a] for a in axes))
            squares = (w * w).sum(dim=axes, keepdim=True)
            group_threshold = threshold * scale
            if metric is None:
                norms = squares.sqrt_()
                keep = norms > group_threshold
                factor = torch.where(keep, 1 - group_threshold / torch.where(keep, norms, 1), 0)
            else:
                factor = _torch_metric_group_factor(w, squares, metric, group_threshold, axes)
            w = w.mul_(factor) if w is value else w * factor
        else:
            t = threshold if metric is None else threshold / metric
            shrink = torch.clamp(w, -t, t) if torch.is_tensor(t) else w.clamp(-t, t)
            w = w.sub_(shrink) if w is value else w - shrink
        if w is not value:
            value.copy_(w)


def _torch_metric_group_factor(
    w: Any, squares: Any, metric: Any, group_threshold: Any, axes: tuple[int, ...]
) -> Any:
    """``x / z`` of the exact group prox in the metric ``D`` (GroupL1.prox), in torch."""
    import torch

    if not torch.is_tensor(group_threshold):
        if group_threshold <= 0:
            return torch.ones_like(w)
        group_threshold = torch.tensor(group_threshold, dtype=w.dtype, device=w.device)
    positive = group_threshold > 0
    metric = metric.clamp(min=torch.finfo(w.dtype).tiny)  # D = 0: tau / D huge, x_i ~ 0
    weighted = metric * w
    keep = ((weighted * weighted).sum(dim=axes, keepdim=True) > group_threshold**2) & positive
    c = torch.where(positive, group_threshold, 1) / metric
    safe_squares = torch.where(keep, squares, 1)
    s = safe_squares.sqrt() - (w * w * c).sum(dim=axes, keepdim=True) / safe_squares
    s.clamp_(min=0)
    # Zeroed groups get z = 1: finite Newton steps there, and their s is not used.
    z = torch.where(keep, w, 1)
    for _ in range(_NEWTON_STEPS):
        a = s + c
        q2 = (z / a).square_()
        g = q2.sum(dim=axes, keepdim=True)
        slope = q2.div_(a).sum(dim=axes, keepdim=True)
        step = g.sqrt().sub_(1).mul_(g).div_(slope)
        s.add_(step).clamp_(min=0)
        # On the CPU a converged s (quadratic convergence: what remains is ~ step^2) ends early.
        if w.device.type == "cpu" and not bool((step.abs() > 1e-6 * s).logical_and_(keep).any()):
            break
    return torch.where(keep, s / (s + c), torch.where(positive, 0, 1).to(w.dtype))


def _no_grad() -> contextlib.AbstractContextManager[Any]:
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _retrace(model: Any) -> None:
    """Make the model's compiled train/test functions read the regularizers anew.

    On JAX (and with ``jit_compile``) the loss is traced once; a regularizer that has just entered
    or left the loss must be traced again.
    """
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    if hasattr(model, "test_function"):
        model.test_function = None


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
