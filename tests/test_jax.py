"""Tests of l1reg.jax (optax proximal transformations) and of l1reg on JAX pytrees."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
lj = pytest.importorskip("l1reg.jax")

import jax.numpy as jnp  # noqa: E402

import l1reg  # noqa: E402


def soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0)


def params_and_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "dense": {"kernel": rng.standard_normal((5, 4)), "bias": rng.standard_normal(4)},
        "out": [rng.standard_normal((4, 2)) * 0.1],
    }
    grads = jax.tree.map(lambda p: rng.standard_normal(p.shape), params)
    as_jax = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)  # noqa: E731
    return as_jax(params), as_jax(grads)


def step(tx, params, grads, state=None, jit=True):
    state = tx.init(params) if state is None else state
    update = jax.jit(tx.update) if jit else tx.update
    updates, state = update(grads, state, params)
    return optax.apply_updates(params, updates), state


# -- l1_regularization on pytrees ---------------------------------------------------------------


def test_l1_regularization_on_a_pytree_is_differentiable_with_zero_gradient_at_zero():
    params = {"w": jnp.array([[0.0, 2.0], [-3.0, 0.0]]), "b": [jnp.array([0.0, -1.0])]}
    value = jax.jit(lambda p: l1reg.l1_regularization(p, 0.5))(params)
    assert float(value) == pytest.approx(0.5 * 6.0)
    grads = jax.grad(lambda p: l1reg.l1_regularization(p, 0.5))(params)
    np.testing.assert_array_equal(grads["w"], 0.5 * np.sign(params["w"]))
    np.testing.assert_array_equal(grads["b"][0], [0.0, -0.5])


# -- prox_l1 ------------------------------------------------------------------------------------


def test_prox_l1_after_sgd_is_soft_thresholding_of_the_sgd_step():
    params, grads = params_and_grads()
    tx = optax.chain(optax.sgd(0.1), lj.prox_l1(2.0, 0.1))
    new, state = step(tx, params, grads)
    for p, g, n in zip(jax.tree.leaves(params), jax.tree.leaves(grads), jax.tree.leaves(new)):
        expected = soft(np.asarray(p) - 0.1 * np.asarray(g), 0.2)
        np.testing.assert_allclose(n, expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(np.asarray(n) == 0, expected == 0)  # exact zeros
    assert sum(int(jnp.sum(n == 0)) for n in jax.tree.leaves(new)) > 0
    assert isinstance(state[1], lj.ProxL1State)
    assert int(state[1].count) == 1


def test_prox_l1_with_a_schedule_counts_its_steps():
    schedule = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.5)
    params, grads = params_and_grads(1)
    tx = optax.chain(optax.sgd(schedule), lj.prox_l1(0.3, schedule))
    state = tx.init(params)
    expected = jax.tree.map(np.asarray, params)
    for lr in (0.5, 0.25, 0.125):
        params, state = step(tx, params, grads, state)
        expected = jax.tree.map(
            lambda e, g, lr=lr: soft(e - lr * np.asarray(g), lr * 0.3), expected, grads
        )
        for n, e in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
            np.testing.assert_allclose(n, e, rtol=1e-5, atol=1e-6)


def test_prox_l1_mask_as_a_pytree_and_as_a_callable():
    params, grads = params_and_grads(2)
    mask = {"dense": {"kernel": True, "bias": False}, "out": [True]}
    by_tree, _ = step(optax.chain(optax.sgd(0.1), lj.prox_l1(5.0, 0.1, mask=mask)), params, grads)
    kernels_only = lambda p: jax.tree.map(lambda a: a.ndim == 2, p)  # noqa: E731
    by_fn, _ = step(
        optax.chain(optax.sgd(0.1), lj.prox_l1(5.0, 0.1, mask=kernels_only)), params, grads
    )
    sgd, _ = step(optax.sgd(0.1), params, grads)
    for new in (by_tree, by_fn):
        np.testing.assert_array_equal(new["dense"]["bias"], sgd["dense"]["bias"])
        np.testing.assert_allclose(
            new["dense"]["kernel"], soft(np.asarray(sgd["dense"]["kernel"]), 0.5), atol=1e-7
        )


def test_prox_l1_keeps_low_precision_dtypes():
    params = {"w": jnp.array([1.0, -0.01, 0.3], jnp.bfloat16)}
    grads = {"w": jnp.zeros(3, jnp.bfloat16)}
    new, _ = step(optax.chain(optax.sgd(1.0), lj.prox_l1(0.05, 1.0)), params, grads)
    assert new["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(new["w"], np.float32), [0.95, 0.0, 0.25], atol=4e-3)
    assert float(new["w"][1]) == 0.0


def test_errors():
    params, grads = params_and_grads()
    tx = lj.prox_l1(0.1, 0.1)
    with pytest.raises(ValueError, match="needs the parameters"):
        tx.update(grads, tx.init(params))
    with pytest.raises(ValueError, match=r"The 'lambda_reg' parameter of prox_l1 .* Got -1"):
        lj.prox_l1(-1, 0.1)
    with pytest.raises(ValueError, match=r"The 'lambda_reg' parameter of prox_group_l1 .* nan"):
        lj.prox_group_l1(float("nan"), 0.1, axis=1)
    with pytest.raises(TypeError, match="The 'learning_rate' parameter of prox_l1"):
        lj.prox_l1(0.1, "fast")
    with pytest.raises(TypeError, match="The 'axis' parameter of prox_group_l1"):
        lj.prox_group_l1(0.1, 0.1, axis="rows")
    with pytest.raises(TypeError, match="The 'lambda_reg' parameter of adam_l1"):
        lj.adam_l1(1e-3, "0.1")
    # A group axis that a penalized leaf lacks (the 1-d bias) names the axis and the shape.
    with pytest.raises(ValueError, match=r"axis.* is 1, .* shape \(4,\) has no such axis"):
        step(optax.chain(optax.sgd(0.1), lj.prox_group_l1(0.1, 0.1, axis=1)), params, grads)


# -- prox_group_l1 ------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, (0, 1)])
def test_prox_group_l1_is_the_core_group_prox(axis):
    params, grads = params_and_grads(3)
    mask = lambda p: jax.tree.map(lambda a: a.ndim == 2, p)  # noqa: E731
    tx = optax.chain(optax.sgd(0.1), lj.prox_group_l1(0.8, 0.1, axis=axis, mask=mask))
    new, _ = step(tx, params, grads)
    sgd, _ = step(optax.sgd(0.1), params, grads)
    core = l1reg.GroupL1(0.8, axis=axis)
    for name_new, name_sgd in [
        (new["dense"]["kernel"], sgd["dense"]["kernel"]),
        (new["out"][0], sgd["out"][0]),
    ]:
        expected = core.prox(np.asarray(name_sgd, np.float64), 0.1)
        np.testing.assert_allclose(name_new, expected, rtol=1e-5, atol=1e-7)


# -- adam_l1 ------------------------------------------------------------------------------------


def test_adam_l1_is_adam_then_the_prox_in_adams_metric():
    params, _ = params_and_grads(4)
    params["dense"]["kernel"] = params["dense"]["kernel"].at[:, 0].set(1e-3)
    rng = np.random.default_rng(4)
    lr, lam, eps = 0.01, 2.0, 1e-8
    tx = lj.adam_l1(lr, lam, eps=eps, mask=lambda p: jax.tree.map(lambda a: a.ndim == 2, p))
    state = tx.init(params)
    update = jax.jit(tx.update)
    w = np.asarray(params["dense"]["kernel"], np.float64)
    b = np.asarray(params["dense"]["bias"], np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 5):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params)
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        g = np.asarray(grads["dense"]["kernel"], np.float64)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        metric = np.sqrt(v_hat) + eps
        w = soft(w - lr * m_hat / metric, lr * lam / metric)
        np.testing.assert_allclose(params["dense"]["kernel"], w, rtol=1e-4, atol=1e-6)
    assert np.sum(w == 0) > 0
    # The bias is not penalized: plain Adam.
    assert np.all(np.asarray(params["dense"]["bias"]) != 0) and b.shape == (4,)


def test_adam_l1_group_zero_test_is_exact_in_the_metric():
    # One step from a zero group: Adam's step is -lr * g / (|g| + eps) coordinate-wise, so the
    # group stays zero iff ||g|| <= lambda * sqrt|g| (the optimality condition), whatever lr is.
    lam = 0.1
    params = {"w": jnp.zeros((2, 4))}
    small = np.full(4, 0.9 * lam)  # ||g|| = 0.18 <= 0.1 * sqrt(4) = 0.2: stays zero
    large = np.full(4, 1.1 * lam)  # ||g|| = 0.22 > 0.2: leaves zero
    grads = {"w": jnp.asarray(np.stack([small, large]), jnp.float32)}
    tx = lj.adam_l1(1e-3, lam, axis=1, eps=0.0)
    new, _ = step(tx, params, grads)
    assert np.all(np.asarray(new["w"][0]) == 0)
    assert np.all(np.asarray(new["w"][1]) != 0)


def test_adam_l1_group_prox_is_the_exact_prox_in_adams_metric():
    # After one Adam step from w with gradient g > 0: z = w - lr (to 1e-7), D = g + eps. The two
    # groups (rows) are chosen so that the former rule (the mean of D over a group: zero iff
    # ||z|| mean(D) <= tau) decides the other way on both: row 0 has ||D z|| = 2.00 > tau = 1.27
    # (kept) but ||z|| mean(D) = 1.05; row 1 has ||D z|| = 1.12 (zeroed), mean rule 3.01.
    lr, lam = 0.1, 9.0  # tau = lr * lam * sqrt(2)
    z = np.array([[0.05, 1.0], [1.0, 0.1]])
    metric = np.array([[0.1, 2.0], [1.0, 5.0]])
    params = {"w": jnp.asarray(z + lr, jnp.float32)}
    tx = lj.adam_l1(lr, lam, axis=1, eps=1e-12)
    new, _ = step(tx, params, {"w": jnp.asarray(metric, jnp.float32)})
    got = np.asarray(new["w"])
    tau = lr * lam * math.sqrt(2)
    expected = np.zeros_like(z)
    for i, (row, d) in enumerate(zip(z, metric)):  # the reference, by bisection in float64
        if np.linalg.norm(d * row) <= tau:
            continue
        low, high = 0.0, np.linalg.norm(row)
        for _ in range(200):  # s = ||x|| solves sum(row^2 / (s + tau / d)^2) = 1
            s = (low + high) / 2
            low, high = (s, high) if np.sum((row / (s + tau / d)) ** 2) > 1 else (low, s)
        expected[i] = row * s / (s + tau / d)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert np.all(got[1] == 0) and np.all(got[0] != 0)


def test_plain_threshold_after_adam_makes_no_zeros_where_the_metric_does():
    # Adam moves every weight by about lr per step whatever its gradient, so the plain threshold
    # lr * lambda cannot hold a weight at zero; the threshold in Adam's metric can.
    # Gradients of mean 0 and spread 1e-3 < lambda = 0.01: w = 0 is optimal.
    params = {"w": jnp.zeros((50,))}
    rng = np.random.default_rng(5)
    chained = optax.chain(optax.adam(1e-2), lj.prox_l1(0.01, 1e-2))
    metric = lj.adam_l1(1e-2, 0.01)
    p1, s1 = params, chained.init(params)
    p2, s2 = params, metric.init(params)
    for _ in range(20):
        grads = {"w": jnp.asarray(rng.standard_normal(50) * 1e-3, jnp.float32)}
        p1, s1 = step(chained, p1, grads, s1)
        p2, s2 = step(metric, p2, grads, s2)
    assert int(jnp.sum(p1["w"] == 0)) < 10
    assert int(jnp.sum(p2["w"] == 0)) == 50


# -- the textbook experiment on a small run -----------------------------------------------------


def make_data(n_samples, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 10)).astype("float32")
    scores = np.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] - x[:, 0]], axis=1)
    return x, np.argmax(scores, axis=1).astype("int32")


def init_params(key):
    k1, k2 = jax.random.split(key)
    init = jax.nn.initializers.glorot_uniform()
    return {
        "w1": init(k1, (10, 64)),
        "b1": jnp.zeros(64),
        "w2": init(k2, (64, 3)),
        "b2": jnp.zeros(3),
    }


def forward(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def train(optimizer, penalty_in_loss, x, y, epochs=2):
    def loss(params, xb, yb):
        value = optax.softmax_cross_entropy_with_integer_labels(forward(params, xb), yb).mean()
        return value + (l1reg.l1_regularization(params["w1"], 0.01) if penalty_in_loss else 0.0)

    @jax.jit
    def epoch(params, state, xb, yb):
        def one(carry, batch):
            params, state = carry
            updates, state = optimizer.update(jax.grad(loss)(params, *batch), state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(one, (params, state), (xb, yb))[0]

    params = init_params(jax.random.key(0))
    state = optimizer.init(params)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        params, state = epoch(params, state, x[order].reshape(-1, 32, 10), y[order].reshape(-1, 32))
    return params


def test_the_textbook_experiment_with_optax():
    x, y = make_data(10_000)
    x_train, y_train, x_test, y_test = x[:8000], y[:8000], x[8000:], y[8000:]

    def accuracy(params):
        return float(jnp.mean(jnp.argmax(forward(params, x_test), axis=1) == y_test))

    only_w1 = {"w1": True, "b1": False, "w2": False, "b2": False}
    textbook = train(optax.adam(1e-3), True, x_train, y_train)
    assert int(jnp.sum(textbook["w1"] == 0)) == 0

    sparse = train(lj.adam_l1(1e-3, 0.01, mask=only_w1), False, x_train, y_train)
    assert float(jnp.mean(sparse["w1"] == 0)) > 0.5
    assert accuracy(sparse) >= accuracy(textbook) - 0.01

    grouped = train(lj.adam_l1(1e-3, 0.01, axis=1, mask=only_w1), False, x_train, y_train)
    kept = np.flatnonzero(np.any(np.asarray(grouped["w1"]) != 0, axis=1))
    np.testing.assert_array_equal(kept, [0, 1, 2])
    assert accuracy(grouped) >= accuracy(textbook) - 0.01
    assert math.isfinite(accuracy(grouped))


# -- the relaxed lasso (relax_after) ------------------------------------------------------------


def regression(seed=0, n=512):
    """Targets from the first 2 of 6 inputs; a kernel that starts dense."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype("float32")
    w_true = np.zeros((6, 3), "float32")
    w_true[:2] = rng.standard_normal((2, 3))
    y = x @ w_true + 0.3 * rng.standard_normal((n, 3)).astype("float32")
    params = {"w": jnp.asarray(rng.standard_normal((6, 3)) * 0.3, jnp.float32), "b": jnp.zeros(3)}
    return jnp.asarray(x), jnp.asarray(y), params


