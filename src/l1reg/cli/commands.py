"""The commands: ``fit``, ``demo`` and ``inspect``, and :func:`main`, which runs the one asked for.

``fit`` and ``demo`` share one job (:func:`run_job`): fit a design, make its report and write the
set of files. ``inspect`` reads a checkpoint and prints its sparsity report. :func:`main` maps a
:class:`CommandError` to one line on stderr and exit status 2, Ctrl-C to status 130, and a closed
stdout (``l1reg demo | head``) to a quiet status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from l1reg.cli.design import Design, build_design
from l1reg.cli.errors import PROG, CommandError
from l1reg.cli.files import (
    COEFFICIENTS_CSV,
    CV_PNG,
    PATH_PNG,
    SUMMARY_JSON,
    check_out_dir,
    write_files,
)
from l1reg.cli.fitting import Progress, fit_design
from l1reg.cli.parser import DEFAULT_FIT_OUT, build_parser
from l1reg.cli.report import coefficients_csv, format_report, render_plots, summarize, to_json
from l1reg.cli.table import read_csv
from l1reg.cli.wording import plural

__all__ = ["main", "run_demo", "run_fit", "run_inspect", "run_job"]


def run_job(
    design: Design,
    *,
    cv: int,
    alpha: float | None,
    out_dir: Path,
    progress: Progress,
) -> tuple[dict[str, Any], list[str]]:
    """Fit, report and write the files of one design; returns the summary and the file names."""
    try:
        result = fit_design(design, cv=cv, alpha=alpha, progress=progress)
    finally:
        progress.close()
    summary = summarize(design, result, cv=cv)
    plots = render_plots(design, result, summary)
    files = [COEFFICIENTS_CSV, SUMMARY_JSON, *plots]
    summary["out_dir"] = str(out_dir)
    summary["files"] = files
    contents = {
        COEFFICIENTS_CSV: coefficients_csv(design, result, summary).encode(),
        SUMMARY_JSON: (to_json(summary) + "\n").encode(),
        **plots,
    }
    # Plots of an earlier search in the same folder would not match a fit at a given alpha.
    write_files(out_dir, contents, stale=(PATH_PNG, CV_PNG))
    for line in result.warnings:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    return summary, files


def _progress_enabled(quiet: bool) -> bool:
    # A bar only for a person watching: not in a log file, a pipe or a test's captured stderr.
    return not quiet and sys.stderr is not None and sys.stderr.isatty()


def run_fit(args: argparse.Namespace) -> int:
    """``l1reg fit DATA.csv --target COLUMN``."""
    out_dir = Path(args.out) if args.out else DEFAULT_FIT_OUT / Path(args.data).stem
    check_out_dir(out_dir)
    frame = read_csv(args.data)
    design = build_design(
        frame, source=args.data, target=args.target, task=args.task, impute=args.impute, cv=args.cv
    )
    progress = Progress(_progress_enabled(args.quiet), "cross-validation")
    summary, files = run_job(
        design, cv=args.cv, alpha=args.alpha, out_dir=out_dir, progress=progress
    )
    if args.json:
        print(to_json(summary))
    else:
        print(format_report(summary, files, str(out_dir)))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``l1reg demo``: the fit job on each bundled data set, and the data set as a CSV file."""
    from l1reg.datasets import DATASETS

    out_dir = Path(args.out)
    check_out_dir(out_dir)
    summaries = {}
    reports = []
    for name, dataset in DATASETS.items():
        frame = dataset.load()
        design = build_design(
            frame,
            source=str(out_dir / f"{name}.csv"),
            target=dataset.target,
            task=dataset.task,
            cv=args.cv,
        )
        design.task_reason = "bundled demo data"
        progress = Progress(_progress_enabled(args.quiet), f"{name}: cross-validation")
        summary, files = run_job(
            design, cv=args.cv, alpha=None, out_dir=out_dir / name, progress=progress
        )
        # The data set itself, so the same job can be rerun with l1reg fit.
        write_files(out_dir, {f"{name}.csv": frame.to_csv(index=False).encode()})
        summaries[name] = summary
        reports.append(
            f"== {dataset.description}\n"
            + format_report(summary, files, str(out_dir / name))
            + f"\nrerun it: {PROG} fit {out_dir / (name + '.csv')} --target {dataset.target}"
            + ("" if dataset.task == "regression" else f" --task {dataset.task}")
        )
    if args.json:
        print(to_json(summaries))
    else:
        print("\n\n".join(reports))
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """``l1reg inspect CHECKPOINT``: exact zeros per tensor."""
    from l1reg.checkpoints import CheckpointError, load_checkpoint
    from l1reg.report import sparsity_report

    try:
        arrays = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    # Weights as PyTorch stores them: outputs x inputs (x kernel...).
    report = sparsity_report(arrays.items(), input_axis=1, output_axis=0)
    if args.json:
        print(to_json({"checkpoint": str(args.checkpoint), **report.to_dict()}))
    else:
        print(f"{args.checkpoint}: {plural(len(report.tensors), 'tensor')}")
        print(report)
    return 0


# Each command of the parser, by name, and the function that runs it.
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fit": run_fit,
    "demo": run_demo,
    "inspect": run_inspect,
}


def main(argv: list[str] | None = None) -> int:
    """Run ``l1reg`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        *others, last = _COMMANDS
        parser.error(f"choose a command: {', '.join(others)} or {last}")
    prog = f"{PROG} {args.command}"
    try:
        return _COMMANDS[args.command](args)
    except CommandError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`l1reg demo | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
