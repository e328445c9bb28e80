"""The sparsity report: per tensor, how many values are exactly zero, which inputs/neurons survive.

The framework adapters (``l1reg.torch.sparsity``, ``l1reg.keras.sparsity``) and ``l1reg inspect``
all build it from named NumPy arrays, so the table reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["SparsityReport", "TensorSparsity", "sparsity_report"]


@dataclass(frozen=True)
class TensorSparsity:
    """Sparsity of one tensor. ``inputs``/``outputs`` are None for tensors of fewer than 2 axes."""

    name: str
    shape: tuple[int, ...]
    size: int
    zeros: int
    l1_norm: float
    inputs_kept: int | None = None
    inputs: int | None = None
    outputs_kept: int | None = None
    outputs: int | None = None

    @property
    def fraction(self) -> float:
        """The fraction of values that are exactly zero."""
        return self.zeros / self.size if self.size else 0.0


@dataclass(frozen=True)
class SparsityReport:
    """A table of :class:`TensorSparsity` rows with totals; ``str(report)`` prints it."""

    tensors: tuple[TensorSparsity, ...]

    @property
    def size(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def zeros(self) -> int:
        return sum(t.zeros for t in self.tensors)

    @property
    def fraction(self) -> float:
        return self.zeros / self.size if self.size else 0.0

    @property
    def l1_norm(self) -> float:
        return float(sum(t.l1_norm for t in self.tensors))

    def to_dict(self) -> dict[str, Any]:
        rows = [{**asdict(t), "shape": list(t.shape), "fraction": t.fraction} for t in self.tensors]
        total = {
            "size": self.size,
            "zeros": self.zeros,
            "fraction": self.fraction,
            "l1_norm": self.l1_norm,
        }
        return {"tensors": rows, "total": total}

    def __str__(self) -> str:
        header = ("tensor", "shape", "zeros", "zero %", "L1 norm", "inputs kept", "outputs kept")
        rows = [
            (
                t.name,
                "x".join(map(str, t.shape)) or "scalar",
                f"{t.zeros:,} / {t.size:,}",
                f"{100 * t.fraction:.1f}",
                f"{t.l1_norm:.6g}",
                "" if t.inputs is None else f"{t.inputs_kept} / {t.inputs}",
                "" if t.outputs is None else f"{t.outputs_kept} / {t.outputs}",
            )
            for t in self.tensors
        ]
        total = (
            "total",
            "",
            f"{self.zeros:,} / {self.size:,}",
            f"{100 * self.fraction:.1f}",
            f"{self.l1_norm:.6g}",
            "",
            "",
        )
        table = [header, *rows, total]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(width) if i in (0, 1) else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths))
            ).rstrip()
            for row in table
        ]
        rule = "-" * len(lines[0])
        return "\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1]])


def _kept(nonzero: np.ndarray, axis: int) -> int:
    """How many indices along ``axis`` have a nonzero value somewhere in their slice."""
    other = tuple(a for a in range(nonzero.ndim) if a != axis)
    return int(np.count_nonzero(nonzero.any(axis=other)))


def sparsity_report(
    named_arrays: Iterable[tuple[str, Any]], *, input_axis: int = 1, output_axis: int = 0
) -> SparsityReport:
    """Build the report from ``(name, array)`` pairs (arrays that ``np.asarray`` takes).

    For arrays of 2 or more axes, ``input_axis`` and ``output_axis`` say where the input features
    and the output neurons/channels are: (1, 0) for PyTorch's Linear/Conv weights (outputs x
    inputs x ...), (-2, -1) for Keras kernels (... x inputs x units). An input or output counts as
    kept while any of its weights is nonzero.
    """
    rows = []
    for name, array in named_arrays:
        values = np.asarray(array)
        nonzero = values != 0
        row: dict[str, Any] = {
            "name": str(name),
            "shape": tuple(int(n) for n in values.shape),
            "size": int(values.size),
            "zeros": int(values.size - np.count_nonzero(nonzero)),
            "l1_norm": float(np.abs(values).sum(dtype=np.float64)),
        }
        if values.ndim >= 2:
            in_axis, out_axis = input_axis % values.ndim, output_axis % values.ndim
            row.update(
                inputs_kept=_kept(nonzero, in_axis),
                inputs=values.shape[in_axis],
                outputs_kept=_kept(nonzero, out_axis),
                outputs=values.shape[out_axis],
            )
        rows.append(TensorSparsity(**row))
    return SparsityReport(tuple(rows))