def squared_loss(params, x, y):
    return 0.5 * jnp.mean(jnp.sum((x @ params["w"] + params["b"] - y) ** 2, axis=1))


def train_steps(tx, params, x, y, steps, state=None, loss=squared_loss, first=0):
    """Mini-batches of 32 in turn from step ``first``; the params and state after each step."""
    state = tx.init(params) if state is None else state
    update, grad = jax.jit(tx.update), jax.jit(jax.grad(loss))
    history = []
    for i in range(first, first + steps):
        batch = slice((32 * i) % len(x), (32 * i) % len(x) + 32)
        updates, state = update(grad(params, x[batch], y[batch]), state, params)
        params = optax.apply_updates(params, updates)
        history.append((params, state))
    return history


ONLY_W = {"w": True, "b": False}
RELAXED = {
    "prox_l1 after sgd": (
        lambda k: optax.chain(optax.sgd(0.1), lj.prox_l1(0.1, 0.1, mask=ONLY_W, relax_after=k)),
        lambda state: state[1].inner_state.support["w"],
        lambda state: optax.sgd(0.1).init(None),
    ),
    "prox_group_l1 after sgd": (
        lambda k: optax.chain(
            optax.sgd(0.1), lj.prox_group_l1(0.1, 0.1, axis=1, mask=ONLY_W, relax_after=k)
        ),
        lambda state: state[1].inner_state.support["w"],
        lambda state: optax.sgd(0.1).init(None),
    ),
    "adam_l1": (
        lambda k: lj.adam_l1(0.05, 0.1, mask=ONLY_W, relax_after=k),
        lambda state: state.support["w"],
        lambda state: (state.adam, optax.EmptyState()),
    ),
    "adam_l1(axis=1)": (
        lambda k: lj.adam_l1(0.05, 0.1, axis=1, mask=ONLY_W, relax_after=k),
        lambda state: state.support["w"],
        lambda state: (state.adam, optax.EmptyState()),
    ),
}


