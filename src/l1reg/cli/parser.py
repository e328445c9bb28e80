"""The command line's grammar: the commands, their options, and the checks of option values.

:func:`build_parser` declares ``l1reg fit``, ``l1reg demo`` and ``l1reg inspect`` with argparse; it
knows nothing of what they do (:mod:`l1reg.cli.commands` runs the chosen one, by name). A bad option
or value is one line on stderr naming it, and exit status 2, as every error of the command.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from l1reg import __version__
from l1reg.cli.errors import PROG
from l1reg.cli.fitting import FitOptions

__all__ = ["DEFAULT_DEMO_OUT", "DEFAULT_FIT_OUT", "build_parser"]

DEFAULT_FIT_OUT = Path("l1reg-out")
DEFAULT_DEMO_OUT = Path("l1reg-demo")
_DEFAULTS = FitOptions()


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one --help away)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# Option values are checked as they are parsed, so a bad one is refused before any file is read.


def _cv_folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text!r}")
    return value


def _positive_alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _tolerance(text: str) -> float:
    value = _positive_alpha(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"must be names separated by commas, got {text!r}")
    return names


_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _separator(text: str) -> str:
    value = _SEPARATOR_NAMES.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"must be one character (or tab, comma, semicolon, pipe), got {text!r}"
        )
    return value


def _add_reading(command) -> None:
    """The options of reading a data file, shared by fit and predict."""
    command.add_argument(
        "--sep",
        type=_separator,
        metavar="SEP",
        help="the CSV separator: one character, or tab (default: sniffed among , ; tab |)",
    )
    command.add_argument(
        "--na-values",
        type=_names,
        default=[],
        metavar="A,B",
        help="more markers of a missing value, besides empty, NA, NaN, null and pandas' others",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``l1reg``; the chosen command's name is ``args.command`` (None if none)."""
    parser = _Parser(
        prog=PROG,
        description="L1-regularized (sparse) linear models from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_fit(subparsers)
    _add_predict(subparsers)
    _add_demo(subparsers)
    _add_inspect(subparsers)
    return parser


def _add_fit(subparsers) -> None:
    fit = subparsers.add_parser(
        "fit",
        help="fit a Lasso / L1 logistic regression to a CSV file, alpha chosen by cross-validation",
        description=(
            "Read a CSV (or .csv.gz, or Parquet) file, leave out index, constant and duplicated "
            "columns, one-hot encode its text columns, standardize, fit LassoCV (regression) or "
            "L1LogisticRegressionCV (classification) on shuffled folds, print the selected "
            "features and write coefficients.csv, summary.json, model.json, "
            "coefficient_path.png and cv_error.png to --out, replacing its earlier content as "
            "one set."
        ),
    )
    fit.add_argument(
        "data", metavar="DATA.csv", help="the data: a CSV file with a header row, or Parquet"
    )
    fit.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    fit.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        default="auto",
        help="auto (default): classification for a target of 2 distinct values (of any type), "
        "else regression",
    )
    fit.add_argument(
        "--cv", type=_cv_folds, default=5, metavar="K", help="cross-validation folds (default 5)"
    )
    fit.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="seed of the shuffled folds (and of --stability's subsamples); default 0",
    )
    fit.add_argument(
        "--select",
        choices=("min", "1se"),
        default="min",
        help="the model reported and saved: at alpha_min (default) or alpha_1se (sparser)",
    )
    fit.add_argument(
        "--drop", type=_names, default=[], metavar="COL,...", help="columns to leave out"
    )
    fit.add_argument(
        "--alpha",
        type=_positive_alpha,
        metavar="A",
        help="fit at this alpha instead of choosing it by cross-validation (no plots then)",
    )
    fit.add_argument(
        "--out",
        metavar="DIR",
        help=f"where to write the files (default {DEFAULT_FIT_OUT}{os.sep}<name of DATA>)",
    )
    fit.add_argument(
        "--stability",
        type=_positive_int,
        metavar="B",
        help="also run stability selection with B complementary pairs of half-samples",
    )
    fit.add_argument(
        "--tol",
        type=_tolerance,
        default=_DEFAULTS.tol,
        metavar="T",
        help="the solver stops at a duality gap of T times the objective at 0 "
        f"(default {_DEFAULTS.tol:g})",
    )
    fit.add_argument(
        "--max-iter",
        type=_positive_int,
        default=_DEFAULTS.max_iter,
        metavar="N",
        help=f"the solver's iteration limit per fit (default {_DEFAULTS.max_iter})",
    )
    fit.add_argument(
        "--jobs", type=_positive_int, default=1, metavar="N", help="threads (default 1)"
    )
    _add_reading(fit)
    fit.add_argument("--json", action="store_true", help="print the JSON summary, not the table")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument(
        "--impute",
        action="store_true",
        help="fill missing feature values (median of a numeric column, most frequent text value)",
    )


def _add_predict(subparsers) -> None:
    predict = subparsers.add_parser(
        "predict",
        help="apply a model.json written by l1reg fit to a new data file",
        description=(
            "Encode DATA as the fit encoded its training file (the same columns, text levels, "
            "imputation and standardization; other columns are ignored) and write one row per "
            "data row: the prediction, and each class's probability for a classification."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="model.json (or the folder holding it)")
    predict.add_argument("data", metavar="DATA.csv", help="the new rows: CSV or Parquet")
    predict.add_argument(
        "--out", metavar="FILE", help="write the predictions here (default: standard output)"
    )
    _add_reading(predict)


def _add_demo(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the fit job on two bundled data sets (diabetes, breast cancer)",
        description=(
            "Run l1reg fit on scikit-learn's diabetes data (regression) and breast cancer data "
            "(classification), print both reports and write the files and the data to --out."
        ),
    )
    demo.add_argument(
        "--out", default=str(DEFAULT_DEMO_OUT), metavar="DIR", help="default: %(default)s"
    )
    demo.add_argument("--cv", type=_cv_folds, default=5, metavar="K", help="folds (default 5)")
    demo.add_argument("--json", action="store_true", help="print the JSON summaries")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_inspect(subparsers) -> None:
    inspect = subparsers.add_parser(
        "inspect",
        help="exact zeros per tensor of a checkpoint (.npz, .safetensors, torch.save state_dict)",
        description="Print the sparsity of every tensor of a saved model: zeros, L1 norm, inputs "
        "and outputs still in use (weights read as PyTorch lays them out: outputs x inputs).",
    )
    inspect.add_argument("checkpoint", metavar="CHECKPOINT", help="the file to read")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
