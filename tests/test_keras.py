"""Tests of l1reg.keras, on the torch backend here and on the others in child processes.

A Keras backend is fixed per process: this module runs on ``KERAS_BACKEND`` (torch when unset), and
``test_other_backend`` runs the same module again on each other installed backend (of torch, jax
and tensorflow).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
lk = pytest.importorskip("l1reg.keras")

import l1reg  # noqa: E402

# Keras's torch backend converts tensors with np.array(x), which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
BACKEND = keras.config.backend()
OTHER_BACKENDS = [b for b in ("torch", "jax", "tensorflow") if b != BACKEND]
CHILD = os.environ.get("L1REG_KERAS_CHILD") == "1"
ops = keras.ops


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train many times faster on one thread than on oversubscribed shared cores."""
    if BACKEND != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def gradient(fn, x: np.ndarray) -> np.ndarray:
    """The gradient of scalar ``fn`` at ``x``, with the backend's autodiff."""
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    if BACKEND == "torch":
        import torch

        t = torch.tensor(x, requires_grad=True)
        fn(t).backward()
        return t.grad.numpy()
    import tensorflow as tf

    t = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = fn(t)
    return tape.gradient(value, t).numpy()


# -- the regularizers ---------------------------------------------------------------------------


@pytest.mark.parametrize("l1", [0.0, 0.01, 0.3, 2])
@pytest.mark.parametrize("shape", [(7,), (10, 64), (3, 3, 4, 5)])
def test_l1_equals_keras_l1_on_float32(l1, shape):
    w = np.random.default_rng(0).standard_normal(shape).astype("float32")
    ours = lk.L1(l1)(ops.convert_to_tensor(w))
    theirs = keras.regularizers.L1(l1)(ops.convert_to_tensor(w))
    assert to_numpy(ours).dtype == np.float32
    assert to_numpy(ours) == to_numpy(theirs)


def test_l1_on_a_large_tensor_agrees_with_keras_and_float64():
    w = np.random.default_rng(1).standard_normal(300_001).astype("float32")
    ours = float(to_numpy(lk.L1(0.01)(ops.convert_to_tensor(w))))
    theirs = float(to_numpy(keras.regularizers.L1(0.01)(ops.convert_to_tensor(w))))
    exact = 0.01 * np.abs(w.astype(np.float64)).sum()
    assert ours == pytest.approx(exact, rel=1e-6)
    assert ours == pytest.approx(theirs, rel=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_weights_are_summed_in_float32(dtype):
    # A bfloat16 running sum of ones stalls at 256; float32 accumulation counts every one.
    w = ops.ones((2**17,), dtype=dtype)
    value = lk.L1(1.0)(w)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert float(to_numpy(value)) == 2.0**17
    group = lk.GroupL1(1.0, axis=1)(ops.ones((4, 2**14), dtype=dtype))
    assert keras.backend.standardize_dtype(group.dtype) == "float32"
    assert float(to_numpy(group)) == pytest.approx(4 * 2**14, rel=1e-6)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 1), [1, 2]])
def test_group_l1_value_equals_the_core_penalty(axis):
    w = np.random.default_rng(2).standard_normal((6, 5, 4)).astype("float32")
    w[:, 0] = 0.0  # an empty group
    expected = l1reg.GroupL1(0.05, axis=tuple(axis) if isinstance(axis, list) else axis).value(w)
    value = lk.GroupL1(0.05, axis=axis)(ops.convert_to_tensor(w))
    assert float(to_numpy(value)) == pytest.approx(float(expected), rel=1e-6)


def test_gradient_is_zero_at_zero():
    w = np.array([[0.0, 2.0, -3.0], [0.0, 0.0, 0.0]], dtype="float32")
    g = gradient(lambda v: lk.L1(0.5)(v), w)
    np.testing.assert_array_equal(g, 0.5 * np.sign(w))
    # The group norm has no derivative at an empty group; its gradient there is 0, never NaN.
    g = gradient(lambda v: lk.GroupL1(0.5, axis=1)(v), w)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[1], 0.0)
    np.testing.assert_allclose(g[0], 0.5 * math.sqrt(3) * w[0] / np.linalg.norm(w[0]), rtol=1e-6)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf")])
