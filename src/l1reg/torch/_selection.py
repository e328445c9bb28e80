"""Which parameters of a module are penalized, with which ``lambda_reg`` and which group axes.

The default selection is the weights of the layers whose weights multiply inputs: Linear, Bilinear,
Conv*/ConvTranspose*, Embedding/EmbeddingBag, the recurrent layers and the input projections of
MultiheadAttention. Biases and normalization parameters are left alone.

``input_axis``/``output_axis`` locate the input features and the output neurons/channels of a
weight: (1, 0) for Linear and Conv weights (outputs x inputs x ...), (0, 1) for ConvTranspose
weights (inputs x outputs x ...) and for Embedding tables (one row per token).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import Checked, Instance, NonNegativeFloat, Options, invalid_parameter

__all__ = [
    "EXCLUDE",
    "GROUPS",
    "INCLUDE",
    "LAMBDA_REG",
    "MODULE",
    "Selected",
    "default_axes",
    "resolve_lambdas",
    "select_parameters",
]

# The declared constraints of the parameters that select weights (``l1reg._validation``), shared
# by L1Regularizer, sparsity and selected_features. The Checked ones need the module to check.
MODULE = [Instance("torch.nn:Module", text="a torch.nn.Module")]
_PATTERNS = "None, or name patterns (str), modules or parameters of the module"
INCLUDE = [Checked(_PATTERNS, ["abc_no_such_parameter", 3.5, ["weight", 7], True])]
EXCLUDE = [Checked(_PATTERNS, [3.5, ["weight", 7], True, b"weight"])]
GROUPS = [Options(None, "input", "output")]
_LAMBDA = (
    "a finite number >= 0, or a mapping from name patterns, modules or parameters to such numbers"
)
LAMBDA_REG = [
    Checked(
        _LAMBDA,
        ["abc", None, -1.0, math.nan, math.inf, {"*": -1.0}, {"*": "abc"}, {3: 0.1}, {"x": 0.1}],
    )
]
_NUMBER = NonNegativeFloat()


@dataclass
class Selected:
    """One penalized parameter."""

    name: str
    param: torch.Tensor
    lambda_reg: float
    input_axis: int
    output_axis: int
    # Axes summed over inside one group (the L2 norm runs along them); None: the plain L1 norm.
    group_axes: tuple[int, ...] | None = None

    @property
    def group_size(self) -> int:
        assert self.group_axes is not None
        return math.prod([self.param.shape[a] for a in self.group_axes])


_LINEAR_LIKE = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
_ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


def _layer_weights(module: nn.Module) -> dict[str, tuple[int, int]]:
    """The default-penalized parameters of ``module`` itself: name -> (input axis, output axis)."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return {"weight": (0, 1)}
    if isinstance(module, _LINEAR_LIKE):
        return {"weight": (1, 0)}
    if isinstance(module, _EMBEDDINGS):
        return {"weight": (0, 1)}
    if isinstance(module, nn.RNNBase):
        return {
            name: (1, 0) for name, _ in module.named_parameters(recurse=False) if "weight" in name
        }
    if isinstance(module, nn.MultiheadAttention):
        return {
            name: (1, 0) for name in _ATTENTION_WEIGHTS if getattr(module, name, None) is not None
        }
    return {}


def default_axes(module: nn.Module) -> dict[str, tuple[int, int]]:
    """Qualified parameter name -> (input axis, output axis) for the default-penalized weights."""
    axes: dict[str, tuple[int, int]] = {}
    for prefix, sub in module.named_modules():
        for name, pair in _layer_weights(sub).items():
            axes[f"{prefix}.{name}" if prefix else name] = pair
    return axes


def _as_list(items: object) -> list[object]:
    if items is None:
        return []
    if isinstance(items, (str, nn.Module, torch.Tensor)):
        return [items]
    return list(items)  # type: ignore[call-overload]


class _Matcher:
    """Name patterns, modules and parameters, matched against (name, parameter) pairs."""

    def __init__(self, items: object, name: str, owner: str, module: nn.Module) -> None:
        expected = _PATTERNS
        try:
            listed = _as_list(items)
        except TypeError:
            raise TypeError(invalid_parameter(name, owner, expected, items)) from None
        self.patterns: list[str] = []
        self.param_ids: set[int] = set()
        for item in listed:
            if isinstance(item, str):
                self.patterns.append(item)
            elif isinstance(item, nn.Module):
                self.param_ids.update(id(p) for p in item.parameters())
            elif isinstance(item, torch.Tensor):
                self.param_ids.add(id(item))
            else:
                raise TypeError(invalid_parameter(name, owner, expected, items))

    def __call__(self, name: str, param: torch.Tensor) -> bool:
        return id(param) in self.param_ids or any(
            fnmatch.fnmatchcase(name, p) for p in self.patterns
        )


