"""Reading the user's table, and what its columns hold.

``read_table`` turns a file (CSV, compressed CSV or Parquet) into a pandas DataFrame or a
:class:`CommandError` naming the file (pandas is imported here, when a table is read, never by
``import l1reg.cli``). The helpers below answer the
questions that the target and the features both ask of a column: does it hold numbers, where is its
first value that is not one, which data row is that.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from l1reg.cli.errors import CommandError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "data_stem",
    "first_non_number",
    "first_row",
    "is_numeric",
    "mostly_numbers",
    "read_table",
]


# The compressions pandas reads by the file's suffix, and how to open each for a look at its start.
_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma", ".zst": None, ".zip": None}
PARQUET_SUFFIXES = (".parquet", ".pq")
# The separators the sniffer chooses among; a file with none of them is one column.
SEPARATORS = ",;\t|"


def data_stem(path: str) -> str:
    """The file's name without its suffixes: ``hitters`` for ``hitters.csv.gz`` or ``.parquet``."""
    name = Path(path).name
    for suffix in _COMPRESSED:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    stem = Path(name).stem
    return stem or name


def read_table(path: str, *, sep: str | None = None, na_values: list[str] = ()) -> pd.DataFrame:
    """The table at ``path`` (CSV, compressed CSV or Parquet) as a DataFrame, or a CommandError.

    A CSV file's separator is ``sep`` or, when None, sniffed from its first 64 KiB among
    ``, ; tab |``; ``na_values`` are markers of a missing value besides pandas' own ("", "NA",
    "NaN", "null", ...).
    """
    file = Path(path)
    if not file.exists():
        raise CommandError(f"cannot read data file {path!r}: no such file")
    if not file.is_file():
        raise CommandError(f"cannot read data file {path!r}: not a file")
    import pandas as pd

    try:
        if file.name.lower().endswith(PARQUET_SUFFIXES):
            return _read_parquet(file, path, na_values)
        if sep is None:
            sep = _sniffed_separator(file)
        return pd.read_csv(file, sep=sep, na_values=list(na_values) or None)
    except pd.errors.EmptyDataError:
        raise CommandError(f"cannot read data file {path!r}: it is empty") from None
    except pd.errors.ParserError as error:
        reason = str(error).strip().splitlines()[-1]
        raise CommandError(f"cannot parse data file {path!r} as CSV: {reason}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read data file {path!r}: it is not UTF-8 text") from None
    except (EOFError, ValueError) as error:  # a truncated archive, a bad Parquet footer
        raise CommandError(f"cannot read data file {path!r}: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot read data file {path!r}: {error.strerror or error}") from None


def _sniffed_separator(file: Path) -> str:
    """The separator of the CSV ``file`` by its first 64 KiB (a comma when nothing is clear)."""
    import csv

    module = _COMPRESSED.get(file.suffix.lower(), "")
    if module is None:  # zip and zstd: pandas reads them, the standard library may not
        return ","
    opener = open if module == "" else __import__(module).open
    with opener(file, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(65536)
    lines = sample.splitlines()
    if len(lines) > 1 and len(sample) == 65536:
        sample = "\n".join(lines[:-1])  # the last line may be cut short
    try:
        return csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def _read_parquet(file: Path, path: str, na_values: list[str]) -> pd.DataFrame:
    import importlib.util

    import pandas as pd

    if (
        importlib.util.find_spec("pyarrow") is None
        and importlib.util.find_spec("fastparquet") is None
    ):
        raise CommandError(
            f"cannot read data file {path!r}: reading Parquet needs pyarrow "
            "(pip install 'l1reg[parquet]')"
        )
    frame = pd.read_parquet(file)
    if na_values:  # the markers of a text column, as read_csv applies them
        text = frame.select_dtypes(include=["object", "string"]).columns
        frame[text] = frame[text].mask(frame[text].isin(list(na_values)))
    return frame


def first_row(mask: np.ndarray) -> int:
    """The 1-based data row (header not counted) of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def is_numeric(series: pd.Series) -> bool:
    """Whether the column holds numbers (booleans count as 0/1)."""
    import pandas as pd

    return pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)


def mostly_numbers(series: pd.Series) -> bool:
    """Whether a text column is numbers but for a few stray words ("n.a.", "?"): a typo to fix.

    At least 90% of its present values (and 10 of them) read as numbers.
    """
    import pandas as pd

    present = series.dropna()
    return len(present) >= 10 and pd.to_numeric(present, errors="coerce").notna().mean() >= 0.9


def first_non_number(series: pd.Series) -> tuple[int, str] | None:
    """(row, value) of the first present value of ``series`` that is not a number, else None."""
    import pandas as pd

    parsed = pd.to_numeric(series, errors="coerce")
    bad = (parsed.isna() & series.notna()).to_numpy()
    if not bad.any():
        return None
    row = first_row(bad)
    return row, str(series.iloc[row - 1])