def test_bad_l1_values(bad):
    for cls in (lk.L1, lk.GroupL1):
        with pytest.raises(ValueError) as error:
            cls(bad)
        message = "Invalid value for argument l1: expected a non-negative float. Received: l1="
        assert str(error.value) == message + repr(bad)


@pytest.mark.parametrize("bad", ["0.1", None, True, [0.1]])
def test_non_numeric_l1(bad):
    with pytest.raises(TypeError, match=r"Invalid value for argument l1: .* Received: l1="):
        lk.L1(bad)


def test_negative_l1_message_reads_like_keras():
    with pytest.raises(ValueError) as error:
        lk.L1(-1)
    expected = "Invalid value for argument l1: expected a non-negative float. Received: l1=-1"
    assert str(error.value) == expected


def test_group_axis_the_weight_lacks():
    with pytest.raises(ValueError) as error:
        lk.GroupL1(0.01, axis=2)(ops.ones((10, 64)))
    assert "argument axis" in str(error.value)
    assert "(10, 64)" in str(error.value)
    assert "axis=2" in str(error.value)
    with pytest.raises(TypeError, match="Received: axis='rows'"):
        lk.GroupL1(0.01, axis="rows")
    with pytest.raises(TypeError, match=re.escape("Received: axis=()")):
        lk.GroupL1(0.01, axis=())


def test_hyperparameters_are_python_floats_and_configs_round_trip():
    for regularizer in (lk.L1(1), lk.GroupL1(np.float32(0.5), axis=(0, 1))):
        assert type(regularizer.l1) is float
        config = regularizer.get_config()
        assert type(config["l1"]) is float
        assert type(regularizer).from_config(config) == regularizer
        again = keras.regularizers.deserialize(keras.regularizers.serialize(regularizer))
        assert again == regularizer
    assert lk.GroupL1(0.5, axis=[0, 1]).get_config() == {"l1": 0.5, "axis": [0, 1]}


# -- models: save/load, prox or loss ------------------------------------------------------------