def select_parameters(
    module: nn.Module, include: object, exclude: object, owner: str
) -> list[tuple[str, torch.Tensor, int, int]]:
    """(name, parameter, input axis, output axis) of each selected parameter, in module order.

    ``module`` is a ``torch.nn.Module`` (its owner checked :data:`MODULE`); ``include`` and
    ``exclude`` are checked here.
    """
    axes = default_axes(module)
    included = _Matcher(include, "include", owner, module) if include is not None else None
    excluded = _Matcher(exclude, "exclude", owner, module)
    selected = []
    for name, param in module.named_parameters():
        chosen = included(name, param) if included is not None else name in axes
        if chosen and not excluded(name, param):
            input_axis, output_axis = axes.get(name, (1, 0))
            selected.append((name, param, input_axis, output_axis))
    if not selected:
        if include is not None:
            raise ValueError(
                invalid_parameter(
                    "include",
                    owner,
                    "patterns, modules or parameters that select at least "
                    "one parameter of the module (after 'exclude')",
                    include,
                )
            )
        raise ValueError(
            invalid_parameter(
                "module",
                owner,
                "a module with at least one weight to penalize (Linear, Conv, "
                "Embedding, ... not excluded), or use 'include'",
                module,
            )
        )
    return selected


def resolve_lambdas(
    lambda_reg: object, named: list[tuple[str, torch.Tensor]], module: nn.Module, owner: str
) -> list[float]:
    """One ``lambda_reg`` per selected parameter.

    ``lambda_reg`` is a number, or a mapping from name patterns, modules or parameters to numbers;
    each parameter takes the value of the last key that matches it (so put general keys first:
    ``{"*": 1e-4, "encoder.*": 1e-3}``).
    """
    if not isinstance(lambda_reg, Mapping):
        if not _NUMBER.accepts(lambda_reg):
            raise _lambda_error(lambda_reg, owner, "")
        return [float(lambda_reg)] * len(named)
    rules = []
    for key, value in lambda_reg.items():
        try:
            matcher = _Matcher([key], "lambda_reg", owner, module)
        except TypeError:
            raise _lambda_error(lambda_reg, owner, f"its key {key!r} is none of them") from None
        if not _NUMBER.accepts(value):
            raise _lambda_error(lambda_reg, owner, f"its value for {key!r} is not")
        rules.append((matcher, float(value)))
    lambdas = []
    for name, param in named:
        found = [value for matcher, value in rules if matcher(name, param)]
        if not found:
            raise ValueError(
                invalid_parameter(
                    "lambda_reg",
                    owner,
                    f"a number, or a mapping with a key for every selected "
                    f"parameter (add '*' for a default; {name!r} has none)",
                    dict(lambda_reg),
                )
            )
        lambdas.append(found[-1])
    return lambdas


def _lambda_error(lambda_reg: object, owner: str, why: str) -> Exception:
    expected = _LAMBDA + (f" ({why})" if why else "")
    kind = TypeError if isinstance(lambda_reg, (str, bytes)) or lambda_reg is None else ValueError
    return kind(invalid_parameter("lambda_reg", owner, expected, lambda_reg))


def group_axes(
    groups: str | None,
    name: str,
    param: torch.Tensor,
    input_axis: int,
    output_axis: int,
    owner: str,
) -> tuple[int, ...] | None:
    """The axes one group spans: every axis but the input (or output) axis."""
    if groups is None:
        return None
    if param.dim() < 2:
        raise ValueError(
            invalid_parameter(
                "groups",
                owner,
                f"None for the {param.dim()}-d parameter {name!r} of shape "
                f"{tuple(param.shape)} (a group penalty needs a weight of 2 or more axes; "
                f"exclude it)",
                groups,
            )
        )
    kept = input_axis if groups == "input" else output_axis
    return tuple(a for a in range(param.dim()) if a != kept % param.dim())
