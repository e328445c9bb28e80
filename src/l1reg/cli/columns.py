"""Which columns of the table can be features: the ones left out, and why.

A real file carries columns that are no features: a row index written by R or pandas
(``rownames``, ``Unnamed: 0``), an identifier, a column with one value, copies of another column.
Kept, an index leaks the row order (and so the label, in a file sorted by it), and a copy splits
its coefficient arbitrarily between the copies. :func:`screen_columns` finds them before the design
is built; each kind is reported on one line and left out of the model:

- **dropped**: named with ``--drop``;
- **empty**: no value at all;
- **index**: every value distinct, and the values are the row numbers (a permutation of 0..n-1 or
  1..n) or text (an identifier: a text column of n distinct values cannot be one-hot encoded into
  anything that generalizes);
- **constant**: one distinct value (missing cells aside);
- **duplicate**: the same values (and missing cells) as an earlier column; the first is kept and
  its copies are reported with it, as one group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from l1reg.cli.errors import CommandError
from l1reg.cli.table import is_numeric, mostly_numbers
from l1reg.cli.wording import name_list, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Screening", "screen_columns"]


@dataclass
class Screening:
    """The feature columns kept, and those left out by kind (in the order of the table)."""

    features: list[str]
    dropped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    index: list[str] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # kept column -> its copies

    def to_dict(self) -> dict[str, Any]:
        return {
            "dropped": self.dropped,
            "empty": self.empty,
            "index": self.index,
            "constant": self.constant,
            "duplicates": [{"kept": k, "copies": v} for k, v in self.duplicates.items()],
        }


# What each kind says in the report, one line each.
_WHY = {
    "dropped": "left out with --drop",
    "empty": "left out, no values",
    "index": "left out, an index or identifier (every value distinct: row numbers or text)",
    "constant": "left out, constant (one value)",
}


def report_lines(left_out: dict[str, Any]) -> list[str]:
    """The report's lines for the ``to_dict()`` of a :class:`Screening`, one per kind."""
    lines = [f"{_WHY[kind]}: {name_list(left_out[kind])}" for kind in _WHY if left_out[kind]]
    groups = left_out["duplicates"]
    if groups:
        shown = "; ".join(
            f"{name_list(group['copies'], 4)} = {group['kept']!r}" for group in groups[:6]
        )
        more = f"; and {len(groups) - 6} more groups" if len(groups) > 6 else ""
        copies = sum(len(group["copies"]) for group in groups)
        lines.append(
            f"left out, {plural(copies, 'duplicated column')} (copies of a kept one): {shown}{more}"
        )
    return lines


def screen_columns(frame: pd.DataFrame, *, target: str, drop: list[str], source: str) -> Screening:
    """The columns of ``frame`` besides ``target`` that can be features, and the others."""
    columns = [c for c in frame.columns if c != target]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise CommandError(
            f"--drop names {name_list(unknown)}, not a column of {source}; its columns are "
            f"{name_list(list(frame.columns))}"
        )
    if target in drop:
        raise CommandError(f"--drop names the target column {target!r}")
    screening = Screening(features=[], dropped=[c for c in columns if c in drop])
    n_rows = len(frame)
    first_of: dict[tuple, str] = {}  # a column's fingerprint -> the first column with it
    for column in columns:
        if column in drop:
            continue
        series = frame[column]
        present = series.dropna()
        if present.empty:
            screening.empty.append(column)
            continue
        n_distinct = int(present.nunique())
        if n_distinct == 1:
            screening.constant.append(column)
            continue
        if len(present) == n_rows and n_distinct == n_rows and _is_index(series):
            screening.index.append(column)
            continue
        kept = _earlier_copy(frame, series, first_of)
        if kept is not None:
            screening.duplicates.setdefault(kept, []).append(column)
            continue
        screening.features.append(column)
    if not screening.features:
        raise CommandError(
            f"{source} has no feature column besides the target {target!r}"
            + ("; " + "; ".join(report_lines(screening.to_dict())) if columns else "")
        )
    return screening


def _is_index(series: pd.Series) -> bool:
    """Whether a column of distinct values is the row numbers (0..n-1 or 1..n) or text."""
    if not is_numeric(series):
        return not mostly_numbers(series)  # numbers with a typo are reported as such later
    values = series.to_numpy(dtype=np.float64)
    low = values.min()
    return bool(low in (0.0, 1.0) and values.max() == low + len(values) - 1)


def _earlier_copy(frame: pd.DataFrame, series: pd.Series, first_of: dict[tuple, str]) -> str | None:
    """The earlier column with exactly the values of ``series``, or None (then it is recorded)."""
    values = _comparable(series)
    # A digest of the values (numbers compared as float64, so 1 and 1.0 are one value) and of
    # where the missing cells are; equal digests are compared in full, so that a collision
    # never merges two different columns.
    key = (values.dtype.kind, hashlib.blake2b(_bytes(values), digest_size=16).digest())
    earlier = first_of.get(key)
    if earlier is not None and _same(values, _comparable(frame[earlier])):
        return earlier
    first_of.setdefault(key, str(series.name))
    return None


def _comparable(series: pd.Series) -> np.ndarray:
    if is_numeric(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0  # -0.0 is 0.0
    missing = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    return np.array([None if m else str(v) for v, m in zip(values, missing)], dtype=object)


def _bytes(values: np.ndarray) -> bytes:
    if values.dtype.kind == "f":
        return np.where(np.isnan(values), np.nan, values).tobytes()
    return "\x00".join("\x01" if v is None else v for v in values).encode("utf-8", "replace")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.all(a == b))
