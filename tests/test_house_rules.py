"""The house rules, for every public parameter: bad input is refused before any work.

The test walks the public surface (``l1reg.__all__``, ``l1reg.torch``, ``l1reg.keras``,
``l1reg.jax``). Every public function, class and method must declare its parameters'
constraints (``declare_params`` or a class's ``_parameter_constraints``, see
``l1reg._validation``), and have a case in ``tests/house/`` that calls it with valid arguments.
For each parameter, each bad value its constraints list (at least three: a wrong type, a value out
of range or NaN/inf, a wrong shape or library) must raise a ``TypeError`` or ``ValueError`` that
names the parameter and the value, before the work starts, leaving every argument as it was.
A new public parameter without constraints, or without a case, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from house import resolve, snapshot, unchanged
from house.cases import EXEMPT, PENDING, SURFACES, all_cases

from l1reg._validation import shown

CASES = all_cases()
BY_TARGET = {case.target: case for case in CASES}


class WorkStarted(Exception):
    """Raised by a patched work entry: the call got past its checks."""


def _constraints(target: str) -> dict:
    obj = resolve(target)
    if inspect.isclass(obj):
        return dict(getattr(obj, "_parameter_constraints", None) or {})
    return dict(getattr(obj, "__l1reg_constraints__", None) or {})


def _parameters(target: str) -> list[str]:
    obj = resolve(target)
    signature = inspect.signature(obj)
    return [
        name
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _public_targets() -> list[str]:
    """Every public callable of the surface that takes parameters, and public methods."""
    targets = []
    for module_name in SURFACES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            dotted = f"{module_name}.{name}"
            if not callable(obj):
                continue
            if dotted not in EXEMPT:
                targets.append(dotted)
            # (the methods of an exempt result record take user input all the same)
            if inspect.isclass(obj):
                for attr in _own_methods(obj):
                    method = f"{dotted}.{attr}"
                    if method not in EXEMPT and _parameters(method):
                        targets.append(method)
    return targets


def _own_methods(cls: type) -> dict:
    """The public methods ``cls`` defines, or inherits from a private class of l1reg (a public
    base's methods are walked as that base's)."""
    methods = {}
    for base in reversed(cls.__mro__):
        private_base = base.__module__.startswith("l1reg") and any(
            part.startswith("_") for part in [*base.__module__.split("."), base.__name__]
        )
        if base is cls or private_base:
            for attr, member in vars(base).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    methods[attr] = member
    return methods


def _bad_values(constraints: list, valid) -> list:
    here = [c for c in constraints if c.checked_here]
    bad = []
    for constraint in constraints:
        for value in constraint.invalid_examples(valid):
            if any(c.accepts(value) for c in here):
                continue
            if not any(shown(value) == shown(b) and type(value) is type(b) for b in bad):
                bad.append(value)
    return bad


PARAMETERS = [
    (target, name)
    for target in _public_targets()
    if target not in PENDING
    for name in _parameters(target)
]


def test_every_public_callable_has_a_case_and_declares_every_parameter():
    targets = _public_targets()
    missing = [t for t in targets if t not in BY_TARGET and t not in PENDING]
    assert not missing, f"no case in tests/house/ for {missing}"
    done = sorted(PENDING & set(BY_TARGET))
    assert not done, f"remove from house.cases.PENDING, they have cases now: {done}"
    assert PENDING <= set(targets), sorted(PENDING - set(targets))
    for target in targets:
        if target not in PENDING:
            assert set(_constraints(target)) == set(_parameters(target)), target


@pytest.mark.parametrize(("target", "name"), PARAMETERS, ids=[f"{t}-{n}" for t, n in PARAMETERS])
def test_each_bad_value_is_refused_before_any_work(target, name, monkeypatch):
    case = BY_TARGET[target]
    constraints = _constraints(target)[name]
    bad_values = _bad_values(constraints, case.valid()[name])
    assert len(bad_values) >= 3, (target, name, bad_values)

    def work_started(*args, **kwargs):
        raise WorkStarted

    for entry in case.work:
        module, _, attribute = entry.partition(":")
        monkeypatch.setattr(importlib.import_module(module), attribute, work_started)
    call = case.call or (lambda args: resolve(target)(**args))
    for bad in bad_values:
        args = case.valid()
        args[name] = bad
        before = {key: snapshot(value) for key, value in args.items()}
        with pytest.raises((TypeError, ValueError)) as raised:
            call(args)
        message = str(raised.value)
        assert re.search(rf"\b{re.escape(name)}\b", message), (name, shown(bad), message)
        if name not in case.arrays:
            assert shown(bad) in message, (name, shown(bad), message)
        for key, value in args.items():
            assert unchanged(value, before[key]), (name, shown(bad), key)