def textbook_model(regularizer, second=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(3, activation="softmax", kernel_regularizer=second),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def make_data(n_samples, seed=0):
    """10 standard normal inputs; the class (of 3) depends on inputs 0, 1 and 2 only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 10)).astype("float32")
    scores = np.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] - x[:, 0]], axis=1)
    return x, np.argmax(scores, axis=1).astype("int32")


# Keras warns when it loads a compiled model saved before its optimizer was built (never trained).
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")
def test_save_and_load_a_model_with_both_regularizers(tmp_path):
    model = textbook_model(lk.GroupL1(0.02, axis=1), second=lk.L1(0.003))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    for before, after in zip(model.layers, loaded.layers):
        assert type(after.kernel_regularizer) is type(before.kernel_regularizer)
        assert after.kernel_regularizer == before.kernel_regularizer
    np.testing.assert_allclose(
        [float(to_numpy(v)) for v in loaded.losses],
        [float(to_numpy(v)) for v in model.losses],
        rtol=1e-6,
    )


def test_prox_or_loss_never_both():
    model = textbook_model(lk.GroupL1(0.01, axis=1), second=lk.L1(0.01))
    penalties = [float(to_numpy(v)) for v in model.losses]
    assert all(p > 0 for p in penalties)
    prox = lk.ProximalL1(model)
    with prox:
        assert all(layer.kernel_regularizer.applied_by_prox for layer in model.layers)
        assert [float(to_numpy(v)) for v in model.losses] == [0.0, 0.0]
    assert not any(layer.kernel_regularizer.applied_by_prox for layer in model.layers)
    np.testing.assert_allclose([float(to_numpy(v)) for v in model.losses], penalties)
    # The same from model.fit: the training loss has no penalty, and the penalty is back afterwards.
    x, y = make_data(256)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append([float(to_numpy(v)) for v in self.model.losses])

    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[lk.ProximalL1(), Spy()])
    assert seen and all(losses == [0.0, 0.0] for losses in seen)
    assert all(float(to_numpy(v)) > 0 for v in model.losses)


def test_after_fit_with_the_prox_the_compiled_loss_has_the_penalty_again():
    model = textbook_model(lk.L1(0.05))
    x, y = make_data(256)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[lk.ProximalL1()])
    loss = model.evaluate(x, y, batch_size=256, verbose=0)[0]
    data_loss = keras.losses.SparseCategoricalCrossentropy()(y, model.predict(x, verbose=0))
    penalty = sum(float(to_numpy(v)) for v in model.losses)
    assert penalty > 0
    assert loss == pytest.approx(float(to_numpy(data_loss)) + penalty, rel=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_loss_scale_optimizer_and_low_precision_weights(dtype):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=lk.L1(0.01), dtype=dtype),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x, y = make_data(2048)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[lk.ProximalL1()])
    kernel = to_numpy(ops.cast(model.layers[0].kernel, "float32"))
    assert keras.backend.standardize_dtype(model.layers[0].kernel.dtype) == dtype
    assert np.all(np.isfinite(kernel))
    assert np.mean(kernel == 0) > 0.3


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_several_epochs_in_one_fit(steps_per_execution):
    if steps_per_execution > 1 and BACKEND == "torch":
        pytest.skip("torch runs the prox after the compiled step")
    model = textbook_model(lk.L1(0.05))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    x, y = make_data(1000)  # a last batch of 8: the step is traced again mid-epoch
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[lk.ProximalL1()])
    assert len(history.history["loss"]) == 3
    assert all(math.isfinite(v) for v in history.history["loss"])
    assert np.mean(to_numpy(model.layers[0].kernel) == 0) > 0.5


def test_a_group_prox_with_zero_groups_keeps_the_kernel_finite():
    # Zero groups from the start: a group norm in the loss would have no gradient there.
    model = textbook_model(lk.GroupL1(0.05, axis=1))
    kernel = to_numpy(model.layers[0].kernel)
    kernel[5:] = 0.0
    model.layers[0].kernel.assign(kernel)
    x, y = make_data(512)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[lk.ProximalL1()])
    kernel = to_numpy(model.layers[0].kernel)
    assert np.all(np.isfinite(kernel))
    assert np.all(kernel[5:] == 0.0)


def test_the_textbook_experiment_on_a_small_run():
    """Most weights exactly zero with L1, the 7 irrelevant inputs removed with GroupL1."""
    x, y = make_data(10_000)
    x_train, y_train, x_test, y_test = x[:8000], y[:8000], x[8000:], y[8000:]

    def train(regularizer, prox):
        model = textbook_model(regularizer)
        callbacks = [lk.ProximalL1()] if prox else []
        model.fit(x_train, y_train, batch_size=32, epochs=2, verbose=0, callbacks=callbacks)
        accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]
        return model, to_numpy(model.layers[0].kernel), accuracy

    _, textbook, textbook_accuracy = train(keras.regularizers.l1(0.01), prox=False)
    assert np.sum(textbook == 0) == 0  # the textbook recipe makes no exact zero

    _, kernel, accuracy = train(lk.L1(0.01), prox=True)
    assert np.mean(kernel == 0) > 0.5
    assert accuracy >= textbook_accuracy - 0.01

    model, kernel, accuracy = train(lk.GroupL1(0.01, axis=1), prox=True)
    kept = np.flatnonzero(np.any(kernel != 0, axis=1))
    np.testing.assert_array_equal(kept, [0, 1, 2])
    assert accuracy >= textbook_accuracy - 0.01
    first = lk.sparsity(model).tensors[0]
    assert (first.inputs_kept, first.inputs, first.zeros) == (3, 10, 7 * 64)


def test_drop_in_l1_without_prox_trains_as_keras_l1():
    # Without ProximalL1, l1reg's L1 trains exactly as keras.regularizers.L1 (same loss values).
    x, y = make_data(512)
    histories = []
    for regularizer in (keras.regularizers.l1(0.01), lk.L1(0.01)):
        model = textbook_model(regularizer)
        histories.append(model.fit(x, y, batch_size=64, epochs=2, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)


# -- the proximal step: thresholds, schedules, custom loops -------------------------------------


def one_layer(regularizer):
    layer = keras.layers.Dense(4, use_bias=False, kernel_regularizer=regularizer)
    model = keras.Sequential([keras.Input((3,)), layer])
    kernel = np.array(
        [[0.5, -0.02, 0.0, 1.0], [0.01, -0.3, 0.2, 0.003], [0.0, 0.0, 0.04, -0.05]], "float32"
    )
    layer.kernel.assign(kernel)
    return model, kernel


def soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0)


def metric_group_prox(z, tau, metric):
    """Rows of ``argmin_x ||x - z||_D^2 / 2 + tau ||x||``, in float64 by bisection (a reference)."""
    z, metric = np.asarray(z, np.float64), np.asarray(metric, np.float64)
    out = np.zeros_like(z)
    for i, (row, d) in enumerate(zip(z, metric)):
        if np.linalg.norm(d * row) <= tau:
            continue  # the optimality condition of x = 0
        c = tau / d
        low, high = 0.0, np.linalg.norm(row)
        for _ in range(200):  # s = ||x|| solves sum(row^2 / (s + c)^2) = 1
            s = (low + high) / 2
            low, high = (s, high) if np.sum((row / (s + c)) ** 2) > 1 else (low, s)
        out[i] = row * s / (s + c)
    return out


def test_sgd_with_a_schedule_uses_the_learning_rate_of_each_step():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(schedule)
    model, kernel = one_layer(lk.L1(0.1))
    grads = np.full_like(kernel, 0.01)
    with lk.ProximalL1(model, optimizer=optimizer) as prox:
        for lr in (0.5, 0.25, 0.125):
            optimizer.apply([ops.convert_to_tensor(grads)], model.trainable_variables)
            prox.step()
            kernel = soft(kernel - lr * grads, lr * 0.1)
            np.testing.assert_allclose(to_numpy(model.layers[0].kernel), kernel, atol=1e-7)
    assert np.sum(kernel == 0) > 0
    np.testing.assert_array_equal(to_numpy(model.layers[0].kernel) == 0, kernel == 0)


def test_adam_uses_the_threshold_in_its_own_metric():
    optimizer = keras.optimizers.Adam(0.01)
    model, kernel = one_layer(lk.L1(0.5))
    rng = np.random.default_rng(3)
    m = np.zeros_like(kernel)
    v = np.zeros_like(kernel)
    with lk.ProximalL1(model, optimizer=optimizer) as prox:
        for t in range(1, 4):
            grads = rng.standard_normal(kernel.shape).astype("float32") * 0.1
            optimizer.apply([ops.convert_to_tensor(grads)], model.trainable_variables)
            prox.step()
            m = 0.9 * m + 0.1 * grads
            v = 0.999 * v + 0.001 * grads**2
            alpha = 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            z = kernel - alpha * m / (np.sqrt(v) + 1e-7)
            metric = np.sqrt(v / (1 - 0.999**t)) + 1e-7
            kernel = soft(z, 0.01 * 0.5 / metric)
            np.testing.assert_allclose(
                to_numpy(model.layers[0].kernel), kernel, rtol=1e-4, atol=1e-6
            )
    assert np.sum(kernel == 0) > 0


@pytest.mark.parametrize(
    ("make", "denominator"),
    [
        (lambda: keras.optimizers.AdamW(0.01), "adam"),
        (lambda: keras.optimizers.Adam(0.01, amsgrad=True), "adam"),
        (lambda: keras.optimizers.Nadam(0.01), "adam"),
        (lambda: keras.optimizers.Adamax(0.01), "adamax"),
        (lambda: keras.optimizers.Adagrad(0.01), "adagrad"),
        (lambda: keras.optimizers.RMSprop(0.01), "rmsprop"),
        (lambda: keras.optimizers.RMSprop(0.01, centered=True), "centered"),
        (lambda: keras.optimizers.SGD(0.01, momentum=0.9), "sgd"),
    ],
)
@pytest.mark.parametrize("penalty", ["l1", "group"])
def test_the_metric_of_each_optimizer(make, denominator, penalty):
    optimizer = make()
    model, kernel = one_layer(lk.L1(0.5) if penalty == "l1" else lk.GroupL1(0.5, axis=1))
    grads = np.random.default_rng(6).standard_normal(kernel.shape).astype("float32")
    with lk.ProximalL1(model, optimizer=optimizer) as prox:
        optimizer.apply([ops.convert_to_tensor(grads)], model.trainable_variables)
        stepped = to_numpy(model.layers[0].kernel)
        prox.step()
    eps = getattr(optimizer, "epsilon", 0.0)
    g2 = grads.astype(np.float64) ** 2
    metric = {
        "adam": lambda: np.sqrt(g2) + eps,  # v_hat = g^2 after one step
        "adamax": lambda: np.abs(grads) + eps,
        "adagrad": lambda: np.sqrt(optimizer.initial_accumulator_value + g2 + eps),
        "rmsprop": lambda: np.sqrt(0.1 * g2 + eps),
        "centered": lambda: np.sqrt(0.1 * g2 - (0.1 * grads) ** 2 + eps),
        "sgd": lambda: np.ones_like(g2),
    }[denominator]()
    if penalty == "l1":
        expected = soft(stepped, 0.01 * 0.5 / metric)
    else:
        expected = metric_group_prox(stepped, 0.01 * 0.5 * 2, metric)
    np.testing.assert_allclose(to_numpy(model.layers[0].kernel), expected, rtol=1e-4, atol=1e-6)


def test_group_prox_in_the_metric_is_exact_not_the_mean_of_the_metric():
    # The prox of tau ||x|| in the metric diag(D) zeroes a group iff ||D z|| <= tau. With D spread
    # over a group, the former rule (one scalar metric per group, the mean of D: zero iff
    # ||z|| mean(D) <= tau) decides the other way on both rows here: with tau = 1.27,
    # row 0: ||D z|| = 2.00 (kept), ||z|| mean(D) = 1.05 (zeroed);
    # row 1: ||D z|| = 1.12 (zeroed), ||z|| mean(D) = 3.01 (kept).
    regularizer = lk.GroupL1(1.0, axis=1)
    z = np.array([[0.05, 1.0], [1.0, 0.1]], "float32")
    metric = np.array([[0.1, 2.0], [1.0, 5.0]], "float32")
    tau = 0.9 * math.sqrt(2)  # the threshold 0.9 (= lr * l1) times sqrt|g|
    new = to_numpy(regularizer.prox(ops.convert_to_tensor(z), 0.9, ops.convert_to_tensor(metric)))
    np.testing.assert_allclose(new, metric_group_prox(z, tau, metric), rtol=1e-5, atol=1e-7)
    assert np.all(new[1] == 0) and np.all(new[0] != 0)
    assert list(np.linalg.norm(z, axis=1) * metric.mean(axis=1) <= tau) == [True, False]


def test_plain_threshold_on_request_and_group_prox_after_sgd():
    optimizer = keras.optimizers.Adam(0.01)
    model, kernel = one_layer(lk.L1(0.5))
    with lk.ProximalL1(model, optimizer=optimizer, metric="plain") as prox:
        before = to_numpy(model.layers[0].kernel)
        optimizer.apply([ops.zeros(kernel.shape)], model.trainable_variables)
        prox.step()
    np.testing.assert_allclose(to_numpy(model.layers[0].kernel), soft(before, 0.005), atol=1e-7)

    optimizer = keras.optimizers.SGD(0.1)
    model, kernel = one_layer(lk.GroupL1(0.5, axis=1))
    with lk.ProximalL1(model, optimizer=optimizer) as prox:
        optimizer.apply([ops.zeros(kernel.shape)], model.trainable_variables)
        prox.step()
    expected = l1reg.GroupL1(0.5, axis=1).prox(kernel, 0.1)
    np.testing.assert_allclose(to_numpy(model.layers[0].kernel), expected, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(model.layers[0].kernel)[2], 0.0)


def test_proximal_l1_errors():
    model = textbook_model(keras.regularizers.l1(0.01))
    with pytest.raises(ValueError, match="found no l1reg"):
        lk.ProximalL1(model).attach()
    with pytest.raises(ValueError, match="Received: metric='adaptive'"):
        lk.ProximalL1(metric="adaptive")
    uncompiled = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_regularizer=lk.L1())]
    )
    with pytest.raises(ValueError, match="needs an optimizer"):
        lk.ProximalL1(uncompiled).attach()
    model, _ = one_layer(lk.L1(0.1))
    prox = lk.ProximalL1(model, optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="needs the callback attached"):
        prox.step()


def test_sparsity_report_is_the_common_table():
    model, kernel = one_layer(lk.L1(0.1))
    report = lk.sparsity(model)
    expected = l1reg.report.sparsity_report(
        [(model.layers[0].kernel.path, kernel)], input_axis=-2, output_axis=-1
    )
    assert report == expected
    row = report.tensors[0]
    assert (row.zeros, row.inputs_kept, row.inputs, row.outputs_kept) == (3, 3, 3, 4)
    assert "inputs kept" in str(report)
    with pytest.raises(TypeError, match="Received: model="):
        lk.sparsity("model")


@pytest.mark.skipif(BACKEND != "jax", reason="a stateless training loop is a JAX idiom")
def test_stateless_step_in_a_jitted_jax_loop():
    import jax

    model = textbook_model(lk.L1(1.0))
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    x, y = make_data(256)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    prox = lk.ProximalL1(model)

    @jax.jit
    def train_step(trainable, non_trainable, optimizer_variables, x, y):
        def loss(trainable):
            y_pred, _ = model.stateless_call(trainable, non_trainable, x)
            return loss_fn(y, y_pred)

        grads = jax.grad(loss)(trainable)
        stepped, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, grads, trainable
        )
        return stepped, prox.stateless_step(stepped, optimizer_variables), optimizer_variables

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    optimizer_variables = [v.value for v in optimizer.variables]
    with prox:
        for i in range(0, 256, 32):
            stepped, trainable, optimizer_variables = train_step(
                trainable, non_trainable, optimizer_variables, x[i : i + 32], y[i : i + 32]
            )
        # The stateful step from the same state gives the same weights.
        for variable, value in zip(model.trainable_variables, stepped):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_variables):
            variable.assign(value)
        prox.step()
    for variable, value in zip(model.trainable_variables, trainable):
        np.testing.assert_allclose(to_numpy(variable), np.asarray(value), rtol=1e-6, atol=1e-7)
    assert np.mean(np.asarray(trainable[0]) == 0) > 0.3
    np.testing.assert_array_equal(np.asarray(trainable[1]), np.asarray(stepped[1]))  # the bias


# -- the relaxed lasso (relax_after, relax) ------------------------------------------------------


class RecordAtEpoch(keras.callbacks.Callback):
    """The weights and optimizer variables at the start of one epoch (after ProximalL1's turn)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.weights = self.optimizer_variables = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:  # (self.model writes JAX's training state back to the model)
            self.weights = [to_numpy(v) for v in self.model.trainable_variables]
            self.optimizer_variables = [to_numpy(v) for v in self.model.optimizer.variables]


class Project(keras.constraints.Constraint):
    """w * mask: with it, Adam alone trains the masked problem."""

    def __init__(self, mask):
        self.mask = mask

    def __call__(self, w):
        return w * ops.cast(self.mask, w.dtype)


def test_relax_after_in_fit_holds_the_zeros_and_then_trains_as_the_bare_optimizer(tmp_path):
    x, y = make_data(1024)
    model = textbook_model(lk.GroupL1(0.02, axis=1), second=lk.L1(0.01))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    prox = lk.ProximalL1(relax_after=2)
    record = RecordAtEpoch(2)
    model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=[prox, record])
    assert not prox.relaxed  # detached at the end of fit: the support is forgotten
    kernel_1, _, kernel_2, _ = record.weights
    rows = np.any(kernel_1 != 0, axis=1)
    assert 0 < rows.sum() < 10 and 0 < np.sum(kernel_2 == 0) < kernel_2.size
    final = [to_numpy(v) for v in model.trainable_variables]
    np.testing.assert_array_equal(final[0][~rows], 0.0)  # removed inputs stay removed
    np.testing.assert_array_equal(final[2][kernel_2 == 0], 0.0)
    assert np.all(np.any(final[0][rows] != 0, axis=1))

    # The reference: Adam alone from the same weights and moments on the masked problem (a
    # constraint projects after each step), no penalty, the same 2 epochs of unshuffled batches.
    masks = [np.broadcast_to(rows[:, None], kernel_1.shape), kernel_2 != 0]
    keras.utils.set_random_seed(0)
    reference = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu", kernel_constraint=Project(masks[0])),
            keras.layers.Dense(3, activation="softmax", kernel_constraint=Project(masks[1])),
        ]
    )
    reference.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    reference.optimizer.build(reference.trainable_variables)
    for variable, value in zip(reference.trainable_variables, record.weights):
        variable.assign(value)
    for variable, value in zip(reference.optimizer.variables, record.optimizer_variables):
        variable.assign(value)
    reference.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    for got, expected in zip(final, reference.trainable_variables):
        np.testing.assert_allclose(got, to_numpy(expected), rtol=1e-5, atol=1e-6)
    # Not the prox's result: without relax_after the penalty keeps shrinking.
    shrunk = textbook_model(lk.GroupL1(0.02, axis=1), second=lk.L1(0.01))
    shrunk.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    shrunk.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=[lk.ProximalL1()])
    assert np.abs(final[0]).sum() > 1.05 * np.abs(to_numpy(shrunk.layers[0].kernel)).sum()

    # The model saves and loads as before, its regularizers back in the loss.
    assert model.layers[0].kernel_regularizer(model.layers[0].kernel) > 0
    model.save(tmp_path / "relaxed.keras")
    loaded = keras.saving.load_model(tmp_path / "relaxed.keras")
    assert loaded.layers[0].kernel_regularizer == lk.GroupL1(0.02, axis=1)
    np.testing.assert_array_equal(to_numpy(loaded.layers[0].kernel), final[0])


