"""The Keras callback of l1reg: :class:`ProximalL1`, the proximal step after each update."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import keras
from keras import ops

from .._validation import (
    Checked,
    Instance,
    Interval,
    NoneValue,
    Options,
    check_params,
    declare_params,
)
from ..prox import group_shrink_factor, metric_group_factor
from . import _optimizer_state
from ._regularizers import (
    _LOW_PRECISION,
    GroupL1,
    _invalid,
    _owned_weights,
    _ProximalRegularizer,
    _wording,
)

_METRICS = ("optimizer", "plain")
_VALUES = "a list of the values of {}, one for each"
_VALUE_EXAMPLES = ["abc", None, 1.5, []]


def _check_values(name: str, values: object, variables: Sequence[Any], of: str) -> None:
    """``values`` must be a list or tuple of one value per variable (lengths are static)."""
    expected = _VALUES.format(of)
    if not isinstance(values, (list, tuple)):
        raise TypeError(_invalid(name, expected, values))
    if len(values) != len(variables):
        raise ValueError(_invalid(name, f"{expected} ({len(variables)} values)", values))


_EPOCHS = Interval(numbers.Integral, 0, None, "left")
_EPOCHS.text = "a non-negative int (a number of epochs)"


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

    _parameter_constraints: ClassVar[dict] = {
        "model": [NoneValue(), Instance("keras:Model", text="a Keras model")],
        "optimizer": [
            NoneValue(),
            Instance("keras:optimizers.Optimizer", text="a Keras optimizer"),
        ],
        "metric": [Options(*_METRICS)],
        "relax_after": [NoneValue(), _EPOCHS],
    }

    def __init__(
        self,
        model: Any = None,
        *,
        optimizer: Any = None,
        metric: str = "optimizer",
        relax_after: int | None = None,
    ) -> None:
        values = {
            "model": model,
            "optimizer": optimizer,
            "metric": metric,
            "relax_after": relax_after,
        }
        check_params("ProximalL1", self._parameter_constraints, values, wording=_wording)
        super().__init__()
        self.metric = metric
        self.relax_after = None if relax_after is None else int(relax_after)
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

    def _required_model(self) -> Any:
        model = getattr(self, "_model", None)
        if model is None:
            raise ValueError("ProximalL1 has no model: pass ProximalL1(model) or use model.fit.")
        return model

    def _attach(self, inside_the_step: bool) -> None:
        if self._attached:
            return
        model = self._required_model()
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
            _optimizer_state.restore_method(optimizer, name)
            self._wrapped = None
        _retrace(self._model)

    def _wrap_stateless_apply(self, optimizer: Any) -> None:
        """Make ``optimizer.stateless_apply`` end with the proximal step (JAX's ``model.fit``).

        The step then runs inside the jitted train step: no weights leave the device state, and
        ``steps_per_execution > 1`` works. A LossScaleOptimizer calls this inner optimizer only
        for finite gradients, so a skipped step skips the prox too.
        """
        # (This class reads self._model, never self.model: on JAX, Callback.model writes the
        # training state back to the variables, which must not happen inside the traced step.)

        def make(original: Any) -> Any:
            def stateless_apply(optimizer_variables, grads, trainable_variables):
                trainable, optimizer_variables = original(
                    optimizer_variables, grads, trainable_variables
                )
                return self.stateless_step(trainable, optimizer_variables), optimizer_variables

            return stateless_apply

        _optimizer_state.wrap_method(optimizer, "stateless_apply", make)
        self._wrapped = (optimizer, "stateless_apply")

    def _wrap_apply(self, optimizer: Any) -> None:
        """Make ``optimizer.apply`` end with the proximal step (TensorFlow's ``model.fit``).

        The step then becomes part of the compiled train function, as on JAX: run from
        ``on_train_batch_end`` instead, its eager operations would cost more than the step itself.
        """

        def make(original: Any) -> Any:
            def apply(grads: Any, trainable_variables: Any = None) -> Any:
                result = original(grads, trainable_variables)
                self.step()
                return result

            return apply

        _optimizer_state.wrap_method(optimizer, "apply", make)
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
        spec = _optimizer_state.metric_slots(optimizer) if self.metric == "optimizer" else None
        slot_variables = []
        if spec is not None:
            slots, metric_of = spec
            for variable, _ in self._weights:
                index = _optimizer_state.variable_index(optimizer, variable)
                slot_variables.append([slot[index] for slot in slots])
        schedule = _optimizer_state.learning_rate_setting(optimizer)
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
        learning_rate = 0.0 if is_schedule else _optimizer_state.current_learning_rate(optimizer)
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

    @declare_params(
        wording=_wording,
        trainable_variables=[Checked(_VALUES.format("model.trainable_variables"), _VALUE_EXAMPLES)],
        optimizer_variables=[Checked(_VALUES.format("optimizer.variables"), _VALUE_EXAMPLES)],
    )
    def stateless_step(
        self, trainable_variables: Sequence[Any], optimizer_variables: Sequence[Any]
    ) -> list[Any]:
        """The proximal step in a stateless (JAX) loop: returns the new trainable values.

        ``trainable_variables`` and ``optimizer_variables`` are the values of
        ``model.trainable_variables`` and ``optimizer.variables`` after
        ``optimizer.stateless_apply``.
        """
        model_variables = list(self._required_model().trainable_variables)
        _check_values(
            "trainable_variables", trainable_variables, model_variables, "model.trainable_variables"
        )
        _check_values(
            "optimizer_variables",
            optimizer_variables,
            self.optimizer.variables,
            "optimizer.variables",
        )
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
    from array_api_compat import torch as xp

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
                factor = group_shrink_factor(torch, squares.sqrt_(), group_threshold)
            else:
                if not torch.is_tensor(group_threshold):
                    group_threshold = torch.tensor(group_threshold, dtype=w.dtype, device=w.device)
                factor = metric_group_factor(
                    xp,
                    w,
                    metric,
                    group_threshold,
                    lambda values: values.sum(dim=axes, keepdim=True),  # noqa: B023
                    squares=squares,
                    early_exit=w.device.type == "cpu",
                )
            w = w.mul_(factor) if w is value else w * factor
        else:
            t = threshold if metric is None else threshold / metric
            shrink = torch.clamp(w, -t, t) if torch.is_tensor(t) else w.clamp(-t, t)
            w = w.sub_(shrink) if w is value else w - shrink
        if w is not value:
            value.copy_(w)


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
