"""Parameter constraints as data, checked before any work, with one wording for every layer.

Each public function, method and class declares, for every parameter, a list of constraints; a
value passes when one of them accepts it. A failure raises :class:`InvalidParameterError` (a
``ValueError`` and a ``TypeError``, as scikit-learn's) naming the parameter, its owner and the
value received:

    The 'lambda_reg' parameter of l1_regularization must be a float in the range [0, inf).
    Got -1 instead.

Where the constraints live:

- functions and methods: :func:`declare_params` checks the arguments on each call and keeps the
  constraints on the function as ``__l1reg_constraints__``;
- classes: a class dict ``_parameter_constraints`` for the ``__init__`` parameters, checked by
  :func:`check_params` in ``__init__`` (scikit-learn estimators: at the start of ``fit``).

A constraint that depends on other arguments (an array whose shape must match ``X``, a key that
must name a parameter of the model) is declared as :class:`Checked`: its text and its bad
examples are data, the check itself stays in the code that has the context. Every constraint
lists bad examples of its own kind (:meth:`Constraint.invalid_examples`), from which the house
rules test (``tests/test_house_rules.py``) builds the bad inputs it tries for every parameter.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import _numerics

__all__ = [
    "Array",
    "ArrayLike",
    "Axes",
    "Boolean",
    "Callable",
    "Checked",
    "Constraint",
    "CrossValidator",
    "Instance",
    "Interval",
    "InvalidParameterError",
    "NoneValue",
    "Options",
    "VectorLike",
    "check_non_negative_number",
    "check_params",
    "check_positive_int",
    "declare_params",
    "invalid_parameter",
    "shown",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a value outside its declared constraints."""


def shown(value: object) -> str:
    """``repr(value)`` as an error message shows it: at most 80 characters."""
    try:
        received = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        received = f"<{type(value).__name__} object>"
    received = " ".join(received.split())
    return received if len(received) <= 80 else received[:77] + "..."


def invalid_parameter(name: str, owner: str, expected: str, value: object) -> str:
    """Return the error text for parameter ``name`` of ``owner`` that received ``value``."""
    return f"The {name!r} parameter of {owner} must be {expected}. Got {shown(value)} instead."


def keras_wording(name: str, owner: str, expected: str, value: object) -> str:
    """Keras's own wording of a bad argument (``l1reg.keras`` uses it, as Keras users expect)."""
    return (
        f"Invalid value for argument {name} of {owner}: expected {expected}. "
        f"Received: {name}={shown(value)}"
    )


class _Anything:
    """A value of no type a constraint accepts (the 'wrong type' example of every kind)."""

    def __repr__(self) -> str:
        return "<an object>"


class Constraint:
    """One kind of value a parameter may take."""

    text = ""
    #: Checked here (False: by the code that owns the parameter, see :class:`Checked`).
    checked_here = True

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def invalid_examples(self, valid: Any) -> list:
        """Values this kind refuses, ``valid`` being one it accepts (to build wrong shapes)."""
        return ["abc", _Anything()]


class Interval(Constraint):
    """A real (``kind=numbers.Real``) or integer number in a range; NaN and inf are refused
    unless ``inf`` is an end of the range and ``closed`` includes it."""

    def __init__(
        self, kind: type, low: float | None, high: float | None, closed: str = "left"
    ) -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        name = "an int" if kind is numbers.Integral else "a float"
        left = "[" if closed in ("left", "both") and low is not None else "("
        right = "]" if closed in ("right", "both") and high is not None else ")"
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        self.text = f"{name} in the range {left}{low_text}, {high_text}{right}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        as_float = float(value)
        if not math.isfinite(as_float):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def invalid_examples(self, valid: Any) -> list:
        examples = ["1", None, True, [1], math.nan, math.inf, -math.inf]
        if self.low is not None:
            examples.append(self.low - 1 if self.closed in ("left", "both") else self.low)
        if self.high is not None:
            examples.append(self.high + 1 if self.closed in ("right", "both") else self.high)
        if self.kind is numbers.Integral:
            examples.append(2.5)
        return examples


def NonNegativeFloat() -> Interval:
    return Interval(numbers.Real, 0, None, "left")


def PositiveFloat() -> Interval:
    return Interval(numbers.Real, 0, None, "neither")