@pytest.mark.parametrize("penalty", ["l1", "group"])
def test_relax_in_a_custom_loop_projects_and_never_shrinks(penalty):
    regularizer = lk.L1(0.5) if penalty == "l1" else lk.GroupL1(0.5, axis=1)
    optimizer = keras.optimizers.SGD(0.1)
    model, kernel = one_layer(regularizer)
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(kernel.shape).astype("float32") * 0.1 for _ in range(6)]
    with lk.ProximalL1(model, optimizer=optimizer) as prox:
        optimizer.apply([ops.convert_to_tensor(grads[0])], model.trainable_variables)
        prox.step()
        at_switch = to_numpy(model.layers[0].kernel)
        support = at_switch != 0
        if penalty == "group":
            support = np.broadcast_to(np.any(support, axis=1, keepdims=True), support.shape)
        assert 0 < support.sum() < support.size
        assert not prox.relaxed
        prox.relax()
        assert prox.relaxed
        expected = at_switch
        for g in grads[1:]:
            optimizer.apply([ops.convert_to_tensor(g)], model.trainable_variables)
            prox.step()
            expected = np.where(support, expected - 0.1 * g, 0.0)  # SGD on the support alone
            got = to_numpy(model.layers[0].kernel)
            np.testing.assert_array_equal(got[~support], 0.0)
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
        prox.relax()  # again: the first support stays
        np.testing.assert_array_equal(to_numpy(model.layers[0].kernel)[~support], 0.0)
    assert not prox.relaxed