@pytest.mark.parametrize("name", list(RELAXED))
def test_after_relax_after_steps_zeros_stay_zero_and_the_rest_is_the_plain_optimizer(name):
    make, support_in, reference_state = RELAXED[name]
    x, y, params = regression()
    k, more = 20, 20
    history = train_steps(make(k), params, x, y, k + more)
    at_switch, switch_state = history[k - 1]
    support = np.asarray(support_in(switch_state))
    w = np.asarray(at_switch["w"])
    # The support in the state is the nonzero pattern left by the last selecting step.
    np.testing.assert_array_equal(np.broadcast_to(support, w.shape), w != 0)
    assert 0 < np.sum(w == 0) < w.size  # the test needs both zeros and selected weights
    frozen = np.asarray(support_in(history[-1][1]))
    np.testing.assert_array_equal(frozen, support)

    # The reference: the bare optimizer (sgd, or Adam from the same moments) on the masked
    # problem, the weights outside the support fixed at 0 inside the loss.
    mask = jnp.asarray(support)

    def masked_loss(params, x, y):
        return squared_loss({"w": params["w"] * mask, "b": params["b"]}, x, y)

    bare = optax.sgd(0.1) if "sgd" in name else optax.adam(0.05)
    rest = train_steps(bare, at_switch, x, y, more, reference_state(switch_state), masked_loss, k)
    expected, relaxed = rest[-1][0], history[-1][0]
    got = np.asarray(relaxed["w"])
    np.testing.assert_array_equal(got[~np.broadcast_to(support, w.shape)], 0.0)  # exact zeros
    np.testing.assert_allclose(got, np.asarray(expected["w"] * mask), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(relaxed["b"], expected["b"], rtol=1e-5, atol=1e-6)
    # Without relax_after the penalty keeps shrinking: the weights end elsewhere.
    shrunk = np.asarray(train_steps(make(None), params, x, y, k + more)[-1][0]["w"])
    assert np.max(np.abs(shrunk - got)) > 1e-2


def test_relax_after_zero_keeps_the_initial_zeros_and_never_shrinks():
    x, y, params = regression(1)
    params["w"] = params["w"].at[3:].set(0.0)
    tx = optax.chain(optax.sgd(0.1), lj.prox_l1(10.0, 0.1, mask=ONLY_W, relax_after=0))
    relaxed = train_steps(tx, params, x, y, 5)[-1][0]

    def masked_loss(params, x, y):
        return squared_loss({"w": params["w"].at[3:].set(0.0), "b": params["b"]}, x, y)

    plain = train_steps(optax.sgd(0.1), params, x, y, 5, loss=masked_loss)[-1][0]
    np.testing.assert_array_equal(np.asarray(relaxed["w"][3:]), 0.0)
    np.testing.assert_allclose(relaxed["w"][:3], plain["w"][:3], rtol=1e-5, atol=1e-7)


def test_relax_after_jits_in_a_scan_and_without_a_mask():
    # relax_after inside lax.scan (a traced count): the switch happens mid-scan.
    x, y, params = regression(2)
    tx = optax.chain(optax.sgd(0.1), lj.prox_group_l1(0.2, 0.1, axis=1, relax_after=10))
    params = {"w": params["w"]}

    def loss(p, xb, yb):
        return squared_loss({"w": p["w"], "b": 0.0}, xb, yb)

    @jax.jit
    def run(params, state):
        def one(carry, batch):
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params, *batch), state, params)
            return (optax.apply_updates(params, updates), state), None

        xs, ys = x.reshape(16, 32, 6), y.reshape(16, 32, 3)
        return jax.lax.scan(one, (params, state), (xs, ys))[0]

    expected = train_steps(tx, params, x, y, 16, loss=loss)[-1][0]  # step by step
    params, state = run(params, tx.init(params))
    np.testing.assert_allclose(params["w"], expected["w"], rtol=1e-5, atol=1e-7)
    assert int(state[1].count) == 16
    assert state[1].support["w"].shape == (6, 1)
    assert 0 < int(jnp.sum(state[1].support["w"])) < 6