def PositiveInt(low: int = 1) -> Interval:
    return Interval(numbers.Integral, low, None, "left")


class Boolean(Constraint):
    text = "an instance of 'bool'"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def invalid_examples(self, valid: Any) -> list:
        return ["no", 1, None, math.nan]


class Options(Constraint):
    """One of a few strings (or other hashable values)."""

    def __init__(self, *options: Any) -> None:
        self.options = options
        texts = [repr(option) for option in options]
        self.text = "one of " + ", ".join(texts) if len(texts) > 1 else texts[0]

    def accepts(self, value: Any) -> bool:
        try:
            return type(value) in {type(o) for o in self.options} and value in self.options
        except TypeError:  # unhashable or uncomparable
            return False

    def invalid_examples(self, valid: Any) -> list:
        return ["nope", 1, math.nan, _Anything()]


StrOption = Options


class NoneValue(Constraint):
    text = "None"

    def accepts(self, value: Any) -> bool:
        return value is None

    def invalid_examples(self, valid: Any) -> list:
        return []


class Callable(Constraint):
    text = "a callable"

    def accepts(self, value: Any) -> bool:
        return callable(value)

    def invalid_examples(self, valid: Any) -> list:
        return ["abc", 1, _Anything()]


class Instance(Constraint):
    """An instance of a class named ``"module:Class"`` (imported only when a value is checked,
    so that declaring a torch or Keras type does not import that library)."""

    def __init__(self, *names: str, text: str | None = None) -> None:
        self.names = names
        self.text = text or "an instance of " + " or ".join(n.split(":")[1] for n in names)

    def _classes(self) -> tuple[type, ...]:
        classes = []
        for name in self.names:
            module, _, attribute = name.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attribute.split("."):
                obj = getattr(obj, part)
            classes.append(obj)
        return tuple(classes)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self._classes())

    def invalid_examples(self, valid: Any) -> list:
        return ["abc", 1.5, None, _Anything()]


class Axes(Constraint):
    """A non-empty tuple (or list) of ints: the axes of a group."""

    text = "a non-empty tuple of ints"

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, (tuple, list))
            and bool(value)
            and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in value)
        )

    def invalid_examples(self, valid: Any) -> list:
        return ["rows", (), (0, "a"), [1.5], None]


class ArrayLike(Constraint):
    """An array-like of finite numbers (optionally ``>= 0``, of ``ndim`` dimensions, of at least
    ``min_length`` values), as :func:`numpy.asarray` reads it."""

    def __init__(self, *, non_negative: bool = False, ndim: int | None = None, min_length: int = 0):
        self.non_negative, self.ndim, self.min_length = non_negative, ndim, min_length
        # (a 1-d array-like is what a user calls an array-like; only other ranks are named)
        shape = "an array-like" if ndim in (None, 1) else f"a {ndim}-d array-like"
        if min_length == 1:
            shape = "a non-empty array-like" if ndim in (None, 1) else f"a non-empty {shape[2:]}"
        count = f" of at least {min_length}" if min_length > 1 else " of"
        self.text = f"{shape}{count} finite numbers" + (" >= 0" if non_negative else "")

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (str, bytes, dict)) or value is None:
            return False
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            return False
        if array.dtype.kind not in "iuf" or (self.ndim is not None and array.ndim != self.ndim):
            return False
        if array.size < self.min_length or not np.all(np.isfinite(array)):
            return False
        return not (self.non_negative and np.any(array < 0))

    def invalid_examples(self, valid: Any) -> list:
        examples = ["abc", ["a", "b"], [1.0, math.nan], [1.0, math.inf], None]
        if self.ndim == 1:
            examples.append([[1.0, 2.0]])
        if self.non_negative:
            examples.append([1.0, -1.0])
        if self.min_length:
            examples.append([])
        return examples


def VectorLike(*, non_negative: bool = False, min_length: int = 0) -> ArrayLike:
    return ArrayLike(non_negative=non_negative, ndim=1, min_length=min_length)


def _is_array(value: Any) -> bool:
    # _array_api imports this module: its is_array is looked up on first use.
    global _is_array
    from ._array_api import is_array

    _is_array = is_array
    return is_array(value)


