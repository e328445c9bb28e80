"""Reading the user's table, and what its columns hold.

``read_csv`` turns a file into a pandas DataFrame or a :class:`CommandError` naming the file (pandas
is imported here, when a table is read, never by ``import l1reg.cli``). The helpers below answer the
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

__all__ = ["first_non_number", "first_row", "is_numeric", "read_csv"]


def read_csv(path: str) -> pd.DataFrame:
    """The CSV at ``path`` as a DataFrame, or a :class:`CommandError` naming the file."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"cannot read data file {path!r}: no such file")
    if not file.is_file():
        raise CommandError(f"cannot read data file {path!r}: not a file")
    import pandas as pd

    try:
        return pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise CommandError(f"cannot read data file {path!r}: it is empty") from None
    except pd.errors.ParserError as error:
        reason = str(error).strip().splitlines()[-1]
        raise CommandError(f"cannot parse data file {path!r} as CSV: {reason}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read data file {path!r}: it is not UTF-8 text") from None
    except OSError as error:
        raise CommandError(f"cannot read data file {path!r}: {error.strerror or error}") from None


def first_row(mask: np.ndarray) -> int:
    """The 1-based data row (header not counted) of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def is_numeric(series: pd.Series) -> bool:
    """Whether the column holds numbers (booleans count as 0/1)."""
    import pandas as pd

    return pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)


def first_non_number(series: pd.Series) -> tuple[int, str] | None:
    """(row, value) of the first present value of ``series`` that is not a number, else None."""
    import pandas as pd

    parsed = pd.to_numeric(series, errors="coerce")
    bad = (parsed.isna() & series.notna()).to_numpy()
    if not bad.any():
        return None
    row = first_row(bad)
    return row, str(series.iloc[row - 1])