@pytest.mark.parametrize("owner", ["prox_l1", "prox_group_l1", "adam_l1"])
@pytest.mark.parametrize(
    "bad, error",
    [
        (-1, ValueError),
        (float("nan"), TypeError),
        (2.5, TypeError),
        ("10", TypeError),
        (True, TypeError),
    ],
)
def test_bad_relax_after(owner, bad, error):
    make = {
        "prox_l1": lambda: lj.prox_l1(0.1, 0.1, relax_after=bad),
        "prox_group_l1": lambda: lj.prox_group_l1(0.1, 0.1, axis=1, relax_after=bad),
        "adam_l1": lambda: lj.adam_l1(0.1, 0.1, relax_after=bad),
    }[owner]
    with pytest.raises(error) as raised:
        make()
    message = str(raised.value)
    assert f"The 'relax_after' parameter of {owner} must be" in message
    assert f"Got {bad!r} instead." in message


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("b1", 1.0),
        ("b1", -0.1),
        ("b2", 1.5),
        ("b2", math.nan),
        ("eps", -1.0),
        ("eps", math.nan),
        ("eps", math.inf),
    ],
)
def test_adam_l1_refuses_bad_adam_parameters(name, bad):
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of adam_l1 .* Got {bad}"):
        lj.adam_l1(1e-3, 0.01, **{name: bad})


@pytest.mark.parametrize("bad", ["abc", 1.5, {"w": "yes"}])
def test_a_mask_that_is_not_a_tree_of_bools_is_refused(bad):
    for make in (
        lambda: lj.prox_l1(0.1, 0.1, mask=bad),
        lambda: lj.prox_group_l1(0.1, 0.1, axis=1, mask=bad),
        lambda: lj.adam_l1(0.1, 0.1, mask=bad),
    ):
        with pytest.raises(ValueError, match="The 'mask' parameter of"):
            make()