class Array(Constraint):
    """An array of any array-API library (NumPy, PyTorch, JAX, CuPy, ...) holding numbers:
    booleans, integers, real or complex floats, or NumPy's low-precision extension floats
    (ml_dtypes' bfloat16). Lists and text arrays are refused."""

    text = "an array of numbers of an array-API library (NumPy, PyTorch, JAX, ...)"

    def accepts(self, value: Any) -> bool:
        return _is_array(value) and _numerics.is_numeric_dtype(getattr(value, "dtype", None))

    def invalid_examples(self, valid: Any) -> list:
        return ["abc", [1.0, 2.0], None, np.array(["a", "b"])]


class CrossValidator(Constraint):
    text = "an int in the range [2, inf), a cross-validation splitter or an iterable of splits"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            return value >= 2
        if hasattr(value, "split") and hasattr(value, "get_n_splits"):
            return True
        return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))

    def invalid_examples(self, valid: Any) -> list:
        return [1, 2.5, "abc", True, None]


class Checked(Constraint):
    """A constraint the owning code checks itself, with the context it needs (another argument,
    the model); ``examples`` builds values it refuses from a valid one."""

    checked_here = False

    def __init__(self, text: str, examples: Any) -> None:
        self.text, self._examples = text, examples

    def accepts(self, value: Any) -> bool:
        return True

    def invalid_examples(self, valid: Any) -> list:
        return list(self._examples(valid) if callable(self._examples) else self._examples)


def _join(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def check_params(owner: str, constraints: dict, values: dict, *, wording=invalid_parameter) -> None:
    """Raise :class:`InvalidParameterError` for the first of ``values`` no constraint accepts.

    Only the constraints checked here count (a parameter declared only as :class:`Checked` is
    left to its owner).
    """
    for name, options in constraints.items():
        here = [c for c in options if c.checked_here]
        if name not in values or not here or len(here) < len(options):
            continue
        value = values[name]
        if any(c.accepts(value) for c in here):
            continue
        expected = _join([c.text for c in options])
        raise InvalidParameterError(wording(name, owner, expected, value))


def declare_params(owner: str | None = None, /, *, wording=invalid_parameter, **constraints):
    """Declare the constraints of a function's parameters and check them on every call.

    ``owner`` names the function in errors (default: its ``__qualname__``). Every parameter of the
    function except ``self`` must be declared, so that a new parameter cannot be forgotten.
    """

    def decorate(function):
        signature = inspect.signature(function)
        names = [n for n in signature.parameters if n != "self"]
        missing = set(names) - set(constraints)
        extra = set(constraints) - set(names)
        if missing or extra:
            raise AssertionError(
                f"{function.__qualname__}: undeclared {sorted(missing)}, unknown {sorted(extra)}"
            )
        label = owner or function.__qualname__

        positional = list(signature.parameters)  # ``self`` included: args line up with it
        # (position, name, constraints) of the parameters checked here, found once: the check
        # runs on every call, and a prox inside a training loop is called thousands of times.
        checkable = [
            (positional.index(name), name, tuple(options))
            for name, options in constraints.items()
            if all(c.checked_here for c in options)
        ]

        @functools.wraps(function)
        def checked(*args, **kwargs):
            for position, name, options in checkable:
                if position < len(args):
                    value = args[position]
                elif name in kwargs:
                    value = kwargs[name]
                else:
                    continue  # the default, declared valid
                if not any(c.accepts(value) for c in options):
                    check_params(label, {name: options}, {name: value}, wording=wording)
            return function(*args, **kwargs)

        checked.__l1reg_constraints__ = constraints
        checked.__l1reg_owner__ = label
        return checked

    return decorate


_NON_NEGATIVE = [NonNegativeFloat()]
_POSITIVE_INT = [PositiveInt()]


def check_non_negative_number(value: object, name: str, owner: str) -> float:
    """Return ``value`` as a Python float, or raise if it is not a finite number >= 0."""
    if not _NON_NEGATIVE[0].accepts(value):
        check_params(owner, {name: _NON_NEGATIVE}, {name: value})
    return float(value)


def check_positive_int(value: object, name: str, owner: str) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    check_params(owner, {name: _POSITIVE_INT}, {name: value})
    return int(value)
