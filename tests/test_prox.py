"""prox_l1 / prox_l1_: soft-thresholding on every library, never in place unless asked."""

import numpy as np
import pytest

from l1reg import prox_l1, prox_l1_

V = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0])
EXPECTED_AT_1 = np.array([-2.0, 0.0, 0.0, 0.0, 0.0, 1.0])


def test_scalar_threshold_gives_exact_zeros_and_leaves_input_alone():
    v = V.copy()
    out = prox_l1(v, 1.0)
    np.testing.assert_array_equal(out, EXPECTED_AT_1)
    np.testing.assert_array_equal(v, V)
    assert np.count_nonzero(out) == 2


def test_per_coordinate_threshold_broadcasts():
    threshold = np.array([0.0, 2.0, 0.1, 1.0, 0.5, 1.5])
    np.testing.assert_allclose(prox_l1(V, threshold), [-3.0, 0.0, -0.15, 0.0, 0.0, 0.5])
    matrix = np.array([[1.0, -2.0], [3.0, -0.5]])
    per_column = np.array([0.5, 1.0])
    np.testing.assert_allclose(prox_l1(matrix, per_column), [[0.5, -1.0], [2.5, 0.0]])


def test_matches_the_textbook_formula_on_random_input():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((50, 7))
    t = rng.uniform(0, 1, (50, 7))
    np.testing.assert_allclose(prox_l1(v, t), np.sign(v) * np.maximum(np.abs(v) - t, 0))


def test_integers_are_promoted():
    out = prox_l1(np.array([3, -1, 0]), 2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 0.0, 0.0])


def test_in_place_variant_numpy():
    v = V.copy()
    out = prox_l1_(v, 1.0)
    assert out is v
    np.testing.assert_array_equal(v, EXPECTED_AT_1)
    with pytest.raises(TypeError, match="floating-point"):
        prox_l1_(np.array([1, 2]), 1.0)


def test_torch_both_variants():
    torch = pytest.importorskip("torch")
    v = torch.tensor(V)
    out = prox_l1(v, 1.0)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), EXPECTED_AT_1)
    np.testing.assert_array_equal(v.numpy(), V)
    per_coordinate = prox_l1(v, torch.full((6,), 1.0, dtype=torch.float64))
    np.testing.assert_array_equal(per_coordinate.numpy(), EXPECTED_AT_1)
    assert prox_l1_(v, 1.0) is v
    np.testing.assert_array_equal(v.numpy(), EXPECTED_AT_1)


def test_jax_is_functional_only():
    pytest.importorskip("jax")
    import jax
    import jax.numpy as jnp

    v = jnp.asarray(V)
    np.testing.assert_array_equal(np.asarray(jax.jit(prox_l1)(v, 1.0)), EXPECTED_AT_1)
    traced = jax.jit(prox_l1)(v, jnp.ones(6, dtype=v.dtype))
    np.testing.assert_array_equal(np.asarray(traced), EXPECTED_AT_1)
    with pytest.raises(TypeError, match="immutable"):
        prox_l1_(v, 1.0)


@pytest.mark.parametrize(
    ("threshold", "error", "shown"),
    [
        (-1.0, ValueError, "-1.0"),
        (float("nan"), ValueError, "nan"),
        ("1", TypeError, "'1'"),
        (np.ones(4), ValueError, "shape (4,)"),
        (np.ones((2, 6)), ValueError, "shape (2, 6)"),
        (np.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0]), ValueError, "-1."),
    ],
)
def test_bad_threshold(threshold, error, shown):
    with pytest.raises(error) as info:
        prox_l1(V, threshold)
    assert "'threshold'" in str(info.value) and shown in str(info.value)


def test_mixed_libraries():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="numpy, torch"):
        prox_l1(torch.tensor(V), np.ones(6))


def test_x_must_be_an_array():
    with pytest.raises(TypeError, match="'x'"):
        prox_l1([1.0, 2.0], 1.0)
