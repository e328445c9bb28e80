"""Penalty objects, through l1reg.testing.check_penalty and by hand."""

import json

import numpy as np
import pytest

from l1reg import L1, GroupL1, WeightedL1
from l1reg.testing import check_penalty

PENALTIES = [
    (L1(0.3), None),
    (L1(0.0), None),
    (WeightedL1(0.4, weights=[[1, 0, 2], [0.5, 1, 1], [1, 1, 3], [0, 1, 1]]), None),
    (GroupL1(0.5, axis=1), None),
    (GroupL1(0.5, axis=0), None),
    (GroupL1(0.2, axis=(0, 2)), (2, 3, 2)),
]


@pytest.mark.parametrize(("penalty", "shape"), PENALTIES, ids=repr)
def test_check_penalty(penalty, shape):
    check_penalty(penalty, shape)


class _WrongProx(L1):
    def prox(self, w, step):
        return super().prox(w, 2 * step)


def test_check_penalty_catches_a_wrong_prox():
    with pytest.raises(AssertionError, match="not the minimizer"):
        check_penalty(_WrongProx(0.3))


def test_values():
    w = np.array([[3.0, -4.0], [0.0, 0.0], [1.0, 0.0]])
    assert L1(0.5).value(w) == pytest.approx(4.0)
    assert WeightedL1(0.5, weights=[[1, 0], [1, 1], [2, 2]]).value(w) == pytest.approx(2.5)
    # rows are groups of size 2: sqrt(2) * (5 + 0 + 1)
    assert GroupL1(1.0, axis=1).value(w) == pytest.approx(np.sqrt(2) * 6)


def test_group_prox_zeroes_whole_groups():
    w = np.array([[3.0, -4.0], [0.3, 0.4], [1.0, 0.0]])
    out = GroupL1(1.0, axis=1).prox(w, step=1 / np.sqrt(2))  # threshold 1 on each row's norm
    np.testing.assert_allclose(out, [[2.4, -3.2], [0.0, 0.0], [0.0, 0.0]])


def test_alpha_max():
    g = np.array([0.5, -2.0, 1.0])
    assert L1().alpha_max(g) == 2.0
    assert WeightedL1(weights=[1.0, 4.0, 0.0]).alpha_max(g) == 0.5
    assert GroupL1(axis=0).alpha_max(np.array([[3.0, 0.0], [4.0, 1.0]])) == pytest.approx(
        5 / np.sqrt(2)
    )


def test_torch_and_jax_agree_with_numpy():
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3))
    w[1] = 0
    for penalty, _ in PENALTIES[:5]:
        expected_value = penalty.value(w)
        expected_prox = penalty.prox(w, 0.3)
        assert penalty.value(torch.tensor(w)).item() == pytest.approx(expected_value)
        np.testing.assert_allclose(penalty.prox(torch.tensor(w), 0.3).numpy(), expected_prox)
        np.testing.assert_allclose(penalty.prox(jnp.asarray(w), 0.3), expected_prox, rtol=1e-6)
        assert float(penalty.value(jnp.asarray(w))) == pytest.approx(expected_value, rel=1e-6)


def test_group_value_gradient_at_a_zero_group_is_zero():
    torch = pytest.importorskip("torch")
    w = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    GroupL1(1.0, axis=1).value(w).backward()
    assert torch.isfinite(w.grad).all()
    np.testing.assert_allclose(w.grad.numpy(), [[0.6 * np.sqrt(2), 0.8 * np.sqrt(2)], [0, 0]])


def test_config_round_trip_through_json():
    for penalty, _ in PENALTIES:
        config = json.loads(json.dumps(penalty.get_config()))
        assert type(penalty).from_config(config) == penalty


@pytest.mark.parametrize(
    ("make", "error", "shown"),
    [
        (lambda: L1(-1), ValueError, "'lambda_reg' parameter of L1"),
        (lambda: L1(float("nan")), ValueError, "nan"),
        (lambda: WeightedL1(0.1, weights=[1.0, -1.0]), ValueError, "'weights'"),
        (lambda: WeightedL1(0.1, weights=[1.0, np.nan]), ValueError, "'weights'"),
        (lambda: WeightedL1(0.1), TypeError, "'weights'"),
        (lambda: GroupL1(0.1, axis="rows"), TypeError, "'axis'"),
        (lambda: GroupL1(0.1, axis=2).value(np.ones(3)), ValueError, "shape (3,)"),
        (lambda: L1(0.1).prox(np.ones(3), -1.0), ValueError, "'step'"),
        (lambda: WeightedL1(0.1, weights=[1.0, 2.0]).value(np.ones(3)), ValueError, "(2,)"),
    ],
)
def test_bad_input(make, error, shown):
    with pytest.raises(error) as info:
        make()
    assert shown in str(info.value)


def test_weighted_l1_leaves_the_users_weights_writable():
    weights = np.array([1.0, 0.0, 2.0])
    penalty = WeightedL1(0.1, weights)
    assert weights.flags.writeable and not penalty.weights.flags.writeable
    weights[0] = 5.0  # the penalty keeps its own copy
    assert penalty.weights[0] == 1.0


def test_subdiff_distance_refuses_a_gradient_of_another_shape():
    with pytest.raises(ValueError, match=r"'grad' parameter of L1.subdiff_distance .* Its shape"):
        L1(0.1).subdiff_distance(np.ones(3), np.ones(4))
