"""What the sparsity bought: ``sparsity``, ``selected_features`` and ``prune``."""

from __future__ import annotations

import copy
import itertools
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import invalid_parameter
from ..report import SparsityReport, sparsity_report
from ._fused import is_dtensor
from ._selection import select_parameters

__all__ = ["PruneResult", "prune", "selected_features", "sparsity"]


def _to_numpy(param: torch.Tensor) -> np.ndarray:
    full = param.full_tensor() if is_dtensor(param) else param
    values = full.detach()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()  # NumPy has no bfloat16; widening is exact
    return values.cpu().numpy()


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

    def __init__(self, indices: list[int], dim: int, device: torch.device | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.long, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(self.dim, self.indices)

    def extra_repr(self) -> str:
        return f"{len(self.indices)} features, dim={self.dim}"


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


@torch.no_grad()
def prune(module: nn.Module, example_input: torch.Tensor | None = None) -> PruneResult:
    """A smaller copy of ``module`` with its removed inputs and neurons physically dropped.

    ``module`` must be an ``nn.Sequential`` of Linear / Conv1d-3d layers (``groups=1``) separated
    by element-wise modules (activations, dropout). Removed are: input features whose weights in
    the first layer are all zero (a :class:`SelectInputs` in front keeps the input shape), hidden
    units whose outgoing weights are all zero, and hidden units whose incoming weights are all zero
    (their constant output is folded into the next layer's bias; for Conv layers only when that
    constant is 0, since padding makes a constant channel's effect position-dependent). The result
    gives the same outputs as ``module`` (in eval mode) to float rounding. With ``example_input``,
    the inference time of both is measured (median of 30 runs) and the speed-up reported.

    ``module`` is not modified.
    """
    if not isinstance(module, nn.Sequential):
        raise TypeError(
            invalid_parameter(
                "module",
                "prune",
                "a torch.nn.Sequential of Linear/Conv layers and element-wise modules",
                module,
            )
        )
    layers = list(copy.deepcopy(module))
    positions = [i for i, layer in enumerate(layers) if _weighted(layer)]
    if not positions:
        raise ValueError(
            invalid_parameter("module", "prune", "a Sequential with a Linear or Conv layer", module)
        )
    prefix: list[nn.Module] = []
    # Inputs of the first layer: drop the all-zero input columns.
    first = positions[0]
    if all(isinstance(layer, _ELEMENTWISE) for layer in layers[:first]):
        weight = layers[first].weight
        other = tuple(a for a in range(weight.dim()) if a != 1)
        kept = torch.nonzero((weight != 0).any(dim=other)).flatten()
        if 0 < kept.numel() < weight.shape[1]:
            layers[first] = _slice_layer(layers[first], None, kept)
            dim = -1 if isinstance(layers[first], nn.Linear) else 1
            prefix.append(SelectInputs(kept.tolist(), dim, device=weight.device))
    # Hidden units between two consecutive weighted layers.
    for a, b in itertools.pairwise(positions):
        between = layers[a + 1 : b]
        if not all(isinstance(layer, _ELEMENTWISE) for layer in between):
            continue
        if isinstance(layers[a], nn.Linear) != isinstance(layers[b], nn.Linear):
            continue  # a Flatten or reshape lies between; unit indices do not line up
        first_layer, second_layer = layers[a], layers[b]
        w_in, w_out = first_layer.weight, second_layer.weight
        in_other = tuple(range(1, w_in.dim()))
        out_other = tuple(i for i in range(w_out.dim()) if i != 1)
        dead_in = ~(w_in != 0).any(dim=in_other)
        dead_out = ~(w_out != 0).any(dim=out_other)
        bias = first_layer.bias
        constant = torch.zeros(w_in.shape[0], dtype=w_in.dtype, device=w_in.device)
        if bias is not None:
            constant = bias.detach().clone()
        chain = nn.Sequential(*between).eval()
        shape = (1, -1) + (1,) * (w_in.dim() - 2)
        after = chain(constant.reshape(shape)).reshape(-1)
        if isinstance(second_layer, nn.Linear):
            foldable = dead_in & ~dead_out
        else:
            foldable = dead_in & (after == 0)
        removable = dead_out | foldable
        if not bool(removable.any()) or bool(removable.all()):
            continue
        if isinstance(second_layer, nn.Linear) and bool((foldable & (after != 0)).any()):
            shift = w_out[:, foldable] @ after[foldable]
            if second_layer.bias is None:
                second_layer.bias = nn.Parameter(torch.zeros_like(shift))
            second_layer.bias.add_(shift)
        kept = torch.nonzero(~removable).flatten()
        layers[a] = _slice_layer(first_layer, kept, None)
        layers[b] = _slice_layer(layers[b], None, kept)
    pruned = nn.Sequential(*prefix, *layers)
    pruned.train(module.training)
    result = PruneResult(pruned, _count(module), _count(pruned))
    if example_input is not None:
        was_training = module.training
        module.eval()
        pruned.eval()
        result.seconds_before = _time_forward(module, example_input)
        result.seconds_after = _time_forward(pruned, example_input)
        module.train(was_training)
        pruned.train(was_training)
    return result
