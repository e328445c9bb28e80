"""What the sparsity bought: ``sparsity``, ``selected_features`` and ``prune``."""

from __future__ import annotations

import copy
import numbers
import statistics
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .._validation import (
    Checked,
    Interval,
    NoneValue,
    check_params,
    declare_params,
    invalid_parameter,
)
from ..report import SparsityReport, sparsity_report
from ._distributed import is_dtensor
from ._selection import EXCLUDE, INCLUDE, MODULE, select_parameters

__all__ = ["PruneResult", "prune", "selected_features", "sparsity"]


def _to_numpy(param: torch.Tensor) -> np.ndarray:
    full = param.full_tensor() if is_dtensor(param) else param
    values = full.detach()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()  # NumPy has no bfloat16; widening is exact
    return values.cpu().numpy()


@declare_params("sparsity", module=MODULE, include=INCLUDE, exclude=EXCLUDE)
def sparsity(
    module: nn.Module, *, include: object = None, exclude: object = None
) -> SparsityReport:
    """Per-parameter sparsity of ``module``'s weights: shape, zeros, fraction, L1 norm, and the
    input features and output neurons that survive (an input or neuron survives while any of its
    weights is nonzero).

    The parameters are those an :class:`L1Regularizer` with the same ``include``/``exclude`` would
    penalize (by default the weights of Linear, Conv, Embedding, ... layers). ``print(report)``
    shows a table; ``report.to_dict()`` gives plain data. DTensor parameters are gathered, so under
    FSDP2 every rank must call it.

    >>> import torch
    >>> from l1reg.torch import sparsity
    >>> model = torch.nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.zero_()
    >>> sparsity(model).zeros
    6
    """
    chosen = select_parameters(module, include, exclude, "sparsity")
    rows = []
    for name, param, input_axis, output_axis in chosen:
        report = sparsity_report(
            [(name, _to_numpy(param))], input_axis=input_axis, output_axis=output_axis
        )
        rows.extend(report.tensors)
    return SparsityReport(tuple(rows))


@declare_params("selected_features", module=MODULE)
def selected_features(module: nn.Module) -> list[int]:
    """Indices of the input features that the model still uses.

    They are the inputs of its first penalizable layer (in module order) whose weights are not all
    zero, e.g. the nonzero columns of the first Linear layer after training with
    ``L1Regularizer(model, groups="input")``.
    """
    name, param, input_axis, _ = select_parameters(module, None, None, "selected_features")[0]
    del name
    nonzero = _to_numpy(param) != 0
    other = tuple(a for a in range(nonzero.ndim) if a != input_axis % nonzero.ndim)
    return [int(i) for i in np.flatnonzero(nonzero.any(axis=other))]


