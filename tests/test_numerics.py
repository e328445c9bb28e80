"""The shared numerics (``l1reg._numerics``) and what is tested against them."""

from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

import l1reg
from l1reg import _numerics, l1_norm, l1_regularization, prox_l1, prox_l1_

T = np.concatenate([np.linspace(-800.0, 800.0, 4001), [-1e-12, 0.0, 1e-12, 36.7, -36.7]])


def test_numba_logistic_kernels_agree_with_the_shared_definitions():
    # The compiled scalar kernels stay separate for speed; they must give the same values.
    from l1reg.solvers import _cd_logistic

    xp = np
    compiled_sigmoid = np.array([_cd_logistic.sigmoid(t) for t in T])
    compiled_log1p_exp = np.array([_cd_logistic.log1p_exp(t) for t in T])
    np.testing.assert_allclose(compiled_sigmoid, _numerics.sigmoid(xp, T), rtol=4e-16, atol=0)
    np.testing.assert_allclose(compiled_log1p_exp, _numerics.log1p_exp(xp, T), rtol=4e-16, atol=0)
    # and both are right where the naive formulas overflow or cancel
    assert _numerics.log1p_exp(xp, np.array(800.0)) == 800.0
    assert _numerics.sigmoid(xp, np.array(-800.0)) == 0.0
    assert _numerics.log1p_exp(xp, np.array(-40.0)) == pytest.approx(math.exp(-40.0), rel=1e-15)


def test_blocked_sum_of_float32_stays_accurate():
    rng = np.random.default_rng(0)
    x = rng.random(3_000_001, dtype=np.float32)
    exact = math.fsum(x.astype(np.float64))
    total = float(_numerics.blocked_sum(np, x))
    assert abs(total - exact) / exact < 1e-6
    running = float(np.cumsum(x, dtype=np.float32)[-1])  # what the blocks guard against
    assert abs(running - exact) / exact > 1e-5


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_accumulation_dtype_on_each_library(library):
    # One rule for every adapter: half floats sum in float32, complex in its real dtype, integers
    # in the default float, float32/float64 as they are (torch's finfo names the real dtype).
    if library == "torch":
        pytest.importorskip("torch")
        import array_api_compat.torch as xp
    else:
        xp = np
    rule = {
        "float16": "float32",
        "float32": "float32",
        "float64": "float64",
        "complex64": "float32",
        "complex128": "float64",
        "int32": "float64" if library == "numpy" else "float32",
    }
    for name, expected in rule.items():
        assert _numerics.accumulation_dtype(xp, getattr(xp, name)) == getattr(xp, expected), name


def test_numeric_dtypes():
    assert _numerics.is_numeric_dtype(np.dtype(np.int8))
    assert _numerics.is_numeric_dtype(np.dtype(np.complex64))
    assert not _numerics.is_numeric_dtype(np.dtype("U3"))
    assert not _numerics.is_numeric_dtype(np.dtype(object))
    assert not _numerics.is_numeric_dtype(None)


def test_numpy_bfloat16_is_summed_in_float32():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.full(100_000, 1.0, dtype=ml_dtypes.bfloat16)
    value = l1_regularization([x, -x[:10]], lambda_reg=1.0)
    assert value.dtype == np.float32
    assert float(value) == 100_010.0  # a bfloat16 running sum stops at 256
    assert _numerics.is_numeric_dtype(x.dtype)


def test_numpy_bfloat16_prox_keeps_its_dtype():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([-2.0, 0.5, 3.0, -0.25], dtype=ml_dtypes.bfloat16)
    shrunk = prox_l1(x, 1.0)
    assert shrunk.dtype == x.dtype
    np.testing.assert_array_equal(shrunk.astype(np.float32), [-1.0, 0.0, 2.0, 0.0])
    per_coordinate = prox_l1(x, np.array([0.0, 0.0, 1.0, 1.0], dtype=ml_dtypes.bfloat16))
    np.testing.assert_array_equal(per_coordinate.astype(np.float32), [-2.0, 0.5, 2.0, 0.0])
    same = prox_l1_(x, 1.0)
    assert same is x and x.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(x.astype(np.float32), [-1.0, 0.0, 2.0, 0.0])


def test_arrays_of_text_are_refused_by_name():
    with pytest.raises(TypeError, match=r"'weights' parameter of l1_norm .* Got array\(\['a'"):
        l1_norm([np.ones(2), np.array(["a", "b"])])
    with pytest.raises(TypeError, match=r"'x' parameter of prox_l1 .* Got array\(\['a'"):
        prox_l1(np.array(["a", "b"]), 1.0)


def test_bad_threshold_arrays_show_the_value_and_what_is_wrong():
    with pytest.raises(
        ValueError, match=r"Got array\(\[-1\. , 0\.5\]\).*Entries array\(\[-1\.\]\)"
    ):
        prox_l1(np.ones(2), np.array([-1.0, 0.5]))
    with pytest.raises(ValueError, match=r"Its shape \(7, 3\) does not broadcast to \(3,\)"):
        prox_l1(np.ones(3), np.ones((7, 3)))


_SRC = pathlib.Path(l1reg.__file__).parent
# Each formula is defined in one module (the compiled kernels that stay separate for speed are
# tested against it, above and in tests/test_torch.py): a definition found elsewhere is a copy.
_DEFINED_ONCE = {
    r"^BLOCK = \d+\s*$": {"_numerics.py"},  # (the sum's block; torch's thread blocks differ)
    r"^def accumulation_dtype\(": {"_numerics.py"},
    r"^def blocked_sum\(": {"_numerics.py"},
    # (torch's compiled loop and its entry point, tested against it in tests/test_torch.py)
    r"^def sum_abs\(": {"_numerics.py", "torch/_cpu/_kernels.py", "torch/_cpu/__init__.py"},
    r"^def sigmoid\(": {"_numerics.py", "solvers/_cd_logistic.py"},
    r"^def log1p_exp\(": {"_numerics.py", "solvers/_cd_logistic.py"},
    r"^NEWTON_STEPS = ": {"prox.py"},
    r"^def (metric_group_factor|group_shrink_factor)\(": {"prox.py"},
    # (the solvers' scalar kernel, tested against it in tests/test_solvers_kernels.py)
    r"^def soft_threshold\(": {"prox.py", "solvers/_cd_common.py"},
    r"^def positive_class_share\(": {"datafits.py"},
    r"^def uses_gram\(": {"solvers/_quadratic.py"},
}
# Names of the copies this rule replaced (issue 11): none may come back.
_GONE = re.compile(
    r"\b(_NEWTON_STEPS|_BLOCK|_group_factor|_torch_metric_group_factor|_sigmoid|_log1p_exp"
    r"|_mean_log_loss|_both_classes)\b"
)


def _sources() -> dict[str, str]:
    return {
        path.relative_to(_SRC).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(_SRC.rglob("*.py"))
    }


def test_each_formula_is_defined_once():
    sources = _sources()
    for pattern, allowed in _DEFINED_ONCE.items():
        where = {name for name, text in sources.items() if re.search(pattern, text, re.M)}
        assert where == allowed, (pattern, sorted(where))
    copies = {name: sorted(set(_GONE.findall(text))) for name, text in sources.items()}
    assert not {name: found for name, found in copies.items() if found}


def test_no_module_is_too_big_to_hold_in_mind():
    sizes = {name: text.count("\n") for name, text in _sources().items()}
    assert max(sizes.values()) <= 600, sorted(sizes.items(), key=lambda item: -item[1])[:3]