def test_relax_errors():
    for bad, error in [(-1, ValueError), (float("nan"), TypeError), (2.0, TypeError),
                       ("2", TypeError), (True, TypeError)]:  # fmt: skip
        with pytest.raises(error) as raised:
            lk.ProximalL1(relax_after=bad)
        expected = (
            "Invalid value for argument relax_after: expected None or a non-negative int (a "
            f"number of epochs). Received: relax_after={bad!r}"
        )
        assert str(raised.value) == expected
    assert lk.ProximalL1(relax_after=np.int64(3)).relax_after == 3
    model, _ = one_layer(lk.L1(0.1))
    with pytest.raises(ValueError, match="relax needs the callback attached"):
        lk.ProximalL1(model, optimizer=keras.optimizers.SGD(0.1)).relax()


@pytest.mark.skipif(BACKEND != "jax", reason="a stateless training loop is a JAX idiom")
def test_relax_in_a_stateless_jax_loop():
    import jax

    model, kernel = one_layer(lk.GroupL1(0.5, axis=1))
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    prox = lk.ProximalL1(model, optimizer=optimizer)
    grads = [np.full_like(kernel, 0.05), np.full_like(kernel, -0.5)]

    def make_step():  # traced anew after relax(): the support is a constant of the trace
        @jax.jit
        def train_step(trainable, optimizer_variables, grads):
            stepped, optimizer_variables = optimizer.stateless_apply(
                optimizer_variables, [grads], trainable
            )
            return prox.stateless_step(stepped, optimizer_variables), optimizer_variables

        return train_step

    trainable = [v.value for v in model.trainable_variables]
    optimizer_variables = [v.value for v in optimizer.variables]
    with prox:
        trainable, optimizer_variables = make_step()(trainable, optimizer_variables, grads[0])
        at_switch = np.asarray(trainable[0])
        zero_rows = ~np.any(at_switch != 0, axis=1)
        assert 0 < zero_rows.sum() < 3
        model.layers[0].kernel.assign(trainable[0])
        prox.relax()
        trainable, _ = make_step()(trainable, optimizer_variables, grads[1])
    got = np.asarray(trainable[0])
    np.testing.assert_array_equal(got[zero_rows], 0.0)
    np.testing.assert_allclose(got[~zero_rows], at_switch[~zero_rows] + 0.05, rtol=1e-6)


