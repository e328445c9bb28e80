"""The cases of the house rules test (``tests/test_house_rules.py``), one module per layer.

A :class:`Case` says how to call one public callable with valid arguments for every parameter;
the test replaces one argument at a time by each bad value its declared constraints list, and
checks the error. ``PYTHONPATH=tests python -m house`` prints how many parameters and bad inputs
it covers.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Case:
    """One public callable, called with valid arguments.

    ``target``: its dotted name (``"l1reg.Lasso"`` is the constructor, ``"l1reg.Lasso.fit"`` a
    method). ``valid()``: fresh valid arguments, one per parameter. ``call(args)``: the call
    (default ``target(**args)``; a constructor whose parameters an estimator checks in ``fit`` calls
    ``fit`` too). ``work``: ``"module:attribute"`` names where the real work starts; the test
    replaces them by a function that fails, so an error raised after the work began is caught.
    """

    target: str
    valid: Callable[[], dict]
    call: Callable[[dict], Any] | None = None
    work: tuple[str, ...] = ()
    #: Parameters whose bad values are arrays named by what is wrong with them (shape, NaN),
    #: not by their repr (scikit-learn's "Input X contains NaN.").
    arrays: tuple[str, ...] = field(default=())


def method(name: str) -> Callable[[dict], Any]:
    """The ``call`` of a method's case: ``args["self"].<name>(**other args)``."""

    def call(args: dict) -> Any:
        args = dict(args)
        return getattr(args.pop("self"), name)(**args)

    return call


def resolve(dotted: str) -> Any:
    """The object a dotted public name refers to (a module attribute or a class's method)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def snapshot(value: Any) -> Any:
    """A copy of ``value`` to compare it with after a failed call (see :func:`unchanged`)."""
    torch = _module("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        return (
            "module",
            value.training,
            {k: v.detach().clone() for k, v in value.state_dict().items()},
        )
    if torch is not None and isinstance(value, torch.Tensor):
        return ("tensor", value.detach().clone())
    if hasattr(value, "get_weights") and hasattr(value, "trainable_weights"):  # a Keras model
        return ("keras", [np.array(w) for w in value.get_weights()])
    if hasattr(value, "get_params") and hasattr(value, "fit"):  # a scikit-learn estimator
        return ("estimator", copy.deepcopy(vars(value)))
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    try:
        return ("copy", copy.deepcopy(value))
    except Exception:
        return ("none", None)


def unchanged(value: Any, before: Any) -> bool:
    kind, *saved = before
    if kind == "module":
        training, state = saved
        now = value.state_dict()
        import torch

        return value.training == training and all(torch.equal(now[k], v) for k, v in state.items())
    if kind == "tensor":
        import torch

        return torch.equal(value.detach(), saved[0]) or bool(
            torch.isnan(saved[0]).all() and torch.isnan(value).all()
        )
    if kind == "keras":
        return all(
            np.array_equal(a, b, equal_nan=True) for a, b in zip(value.get_weights(), saved[0])
        )
    if kind == "estimator":  # every attribute, fitted ones included, as it was
        now = vars(value)
        return now.keys() == saved[0].keys() and all(
            unchanged(now[key], snapshot(saved[0][key])) for key in now
        )
    if kind == "array":
        try:
            return np.array_equal(value, saved[0], equal_nan=value.dtype.kind in "fc")
        except TypeError:
            return np.array_equal(value, saved[0])
    if kind == "copy":
        if isinstance(value, float) and isinstance(saved[0], float) and value != value:
            return saved[0] != saved[0]
        if type(value).__eq__ is object.__eq__:
            return True  # identity is all it compares: nothing to say about its state
        try:
            same = value == saved[0]
            return bool(np.all(same)) if not isinstance(same, bool) else same
        except Exception:
            return True  # no equality to compare with: nothing to say
    return True


def _module(name: str) -> Any:
    import sys

    return sys.modules.get(name)
