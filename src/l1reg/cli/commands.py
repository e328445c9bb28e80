"""The commands: ``fit``, ``predict``, ``demo`` and ``inspect``, and :func:`main`, which runs one.

``fit`` and ``demo`` share one job (:func:`run_job`): fit a design, make its report and write the
set of files. ``predict`` applies a saved ``model.json`` to a new table. ``inspect`` reads a
checkpoint and prints its sparsity report. :func:`main` maps a :class:`CommandError` to one line on
stderr and exit status 2, Ctrl-C to status 130, and a closed stdout (``l1reg demo | head``) to a
quiet status 1.
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
    MODEL_JSON,
    STABILITY_CSV,
    SUMMARY_JSON,
    check_out_dir,
    new_run_id,
    replaced_by_another_run,
    write_file,
    write_set,
)
from l1reg.cli.fitting import FitOptions, Progress, fit_design
from l1reg.cli.parser import DEFAULT_FIT_OUT, build_parser
from l1reg.cli.report import (
    coefficients_csv,
    format_report,
    render_plots,
    stability_csv,
    summarize,
    to_json,
)
from l1reg.cli.table import data_stem, read_table
from l1reg.cli.wording import plural

__all__ = ["main", "run_demo", "run_fit", "run_inspect", "run_job", "run_predict"]


def run_job(
    design: Design, options: FitOptions, *, out_dir: Path, progress: Progress
) -> dict[str, Any]:
    """Fit, report and write the set of files of one design; returns the summary."""
    from l1reg.cli.model import model_dict

    try:
        result = fit_design(design, options, progress)
    finally:
        progress.close()
    run = new_run_id()
    summary = summarize(design, result, options)
    plots = render_plots(design, result, summary, run=run)
    tables = {COEFFICIENTS_CSV: coefficients_csv(design, result, summary).encode()}
    if result.stability is not None:
        tables[STABILITY_CSV] = stability_csv(design, result).encode()
    files = [*tables, SUMMARY_JSON, MODEL_JSON, *plots]
    summary["out_dir"] = str(out_dir)
    summary["files"] = files
    summary["run"] = run
    contents = {
        **tables,
        MODEL_JSON: (to_json(model_dict(design, result, run=run)) + "\n").encode(),
        **plots,
        SUMMARY_JSON: (to_json(summary) + "\n").encode(),
    }
    write_set(out_dir, contents)
    for line in result.warnings:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    return summary


def _written(out_dir: Path, summary: dict[str, Any]) -> None:
    """Say so on stderr when a concurrent run has replaced the set this run wrote."""
    if replaced_by_another_run(out_dir, summary["run"]):
        print(
            f"{PROG}: warning: the files this run wrote to {out_dir} were replaced by another "
            "run writing to the same folder; rerun it or give each run its own --out",
            file=sys.stderr,
        )
        summary["files"] = []


def _progress_enabled(quiet: bool) -> bool:
    # A bar only for a person watching: not in a log file, a pipe or a test's captured stderr.
    return not quiet and sys.stderr is not None and sys.stderr.isatty()


def _options(args: argparse.Namespace) -> FitOptions:
    return FitOptions(
        cv=args.cv,
        seed=getattr(args, "seed", 0),
        alpha=getattr(args, "alpha", None),
        select=getattr(args, "select", "min"),
        tol=getattr(args, "tol", FitOptions.tol),
        max_iter=getattr(args, "max_iter", FitOptions.max_iter),
        n_jobs=getattr(args, "jobs", 1),
        stability=getattr(args, "stability", None),
    )


def run_fit(args: argparse.Namespace) -> int:
    """``l1reg fit DATA.csv --target COLUMN``."""
    out_dir = Path(args.out) if args.out else DEFAULT_FIT_OUT / data_stem(args.data)
    check_out_dir(out_dir)
    frame = read_table(args.data, sep=args.sep, na_values=args.na_values)
    design = build_design(
        frame,
        source=args.data,
        target=args.target,
        task=args.task,
        impute=args.impute,
        cv=args.cv,
        drop=args.drop,
    )
    progress = Progress(_progress_enabled(args.quiet), "cross-validation")
    summary = run_job(design, _options(args), out_dir=out_dir, progress=progress)
    _written(out_dir, summary)
    if args.json:
        print(to_json(summary))
    else:
        print(format_report(summary, summary["files"], str(out_dir)))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``l1reg predict MODEL DATA.csv [--out FILE]``: the saved model applied to new rows."""
    from l1reg.cli.model import predictions_frame, read_model

    model = read_model(args.model)
    if args.out is not None and Path(args.out).is_dir():
        raise CommandError(f"cannot write to --out {args.out!r}: it is a folder")
    frame = read_table(args.data, sep=args.sep, na_values=args.na_values)
    text = predictions_frame(model, frame, source=args.data).to_csv(
        index=False, float_format="%.17g"
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_file(Path(args.out), text.encode())
        print(f"wrote {args.out}: {plural(len(frame), 'prediction')}", file=sys.stderr)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``l1reg demo``: the fit job on each bundled data set, and the data set as a CSV file."""
    from l1reg.datasets import DATASETS

    out_dir = Path(args.out)
    for name in DATASETS:
        check_out_dir(out_dir / name)
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
        summary = run_job(design, _options(args), out_dir=out_dir / name, progress=progress)
        _written(out_dir / name, summary)
        # The data set itself, so the same job can be rerun with l1reg fit.
        write_file(out_dir / f"{name}.csv", frame.to_csv(index=False).encode())
        summaries[name] = summary
        reports.append(
            f"== {dataset.description}\n"
            + format_report(summary, summary["files"], str(out_dir / name))
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
    "predict": run_predict,
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
