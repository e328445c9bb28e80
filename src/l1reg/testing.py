"""Checks that a penalty object keeps its promises: for l1reg's tests and for users' penalties.

>>> from l1reg import L1
>>> from l1reg.testing import check_penalty
>>> check_penalty(L1(0.3))
"""

from __future__ import annotations

import json

import numpy as np
from scipy.optimize import minimize

from .penalties import Penalty

__all__ = ["check_penalty"]


def _objective(penalty: Penalty, v: np.ndarray, step: float):
    """x -> 1/2 ||x - v||^2 + step * penalty(x): the function the prox minimizes."""

    def objective(flat: np.ndarray) -> float:
        x = flat.reshape(v.shape)
        return 0.5 * float(np.sum((x - v) ** 2)) + step * float(penalty.value(x))

    return objective


def _brute_force_prox(penalty: Penalty, v: np.ndarray, step: float) -> np.ndarray:
    """The prox found by a derivative-free minimizer, from several starts, with no use of prox."""
    objective = _objective(penalty, v, step)
    best = None
    for start in (v, np.zeros_like(v), 0.5 * v):
        result = minimize(
            objective,
            start.ravel(),
            method="Powell",
            options={"xtol": 1e-12, "ftol": 1e-15, "maxfev": 200_000},
        )
        if best is None or result.fun < best.fun:
            best = result
    return best.x.reshape(v.shape)


def check_penalty(penalty: Penalty, shape: tuple[int, ...] | None = None, *, seed: int = 0) -> None:
    """Raise ``AssertionError`` unless ``penalty`` behaves as every l1reg penalty must.

    Checked on random NumPy points of ``shape`` (default: the shape of ``penalty.weights`` where the
    penalty has per-coordinate weights, else (4, 3)):

    1. ``prox`` agrees with a brute-force minimizer of ``1/2 ||x - v||^2 + step * penalty(x)``, and
       no random perturbation of its output does better;
    2. optimality of the prox through the subdifferential: ``subdiff_distance(p, (v - p) / step)``
       is 0, where ``p = prox(v, step)``;
    3. ``subgradient(w)`` lies in the subdifferential at ``w`` and is 0 where the prox zeroed ``w``;
    4. ``alpha_max(g)`` is the smallest strength for which ``w = 0`` is optimal, given gradient
       ``g``;
    5. the value is a norm times ``lambda_reg`` (0 at 0, positively homogeneous);
    6. ``get_config`` is JSON-serializable and ``from_config`` rebuilds an equal penalty.
    """
    name = type(penalty).__name__
    rng = np.random.default_rng(seed)
    if shape is None:
        weights = getattr(penalty, "weights", None)
        shape = np.shape(weights) if weights is not None and np.ndim(weights) else (4, 3)
    v = rng.standard_normal(shape)
    v.ravel()[:: max(1, v.size // 3)] *= 0.05  # some small values, which the prox zeroes
    step = 0.7

    # 1. The prox minimizes its objective.
    p = np.asarray(penalty.prox(v, step))
    objective = _objective(penalty, v, step)
    brute = _brute_force_prox(penalty, v, step)
    f_prox, f_brute = objective(p.ravel()), objective(brute.ravel())
    assert f_prox <= f_brute + 1e-9 * max(1.0, abs(f_brute)), (
        f"{name}.prox is not the minimizer: objective {f_prox!r} at prox, {f_brute!r} found by "
        "brute force"
    )
    # 1-strongly convex: an objective gap of d puts points within sqrt(2 d) of the minimizer.
    assert np.allclose(p, brute, atol=1e-4), f"{name}.prox differs from the brute-force minimizer"
    for _ in range(20):
        nudged = p + 1e-3 * rng.standard_normal(shape)
        assert f_prox <= objective(nudged.ravel()) + 1e-12, f"{name}.prox is beaten by a nudge"

    # 2. Optimality of the prox: 0 in (p - v)/step + subdifferential at p.
    distance = np.max(np.asarray(penalty.subdiff_distance(p, (p - v) / step)))
    assert distance <= 1e-10, f"{name}.subdiff_distance says the prox is not optimal ({distance})"

    # 3. The minimum-norm subgradient.
    w = p
    sub = np.asarray(penalty.subgradient(w))
    distance = np.max(np.asarray(penalty.subdiff_distance(w, -sub)))
    assert distance <= 1e-10, f"{name}.subgradient is not in the subdifferential ({distance})"
    assert np.all(sub[w == 0] == 0), f"{name}.subgradient is not 0 where the weights are 0"

    # 4. alpha_max: w = 0 is optimal at alpha_max and not below it. Unpenalized coordinates (those
    # that no strength can hold at 0) are at their own optimum, gradient 0, as a solver leaves them.
    config = penalty.get_config()
    zero = np.zeros(shape)
    g = rng.standard_normal(shape)
    huge = type(penalty).from_config({**config, "lambda_reg": 1e12})
    unpenalized = np.asarray(huge.subdiff_distance(zero, g)) > 0
    if unpenalized.shape == g.shape:  # one distance per coordinate: a separable penalty
        g[unpenalized] = 0.0
    alpha = penalty.alpha_max(g)
    at_max = type(penalty).from_config({**config, "lambda_reg": alpha})
    below = type(penalty).from_config({**config, "lambda_reg": 0.99 * alpha})
    assert np.max(np.asarray(at_max.subdiff_distance(zero, g))) <= 1e-10, (
        f"{name}.alpha_max is too small: w = 0 is not optimal at lambda_reg = alpha_max"
    )
    assert np.max(np.asarray(below.subdiff_distance(zero, g))) > 0, (
        f"{name}.alpha_max is too large: w = 0 is still optimal below it"
    )

    # 5. A norm times lambda_reg.
    assert float(penalty.value(zero)) == 0.0, f"{name}.value is not 0 at 0"
    assert np.isclose(float(penalty.value(2.5 * v)), 2.5 * float(penalty.value(v))), (
        f"{name}.value is not positively homogeneous"
    )

    # 6. Config round trip.
    text = json.dumps(config)
    rebuilt = type(penalty).from_config(json.loads(text))
    assert rebuilt == penalty and rebuilt.get_config() == config, (
        f"{name}.from_config(get_config()) does not rebuild the penalty"
    )
