"""l1_regularization: the seed's example, every container, every library, precision, errors."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import l1reg
from l1reg import l1_regularization

SEED_WEIGHTS = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([-1.0, 3.0])]


def _torch():
    return pytest.importorskip("torch")


def _jnp():
    pytest.importorskip("jax")
    import jax.numpy as jnp

    return jnp


# -- the seed's example ------------------------------------------------------------------------


def test_seed_example_numpy():
    value = l1_regularization(SEED_WEIGHTS, lambda_reg=0.01)
    assert isinstance(value, np.floating)
    assert value == pytest.approx(0.075, rel=1e-15)


def test_seed_example_torch():
    torch = _torch()
    weights = [torch.tensor(w, requires_grad=True) for w in SEED_WEIGHTS]
    value = l1_regularization(weights, lambda_reg=0.01)
    assert isinstance(value, torch.Tensor) and value.ndim == 0
    assert value.item() == pytest.approx(0.075, rel=1e-15)
    value.backward()
    expected = [0.01 * np.sign(w) for w in SEED_WEIGHTS]  # sign(0) = 0: gradient 0 at 0
    for weight, grad in zip(weights, expected):
        np.testing.assert_array_equal(weight.grad.numpy(), grad)


def test_seed_example_jax():
    jnp = _jnp()
    import jax

    weights = [jnp.asarray(w, dtype=jnp.float32) for w in SEED_WEIGHTS]
    value = l1_regularization(weights, lambda_reg=0.01)
    assert isinstance(value, jax.Array) and value.ndim == 0
    assert float(value) == pytest.approx(0.075, rel=1e-6)
    grads = jax.grad(l1_regularization)(weights)
    for grad, weight in zip(grads, SEED_WEIGHTS):
        np.testing.assert_allclose(np.asarray(grad), 0.01 * np.sign(weight), rtol=1e-6)
    assert float(grads[0][1, 1]) == 0.0


def test_jit_and_pytree_of_dicts():
    jnp = _jnp()
    import jax

    tree = {"dense": {"kernel": jnp.ones((3, 2)), "bias": -jnp.ones(2)}, "scale": (jnp.zeros(4),)}
    value = jax.jit(lambda t: l1_regularization(t, lambda_reg=0.5))(tree)
    assert float(value) == pytest.approx(4.0)


# -- containers ----------------------------------------------------------------------------------


def test_nested_containers_and_generators_count_every_array_once():
    nested = {"a": [SEED_WEIGHTS[0], (SEED_WEIGHTS[1],)], "b": {}}
    assert l1_regularization(nested, 0.01) == pytest.approx(0.075)
    assert l1_regularization(iter(SEED_WEIGHTS), 0.01) == pytest.approx(0.075)
    assert l1_regularization(SEED_WEIGHTS[1], 1.0) == pytest.approx(4.0)


def test_torch_module_parameters_generator():
    torch = _torch()
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    expected = sum(float(p.detach().abs().sum()) for p in model.parameters())
    value = l1_regularization(model.parameters(), lambda_reg=0.1)
    assert value.item() == pytest.approx(0.1 * expected, rel=1e-6)
    value.backward()
    for p in model.parameters():
        torch.testing.assert_close(p.grad, 0.1 * torch.sign(p.detach()))


@pytest.mark.parametrize("empty", [[], (), {}, {"a": []}, iter([])])
def test_empty_container_gives_zero(empty):
    value = l1_regularization(empty, lambda_reg=0.3)
    assert value == 0.0


def test_integers_are_promoted_to_float():
    value = l1_regularization(np.array([1, -2, 3], dtype=np.int8), lambda_reg=0.5)
    assert value.dtype == np.float64 and value == 3.0
    torch = _torch()
    value = l1_regularization(torch.tensor([100, -100], dtype=torch.int8), lambda_reg=1.0)
    assert value.dtype == torch.get_default_dtype() and value.item() == 200.0


def test_complex_weights_sum_their_moduli_in_the_real_dtype():
    value = l1_regularization(np.array([3 + 4j, -1j], dtype=np.complex64), lambda_reg=1.0)
    assert value.dtype == np.float32 and value == 6.0
    torch = _torch()
    value = l1_regularization(torch.tensor([3 + 4j, -1j], dtype=torch.complex64), lambda_reg=1.0)
    assert value.dtype == torch.float32 and value.item() == 6.0


def test_inputs_are_not_modified():
    weights = [w.copy() for w in SEED_WEIGHTS]
    l1_regularization(weights, 0.01)
    for w, original in zip(weights, SEED_WEIGHTS):
        np.testing.assert_array_equal(w, original)


def test_any_array_api_library():
    xps = pytest.importorskip("array_api_strict")
    weights = [xps.asarray(w) for w in SEED_WEIGHTS]
    value = l1_regularization(weights, 0.01)
    assert type(value).__module__.startswith("array_api_strict")
    assert float(value) == pytest.approx(0.075)


# -- precision -----------------------------------------------------------------------------------

N_LOW_PRECISION = 50_000_000


def _reference(values: np.ndarray) -> float:
    return float(np.abs(values.astype(np.float64)).sum())


def test_bfloat16_torch_sums_in_float32():
    torch = _torch()
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(N_LOW_PRECISION, generator=generator) * 2 - 1).to(torch.bfloat16)
    exact = _reference(x.float().numpy())
    value = l1_regularization([x], lambda_reg=1.0)
    assert value.dtype == torch.float32
    assert abs(value.item() - exact) / exact < 1e-6
    # What it guards against: a bfloat16 running sum is off by orders of magnitude.
    naive = x[:100_000].cumsum(0, dtype=torch.bfloat16)[-1].item()
    assert abs(naive - _reference(x[:100_000].float().numpy())) > 1e3


def test_float16_numpy_sums_in_float32():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, N_LOW_PRECISION).astype(np.float16)
    exact = _reference(x)
    value = l1_regularization(x, lambda_reg=1.0)
    assert value.dtype == np.float32
    assert abs(float(value) - exact) / exact < 1e-6


def test_bfloat16_jax_sums_in_float32():
    jnp = _jnp()
    import jax

    x = jax.random.uniform(jax.random.key(0), (N_LOW_PRECISION,), minval=-1, maxval=1)
    x = x.astype(jnp.bfloat16)
    exact = _reference(np.asarray(x.astype(jnp.float32)))
    value = l1_regularization(x, lambda_reg=1.0)
    assert value.dtype == jnp.float32
    assert abs(float(value) - exact) / exact < 1e-6


def test_torch_sum_stays_exact_past_2_to_the_24():
    torch = _torch()
    # torch.norm(torch.ones(2**26), 1) gives 16,777,216 on the CPU: a float32 running sum stalls.
    ones = torch.ones(2**26)
    assert l1_regularization(ones, lambda_reg=1.0).item() == 2**26


# -- agreement between libraries ------------------------------------------------------------------

arrays = hnp.arrays(
    dtype=np.float64,
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
    # Magnitudes that survive the cast to float32 for JAX, and many exact zeros.
    elements=st.one_of(st.just(0.0), st.floats(1e-3, 100), st.floats(-100, -1e-3)),
)


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(arrays, min_size=1, max_size=4),
    lambda_reg=st.one_of(st.just(0.0), st.floats(1e-3, 10)),
)
def test_libraries_agree_on_values_and_gradients(weights, lambda_reg):
    torch = _torch()
    jnp = _jnp()
    import jax

    expected = lambda_reg * sum(np.abs(w).sum() for w in weights)
    expected_grads = [lambda_reg * np.sign(w) for w in weights]

    assert float(l1_regularization(weights, lambda_reg)) == pytest.approx(expected, rel=1e-12)

    tensors = [torch.tensor(w, requires_grad=True) for w in weights]
    value = l1_regularization(tensors, lambda_reg)
    assert value.item() == pytest.approx(expected, rel=1e-12)
    value.backward()
    for tensor, grad in zip(tensors, expected_grads):
        np.testing.assert_array_equal(tensor.grad.numpy(), grad)

    jax_weights = [jnp.asarray(w, dtype=jnp.float32) for w in weights]
    value, grads = jax.value_and_grad(l1_regularization)(jax_weights, lambda_reg)
    assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-6)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lambda_reg", "error"),
    [
        (-0.1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("0.01", TypeError),
        (None, TypeError),
        (True, TypeError),
        ([0.01], TypeError),
    ],
)
def test_bad_lambda_names_parameter_and_value(lambda_reg, error):
    with pytest.raises(error) as info:
        l1_regularization(SEED_WEIGHTS, lambda_reg=lambda_reg)
    message = str(info.value)
    assert "'lambda_reg'" in message and "l1_regularization" in message
    assert repr(lambda_reg) in message


def test_bad_lambda_is_reported_before_any_work():
    consumed = []

    def weights():
        consumed.append(True)
        yield SEED_WEIGHTS[0]

    with pytest.raises(ValueError, match="lambda_reg"):
        l1_regularization(weights(), lambda_reg=-1)
    assert consumed == []


def test_non_array_leaf_is_named_by_its_path():
    with pytest.raises(TypeError) as info:
        l1_regularization({"layer": [SEED_WEIGHTS[0], "oops"]})
    message = str(info.value)
    assert "weights['layer'][1]" in message and "'oops'" in message


def test_none_is_not_a_weight_even_with_jax_loaded():
    pytest.importorskip("jax")
    with pytest.raises(TypeError, match=r"weights\['bias'\]"):
        l1_regularization({"kernel": SEED_WEIGHTS[0], "bias": None})


def test_mixed_libraries_raise_before_computing():
    torch = _torch()
    with pytest.raises(ValueError, match="numpy, torch"):
        l1_regularization([SEED_WEIGHTS[0], torch.ones(2)])


def test_a_module_gets_a_hint():
    torch = _torch()
    with pytest.raises(TypeError, match=r"model\.parameters\(\)"):
        l1_regularization(torch.nn.Linear(2, 2))


# -- what `import l1reg` loads ---------------------------------------------------------------------


def test_import_l1reg_loads_no_framework():
    code = (
        "import sys, l1reg; "
        "heavy = [m for m in ('torch', 'jax', 'keras', 'tensorflow', 'numba', 'matplotlib', "
        "'pandas') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_public_names():
    for name in ("l1_regularization", "prox_l1", "prox_l1_", "L1", "WeightedL1", "GroupL1"):
        assert hasattr(l1reg, name)