# Modules that act on each value alone: a unit removed before them is removed after them.
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Tanhshrink,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SelectInputs(nn.Module):
    """Keep the input features ``indices`` along ``dim`` (put in front of a pruned first layer)."""

    _parameter_constraints: ClassVar[dict] = {
        "indices": [
            Checked(
                "a sequence of integers >= 0 (the positions of the features kept)",
                ["abc", 1, None, [1.5], [-1], [[0, 1]], [True]],
            )
        ],
        "dim": [Interval(numbers.Integral, None, None)],
        "device": [
            NoneValue(),
            Checked("a torch.device or the name of one", [1.5, "no_such_device", ["cpu"]]),
        ],
    }

    def __init__(self, indices: list[int], dim: int, device: torch.device | None = None) -> None:
        check_params("SelectInputs", self._parameter_constraints, {"dim": dim})
        positions = _indices(indices)
        if device is not None:
            device = _device(device)
        super().__init__()
        self.dim = dim
        self.register_buffer("indices", torch.tensor(positions, dtype=torch.long, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(self.dim, self.indices)

    def extra_repr(self) -> str:
        return f"{len(self.indices)} features, dim={self.dim}"


def _indices(indices: object) -> list[int]:
    expected = SelectInputs._parameter_constraints["indices"][0].text
    try:
        values = list(indices)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(invalid_parameter("indices", "SelectInputs", expected, indices)) from None
    if isinstance(indices, (str, bytes)) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in values
    ):
        raise ValueError(invalid_parameter("indices", "SelectInputs", expected, indices))
    return [int(v) for v in values]


def _device(device: object) -> torch.device:
    expected = SelectInputs._parameter_constraints["device"][1].text
    try:
        return torch.device(device)  # type: ignore[arg-type]
    except (TypeError, RuntimeError):
        raise ValueError(
            invalid_parameter("device", "SelectInputs", "None or " + expected, device)
        ) from None


@dataclass
class PruneResult:
    """The pruned module, its parameter counts, and its measured inference speed-up."""

    module: nn.Module
    parameters_before: int
    parameters_after: int
    seconds_before: float | None = None
    seconds_after: float | None = None

    @property
    def speedup(self) -> float | None:
        if self.seconds_before is None or not self.seconds_after:
            return None
        return self.seconds_before / self.seconds_after

    def __str__(self) -> str:
        text = (
            f"parameters: {self.parameters_before:,} -> {self.parameters_after:,} "
            f"({100 * (1 - self.parameters_after / max(self.parameters_before, 1)):.1f}% fewer)"
        )
        if self.speedup is not None:
            text += (
                f"; inference {1e6 * self.seconds_before:.1f} us -> "
                f"{1e6 * self.seconds_after:.1f} us ({self.speedup:.2f}x)"
            )
        return text


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _weighted(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Linear):
        return True
    return isinstance(layer, _CONVS) and layer.groups == 1


def _slice_layer(
    layer: nn.Module, rows: torch.Tensor | None, cols: torch.Tensor | None
) -> nn.Module:
    """A copy of Linear/Conv ``layer`` keeping output units ``rows`` and input units ``cols``."""
    weight = layer.weight.detach()
    bias = None if layer.bias is None else layer.bias.detach()
    if rows is not None:
        weight = weight.index_select(0, rows)
        bias = None if bias is None else bias.index_select(0, rows)
    if cols is not None:
        weight = weight.index_select(1, cols)
    new = copy.deepcopy(layer)
    new.weight = nn.Parameter(weight.clone(), requires_grad=layer.weight.requires_grad)
    if bias is not None:
        new.bias = nn.Parameter(bias.clone(), requires_grad=layer.bias.requires_grad)
    if isinstance(new, nn.Linear):
        new.out_features, new.in_features = weight.shape[0], weight.shape[1]
    else:
        new.out_channels, new.in_channels = weight.shape[0], weight.shape[1]
    return new


def _time_forward(module: nn.Module, example: torch.Tensor, repeats: int = 30) -> float:
    def synchronize() -> None:
        if example.device.type == "cuda":
            torch.cuda.synchronize(example.device)

    with torch.no_grad():
        for _ in range(3):
            module(example)
        times = []
        for _ in range(repeats):
            synchronize()
            start = time.perf_counter()
            module(example)
            synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# Functions and tensor methods that act on each value alone (extra arguments must not be tensors).
_ELEMENTWISE_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.leaky_relu,
    nn.functional.elu,
    nn.functional.selu,
    nn.functional.celu,
    nn.functional.gelu,
    nn.functional.silu,
    nn.functional.mish,
    nn.functional.softplus,
    nn.functional.softsign,
    nn.functional.hardtanh,
    nn.functional.hardswish,
    nn.functional.hardsigmoid,
    nn.functional.tanh,
    nn.functional.sigmoid,
    nn.functional.dropout,
}
_ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid"}


def _module_at(root: nn.Module, path: str) -> nn.Module:
    return root.get_submodule(path)


def _set_module(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, new)


def _has_tensor(values: object, excluded: object) -> bool:
    flat = values if isinstance(values, (tuple, list)) else (values,)
    return any(isinstance(v, torch.fx.Node) and v is not excluded for v in flat)


def _elementwise_node(node: torch.fx.Node, root: nn.Module) -> bool:
    """True for a graph node that maps its single tensor argument value by value."""
    if not node.args or not isinstance(node.args[0], torch.fx.Node):
        return False
    source = node.args[0]
    if _has_tensor(node.args[1:], source) or _has_tensor(tuple(node.kwargs.values()), source):
        return False
    if node.op == "call_module":
        return len(node.args) == 1 and isinstance(_module_at(root, node.target), _ELEMENTWISE)
    if node.op == "call_function":
        return node.target in _ELEMENTWISE_FUNCTIONS
    return node.op == "call_method" and node.target in _ELEMENTWISE_METHODS