# -- import and backends ------------------------------------------------------------------------


@pytest.mark.skipif(CHILD, reason="run once, from the parent process")
def test_import_without_a_backend_says_to_set_keras_backend(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)  # no keras.json there: Keras falls back on TensorFlow
    # A None in sys.modules makes `import tensorflow` fail as if it were not installed.
    code = "import sys; sys.modules['tensorflow'] = None; import l1reg.keras"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "KERAS_BACKEND=torch or KERAS_BACKEND=jax" in result.stderr
    assert "KERAS_BACKEND" not in env  # and l1reg did not set it behind the user's back


@pytest.mark.skipif(CHILD, reason="run once, from the parent process")
@pytest.mark.parametrize("other", OTHER_BACKENDS)
def test_other_backend(other):
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"the {other} backend is not installed")
    env = {**os.environ, "KERAS_BACKEND": other, "L1REG_KERAS_CHILD": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


_STATE_OPTIMIZERS = [
    ("SGD", {}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("Nadam", {}),
    ("Adamax", {}),
    ("Adagrad", {}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
]


@pytest.mark.parametrize(("name", "options"), _STATE_OPTIMIZERS)
def test_each_private_optimizer_state_accessor_on_this_backend(name, options):
    from l1reg.keras import _optimizer_state as state

    optimizer = getattr(keras.optimizers, name)(learning_rate=0.1, **options)
    variables = [keras.Variable(np.ones((2, 3), "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer.build(variables)
    where = f"Keras {keras.__version__} {name}{options} on {BACKEND}"

    def read(accessor, *args):
        try:
            return accessor(*args)
        except AttributeError as error:
            pytest.fail(
                f"{where}: l1reg.keras._optimizer_state.{accessor.__name__} reads a "
                f"private attribute Keras no longer has: {error}"
            )

    spec = read(state.metric_slots, optimizer)
    assert (spec is None) == (name == "SGD")
    index = read(state.variable_index, optimizer, variables[1])
    assert index == 1
    if spec is not None:
        slots, metric_of = spec
        assert slots and all(len(slot) == len(variables) for slot in slots)
        values = [ops.convert_to_tensor(slot[index].value) for slot in slots]
        assert tuple(metric_of(values, 1.0, ops.sqrt).shape) == (3,)
    assert float(read(state.learning_rate_setting, optimizer)) == pytest.approx(0.1)
    rate = read(state.current_learning_rate, optimizer)
    rate = rate() if callable(rate) else rate
    assert float(ops.convert_to_numpy(rate)) == pytest.approx(0.1)
    for method in ("apply", "stateless_apply"):
        original = getattr(optimizer, method)
        read(state.wrap_method, optimizer, method, lambda f: "wrapped")
        assert getattr(optimizer, method) == "wrapped"
        read(state.restore_method, optimizer, method)
        assert getattr(optimizer, method) == original


def test_proximal_l1_refuses_a_model_or_optimizer_of_another_kind():
    with pytest.raises(TypeError, match="Received: model='abc'"):
        lk.ProximalL1("abc")
    with pytest.raises(TypeError, match="Received: optimizer='adam'"):
        lk.ProximalL1(optimizer="adam")