def _apply_chain(chain: list[torch.fx.Node], root: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the element-wise nodes ``chain`` on ``x`` as in eval mode (``root`` in eval mode)."""
    for node in chain:
        if node.op == "call_module":
            x = _module_at(root, node.target)(x)
        elif node.target is nn.functional.dropout:
            continue  # its training flag was frozen at trace time; in inference it is the identity
        elif node.op == "call_function":
            x = node.target(x, *node.args[1:], **node.kwargs)
        else:
            x = getattr(x, node.target)(*node.args[1:], **node.kwargs)
    return x


class _Tracer(torch.fx.Tracer):
    # Linear/Conv and the element-wise modules stay single nodes; everything else is traced through
    # (torch's own modules are leaves already, containers and user modules are not).
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _weighted(m) or isinstance(m, _ELEMENTWISE) or super().is_leaf_module(m, qualname)


def _trace(module: nn.Module) -> torch.fx.Graph:
    try:
        return _Tracer().trace(module)
    except Exception as error:  # torch.fx raises many types on untraceable code
        raise TypeError(
            invalid_parameter(
                "module",
                "prune",
                f"a module that torch.fx can trace ({type(error).__name__}: {error})",
                module,
            )
        ) from None


def _walk_back(node: torch.fx.Node, root: nn.Module) -> tuple[list[torch.fx.Node], torch.fx.Node]:
    """The element-wise chain in front of ``node``'s input, and the node that feeds that chain.

    Each node of the chain has ``node``'s chain as its only user, so units dropped at the start
    of the chain are dropped for everyone who reads it.
    """
    chain: list[torch.fx.Node] = []
    current = node.args[0]
    while (
        isinstance(current, torch.fx.Node)
        and len(current.users) == 1
        and _elementwise_node(current, root)
    ):
        chain.append(current)
        current = current.args[0]
    chain.reverse()
    return chain, current


_EXAMPLE = "None or a tensor that the module accepts as its input"


@declare_params(
    "prune",
    module=MODULE,
    example_input=[
        NoneValue(),
        Checked(_EXAMPLE, lambda valid: ["abc", 1.5, [1.0], valid.new_zeros(2, 999)]),
    ],
)
@torch.no_grad()
def prune(module: nn.Module, example_input: torch.Tensor | None = None) -> PruneResult:
    """A smaller copy of ``module`` with its removed inputs and neurons physically dropped.

    The data flow is read with ``torch.fx``, so ``module`` may be any traceable module: an
    ``nn.Sequential`` or a module of your own. Pruned are Linear / Conv1d-3d layers (``groups=1``,
    each called once):

    - inputs of a layer fed by the model's input (through element-wise operations only) whose
      weights are all zero: the layer becomes ``Sequential(SelectInputs(kept), smaller layer)``;
    - hidden units between two such layers of the same kind, joined by element-wise operations
      (activations, dropout) that nothing else reads: units whose outgoing weights are all zero,
      and units whose incoming weights are all zero (their constant output is folded into the
      next layer's bias; for Conv layers only when that constant is 0, since padding makes a
      constant channel's effect position-dependent).

    The result is a copy of ``module`` (same class, the pruned layers swapped in) that gives the
    same outputs (in eval mode) to float rounding. With ``example_input``, the inference time of
    both is measured (median of 30 runs) and the speed-up reported. ``module`` is not modified.
    """
    if example_input is not None:
        _check_example(module, example_input)
    graph = _trace(module)
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    layers = [
        node
        for node in graph.nodes
        if node.op == "call_module"
        and _weighted(_module_at(module, node.target))
        and calls[node.target] == 1
        and len(node.args) == 1
        and not node.kwargs
    ]
    if not layers:
        raise ValueError(
            invalid_parameter(
                "module", "prune", "a module with a Linear or Conv layer called once", module
            )
        )
    pruned = copy.deepcopy(module).eval()
    inputs: list[tuple[str, SelectInputs]] = []
    by_node = {node: node.target for node in layers}
    for node in layers:  # in execution order: a layer's inputs are settled before its outputs
        chain, source = _walk_back(node, module)
        if source.op == "placeholder":
            selected = _prune_inputs(_module_at(pruned, node.target))
            if selected is not None:
                _set_module(pruned, node.target, selected[0])
                inputs.append((node.target, selected[1]))
        elif source in by_node and len(source.users) == 1:
            _prune_units(pruned, by_node[source], node.target, chain)
    # Input selection last: a layer may also have lost hidden units on its output side.
    for path, select in inputs:
        _set_module(pruned, path, nn.Sequential(select, _module_at(pruned, path)))
    pruned.train(module.training)
    result = PruneResult(pruned, _count(module), _count(pruned))
    if example_input is not None:
        was_training = module.training
        module.eval()
        pruned.eval()
        try:
            result.seconds_before = _time_forward(module, example_input)
            result.seconds_after = _time_forward(pruned, example_input)
        finally:  # whatever happens, the user's model keeps its mode
            module.train(was_training)
            pruned.train(was_training)
    return result


def _check_example(module: nn.Module, example_input: object) -> None:
    """Refuse an ``example_input`` that is no tensor or that ``module`` cannot take (one forward
    pass in eval mode, before any pruning); the module keeps its training mode."""
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(invalid_parameter("example_input", "prune", _EXAMPLE, example_input))
    was_training = module.training
    module.eval()
    try:
        module(example_input)
    except Exception as error:
        message = invalid_parameter("example_input", "prune", _EXAMPLE, example_input)
        raise ValueError(f"{message} The forward pass failed: {error}") from error
    finally:
        module.train(was_training)


def _prune_inputs(layer: nn.Module) -> tuple[nn.Module, SelectInputs] | None:
    """``layer`` without its all-zero input columns, and the selection to put in front of it."""
    weight = layer.weight
    other = tuple(a for a in range(weight.dim()) if a != 1)
    kept = torch.nonzero((weight != 0).any(dim=other)).flatten()
    if not 0 < kept.numel() < weight.shape[1]:
        return None
    dim = -1 if isinstance(layer, nn.Linear) else 1
    return _slice_layer(layer, None, kept), SelectInputs(kept.tolist(), dim, device=weight.device)


def _prune_units(pruned: nn.Module, first: str, second: str, chain: list[torch.fx.Node]) -> None:
    """Drop the hidden units between layers ``first`` and ``second`` of ``pruned`` in place."""
    first_layer, second_layer = _module_at(pruned, first), _module_at(pruned, second)
    if isinstance(first_layer, nn.Linear) != isinstance(second_layer, nn.Linear):
        return  # a Flatten or reshape lies between; unit indices do not line up
    w_in, w_out = first_layer.weight, second_layer.weight
    if w_in.shape[0] != w_out.shape[1]:
        return
    in_other = tuple(range(1, w_in.dim()))
    out_other = tuple(i for i in range(w_out.dim()) if i != 1)
    dead_in = ~(w_in != 0).any(dim=in_other)
    dead_out = ~(w_out != 0).any(dim=out_other)
    constant = torch.zeros(w_in.shape[0], dtype=w_in.dtype, device=w_in.device)
    if first_layer.bias is not None:
        constant = first_layer.bias.detach().clone()
    shape = (1, -1) + (1,) * (w_in.dim() - 2)
    after = _apply_chain(chain, pruned, constant.reshape(shape)).reshape(-1)
    if isinstance(second_layer, nn.Linear):
        foldable = dead_in & ~dead_out
    else:
        foldable = dead_in & (after == 0)
    removable = dead_out | foldable
    if not bool(removable.any()) or bool(removable.all()):
        return
    if isinstance(second_layer, nn.Linear) and bool((foldable & (after != 0)).any()):
        shift = w_out[:, foldable] @ after[foldable]
        if second_layer.bias is None:
            second_layer.bias = nn.Parameter(torch.zeros_like(shift))
        second_layer.bias.add_(shift)
    kept = torch.nonzero(~removable).flatten()
    _set_module(pruned, first, _slice_layer(first_layer, kept, None))
    _set_module(pruned, second, _slice_layer(_module_at(pruned, second), None, kept))
