"""What a fit reports: one summary dict, and the text, the CSV and the plots made from it.

:func:`summarize` gathers everything about a fit as JSON can hold it (the ``summary.json`` file, and
stdout under ``--json``): the data, the task, the alphas, the CV score, and the kept features with
their coefficients in the units of their column and per standard deviation, the levels of a text
column grouped under it, largest first. :func:`format_report` prints it as a table,
:func:`coefficients_csv` lists every model feature (kept or not), and :func:`render_plots` draws the
coefficient path and the CV curve of a search over alphas (none for a given alpha).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from l1reg.cli.columns import report_lines
from l1reg.cli.design import Design
from l1reg.cli.files import CV_PNG, PATH_PNG, STABILITY_PNG
from l1reg.cli.fitting import FitOptions, FitResult
from l1reg.cli.wording import number, plural

__all__ = [
    "coefficients_csv",
    "format_report",
    "render_plots",
    "stability_csv",
    "summarize",
    "to_json",
]


def to_json(value: Any) -> str:
    """The summary as JSON text: indented, non-ASCII names kept, and never a NaN (not JSON)."""
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def _stderr_of_mean(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarize(design: Design, result: FitResult, options: FitOptions) -> dict[str, Any]:
    """The JSON summary of a fit; the printed table and the CSV are made from it."""
    from l1reg.cli.model import original_units

    coef_std = result.coef  # (n_outputs, n_features)
    coef_orig, intercept_orig = original_units(design, result)
    if design.task == "regression":
        outputs: list[Any] = [None]
    elif coef_std.shape[0] == 1:
        outputs = [design.classes[1]]  # binary: the log-odds of the second class
    else:
        outputs = list(design.classes)
    single = len(outputs) == 1

    kept_feature = np.any(coef_std != 0, axis=0)
    order_key = np.max(np.abs(coef_std), axis=0)
    groups: dict[str, list[int]] = {}
    for j in np.flatnonzero(kept_feature):
        groups.setdefault(design.columns[j], []).append(int(j))
    ordered = sorted(groups.items(), key=lambda item: -max(order_key[j] for j in item[1]))
    selected = []
    for column, members in ordered:
        for j in sorted(members, key=lambda j: -order_key[j]):
            row: dict[str, Any] = {
                "feature": design.feature_names[j],
                "column": column,
                "level": design.levels[j],
                "fold_frequency": float(result.selection_frequency[j]),
            }
            if result.stability is not None:
                row["stability"] = float(result.stability.stability_scores_[j])
            if single:
                row["coefficient"] = float(coef_orig[0, j])
                row["per_sd"] = float(coef_std[0, j])
            else:
                row["coefficient"] = {str(c): float(coef_orig[k, j]) for k, c in enumerate(outputs)}
                row["per_sd"] = {str(c): float(coef_std[k, j]) for k, c in enumerate(outputs)}
            selected.append(row)

    fold = result.fold_errors
    if design.task == "regression":
        mse = float(np.mean(fold))
        variance = float(np.var(design.y))
        score = {
            "metric": "mean squared error",
            "mean": mse,
            "std_error": _stderr_of_mean(fold),
            "r2": _finite(1.0 - mse / variance) if variance > 0 else None,
        }
    else:
        # The CV error is the log-loss of each binary problem fitted (one; or one per class,
        # one-vs-rest), summed: so is the baseline, each problem's loss when it predicts its
        # class frequency p everywhere, -(p log p + q log q) with q = 1 - p.
        counts = np.bincount(design.y)
        counts = counts[1:] if single else counts
        p, q = counts / len(design.y), (len(design.y) - counts) / len(design.y)
        baseline = float(-np.sum(p * np.log(p) + q * np.log(q)))
        score = {
            "metric": "log-loss",
            "mean": float(np.mean(fold)),
            "std_error": _stderr_of_mean(fold),
            "baseline": baseline,
        }

    kept_at = {"alpha_min": None, "alpha_1se": None}
    if result.coef_path is not None:
        counts = columns_kept(design, result.coef_path)
        for name in kept_at:
            kept_at[name] = counts[int(np.flatnonzero(result.alphas == getattr(result, name))[0])]

    return {
        "data": design.source,
        "target": design.target,
        "task": design.task,
        "task_reason": design.task_reason,
        "classes": design.classes,
        "multiclass": "one-vs-rest" if design.classes and len(design.classes) > 2 else None,
        "estimator": result.estimator,
        "rows": int(design.X.shape[0]),
        "columns": design.n_columns,
        "model_features": int(design.X.shape[1]),
        "left_out": design.left_out,
        "cv_folds": options.cv,
        "seed": options.seed,
        "folds": "stratified, shuffled" if design.task == "classification" else "shuffled",
        "select": options.select,
        "tol": options.tol,
        "max_iter": options.max_iter,
        "alpha": result.alpha,
        "alpha_source": result.alpha_source,
        "alpha_min": result.alpha_min,
        "alpha_1se": result.alpha_1se,
        "score": score,
        "kept": len(groups),
        "kept_model_features": int(kept_feature.sum()),
        "kept_at_alpha_min": kept_at["alpha_min"],
        "kept_at_alpha_1se": kept_at["alpha_1se"],
        "coefficient_of": None if design.task == "regression" else [str(c) for c in outputs],
        "intercept": float(intercept_orig[0])
        if single
        else {str(c): float(intercept_orig[k]) for k, c in enumerate(outputs)},
        "selected": selected,
        "text_levels": {
            column: design.columns.count(column)
            for column, level in zip(design.columns, design.levels)
            if level is not None
        },
        "imputed": design.imputed,
        "stability": _stability_summary(design, result, kept_feature, options),
        "notes": design.notes + _grid_notes(result),
        "warnings": result.warnings,
    }


def _stability_summary(
    design: Design, result: FitResult, kept: np.ndarray, options: FitOptions
) -> dict[str, Any] | None:
    """What stability selection found: the stable features, most stable first, and the bound."""
    selector = result.stability
    if selector is None:
        return None
    scores = selector.stability_scores_
    order = sorted(np.flatnonzero(selector.support_), key=lambda j: (-scores[j], j))
    return {
        "pairs": selector.n_resamples,
        "half_samples": 2 * selector.n_resamples,
        "seed": options.seed,
        "threshold": selector.threshold,
        "region": [float(selector.alphas_[0]), float(selector.alphas_[-1])],
        "average_selected": selector.average_selected_,
        "expected_false_selections": selector.expected_false_selections_,
        "selected": [
            {
                "feature": design.feature_names[j],
                "column": design.columns[j],
                "level": design.levels[j],
                "probability": float(scores[j]),
                "in_model": bool(kept[j]),
            }
            for j in order
        ],
    }


def columns_kept(design: Design, coef_path: np.ndarray) -> list[int]:
    """How many table columns have a nonzero coefficient, at each alpha of the path."""
    owner = np.unique(design.columns, return_inverse=True)[1]
    in_use = np.any(coef_path != 0, axis=0)  # (n_features, n_alphas)
    return [len(np.unique(owner[in_use[:, i]])) for i in range(in_use.shape[1])]


def _grid_notes(result: FitResult) -> list[str]:
    """Warnings about a CV minimum at an end of the alpha grid, where the search was cut short."""
    if result.alphas is None or result.alpha_min is None:
        return []
    if result.alpha_min <= result.alphas.min():
        return [
            "alpha_min is the smallest alpha of the grid; the CV error may fall further below it"
        ]
    if result.alpha_min >= result.alphas.max():
        return ["alpha_min is alpha_max: no feature lowers the CV error below the intercept alone"]
    return []


def format_report(summary: dict[str, Any], files: list[str] | None, out_dir: str | None) -> str:
    """The human-readable report: a header, the selected features table, where the files went."""
    regression = summary["task"] == "regression"
    model = "Lasso" if regression else "L1 logistic regression"
    lines = [
        f"{summary['data']}: predict {summary['target']!r}, {summary['task']} "
        f"({summary['task_reason']})",
        f"{summary['rows']} rows, {plural(summary['columns'], 'feature column')}"
        + (
            f" ({summary['model_features']} model features after one-hot encoding)"
            if summary["model_features"] != summary["columns"]
            else ""
        )
        + f"; {model} on standardized features",
        "",
    ]
    score = summary["score"]
    score_text = f"{score['metric']} {number(score['mean'])} ± {number(score['std_error'], 2)}"
    if regression and score.get("r2") is not None:
        score_text += f" (R² {score['r2']:.3f})"
    if not regression:
        score_text += f" ({number(score['baseline'], 3)} from class frequencies alone)"
    folds = f"{summary['cv_folds']}-fold ({summary['folds']}, seed {summary['seed']})"
    kept = f"{summary['kept']} of {summary['columns']} features"
    if summary["model_features"] != summary["columns"]:
        kept += f" ({summary['kept_model_features']} of {summary['model_features']} model features)"
    source = summary["alpha_source"]
    if source != "given":
        facts = [
            (
                "alpha_min",
                number(summary["alpha_min"]),
                f"lowest mean CV error{': the model below' if source == 'alpha_min' else ''}, "
                f"{summary['kept_at_alpha_min']} of {summary['columns']} features",
            ),
            (
                "alpha_1se",
                number(summary["alpha_1se"]),
                f"largest alpha within one standard error of it"
                f"{': the model below' if source == 'alpha_1se' else ''}, "
                f"{summary['kept_at_alpha_1se']} of {summary['columns']} features",
            ),
            ("CV score", f"{score_text}, {folds}, at {source}", ""),
        ]
    else:
        facts = [
            ("alpha", number(summary["alpha"]), "given with --alpha (no search over alphas)"),
            ("CV score", f"{score_text}, {folds}, at this alpha", ""),
        ]
    facts.append(("kept", kept, ""))
    width = max(len(value) for label, value, note in facts if label.startswith("alpha"))
    for label, value, note in facts:
        if label.startswith("alpha"):
            value = value.ljust(width)
        lines.append(f"{label:<11}{value}   {note}".rstrip() if note else f"{label:<11}{value}")
    lines.append("")
    lines += _coefficient_table(summary)
    for item in summary["imputed"]:
        value = number(item["value"]) if isinstance(item["value"], float) else repr(item["value"])
        lines.append(
            f"imputed: {plural(item['missing'], 'missing value')} of {item['column']!r} "
            f"set to {value} ({item['by']})"
        )
    lines += _stability_lines(summary["stability"])
    lines += report_lines(summary["left_out"])
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    if files and out_dir is not None:
        lines.append(f"wrote {out_dir}{os.sep}: {', '.join(files)}")
    return "\n".join(lines)


def _stability_lines(stability: dict[str, Any] | None) -> list[str]:
    if stability is None:
        return []
    selected = stability["selected"]
    names = ", ".join(f"{row['feature']} {row['probability']:.2f}" for row in selected[:12])
    more = f" and {len(selected) - 12} more" if len(selected) > 12 else ""
    lines = [
        f"stability selection ({stability['pairs']} pairs of half-samples, seed "
        f"{stability['seed']}): {plural(len(selected), 'feature')} selected with probability >= "
        f"{stability['threshold']:g}" + (f": {names}{more}" if selected else ""),
        f"  expected false selections <= {stability['expected_false_selections']:.2g} "
        f"(Meinshausen-Bühlmann bound; {stability['average_selected']:.3g} features selected "
        f"per half-sample over alpha {number(stability['region'][0], 3)} to "
        f"{number(stability['region'][1], 3)})",
    ]
    outside = [row["feature"] for row in selected if not row["in_model"]]
    if outside:
        lines.append(f"  stable but not in the model at this alpha: {', '.join(outside)}")
    return lines


def _coefficient_table(summary: dict[str, Any]) -> list[str]:
    outputs = summary["coefficient_of"]
    single = outputs is None or len(outputs) == 1
    stable = summary["stability"] is not None
    trust = ["in folds", *(["stability"] if stable else [])]
    if single:
        unit = "coefficient" if outputs is None else f"log-odds of {outputs[0]}"
        header = ["feature", unit, "per SD", *trust]
    else:
        header = ["feature", *(f"log-odds of {c}" for c in outputs), *trust]
    folds = summary["cv_folds"]
    rows: list[list[str]] = []
    previous_column = None
    for row in summary["selected"]:
        name = row["feature"]
        # The levels of a text column of more than two levels are grouped under it; a column
        # of two levels is one 0/1 feature, named with its level.
        if row["level"] is not None and summary["text_levels"][row["column"]] > 1:
            if row["column"] != previous_column:
                kept = sum(r["column"] == row["column"] for r in summary["selected"])
                total = summary["text_levels"][row["column"]]
                label = f"{row['column']} (text: {kept} of {total} levels kept)"
                rows.append([label, *([""] * (len(header) - 1))])
            name = f"  ={row['level']}"
        previous_column = row["column"]
        trusted = [f"{round(row['fold_frequency'] * folds)}/{folds}"]
        if stable:
            trusted.append(f"{row['stability']:.2f}")
        if single:
            rows.append([name, number(row["coefficient"]), number(row["per_sd"]), *trusted])
        else:
            rows.append([name, *(number(row["coefficient"][str(c)]) for c in outputs), *trusted])
    intercept = summary["intercept"]
    if single:
        footer = ["(intercept)", number(intercept), "", *([""] * len(trust))]
    else:
        footer = [
            "(intercept)",
            *(number(intercept[str(c)]) for c in outputs),
            *([""] * len(trust)),
        ]
    table = [header, *rows, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(header))
    out = [line(header), rule, *(line(r) for r in rows), rule, line(footer)]
    note = "coefficients are per unit of each column"
    if single:
        note += "; per SD: per standard deviation, comparable across features"
    note += f";\nin folds: how many of the {folds} CV folds' fits keep the feature at this alpha"
    if stable:
        note += "; stability: its highest selection probability over half-samples (below)"
    if not rows:
        out.insert(2, "(no feature kept: every coefficient is zero at this alpha)")
    return [*out, note]


def coefficients_csv(design: Design, result: FitResult, summary: dict[str, Any]) -> str:
    """Every model feature (kept or not) with its coefficients, one row each, as CSV text."""
    import pandas as pd

    from l1reg.cli.model import original_units

    outputs = summary["coefficient_of"]
    table = pd.DataFrame(
        {"feature": design.feature_names, "column": design.columns, "level": design.levels}
    )
    coef_orig, _ = original_units(design, result)
    if outputs is None or len(outputs) == 1:
        table["coefficient"] = coef_orig[0]
        table["per_sd"] = result.coef[0]
    else:
        for k, c in enumerate(outputs):
            table[f"coefficient[{c}]"] = coef_orig[k]
        for k, c in enumerate(outputs):
            table[f"per_sd[{c}]"] = result.coef[k]
    table["kept"] = np.any(result.coef != 0, axis=0)
    table["fold_frequency"] = result.selection_frequency
    table["mean"] = design.mean
    table["sd"] = design.scale
    return table.to_csv(index=False, float_format="%.10g")


def stability_csv(design: Design, result: FitResult) -> str:
    """Every model feature's stability score (highest selection probability) and selection."""
    import pandas as pd

    selector = result.stability
    table = pd.DataFrame(
        {
            "feature": design.feature_names,
            "column": design.columns,
            "level": design.levels,
            "stability": selector.stability_scores_,
            "selected": selector.support_,
        }
    )
    return table.to_csv(index=False, float_format="%.10g")


def render_plots(
    design: Design, result: FitResult, summary: dict[str, Any], *, run: str
) -> dict[str, bytes]:
    """The two PNGs of a search over alphas (none for a fit at a given alpha), tagged with
    the ``run`` id of their set."""
    if result.coef_path is None:
        return {}
    from l1reg.plotting import (
        plot_coefficient_path,
        plot_cv_error,
        plot_stability_path,
        png_bytes,
    )

    name = f"{Path(design.source).name}, target {design.target!r}"
    outputs = summary["coefficient_of"]
    regression = design.task == "regression"
    path_figure = plot_coefficient_path(
        result.alphas,
        result.coef_path,
        feature_names=design.feature_names,
        alpha_min=result.alpha_min,
        alpha_1se=result.alpha_1se,
        output_names=None if outputs is None or len(outputs) == 1 else outputs,
        title=f"{name}: coefficient path",
        ylabel="coefficient per SD"
        if outputs is None
        else f"log-odds{' of ' + str(outputs[0]) if len(outputs) == 1 else ''} per SD",
    )
    n_selected = columns_kept(design, result.coef_path)
    cv_figure = plot_cv_error(
        result.alphas,
        result.cv_errors,
        alpha_min=result.alpha_min,
        alpha_1se=result.alpha_1se,
        n_selected=n_selected,
        title=f"{name}: {summary['cv_folds']}-fold cross-validation",
        ylabel="held-out mean squared error" if regression else "held-out log-loss",
    )
    comment = f"l1reg run {run}"
    plots = {
        PATH_PNG: png_bytes(path_figure, comment=comment),
        CV_PNG: png_bytes(cv_figure, comment=comment),
    }
    if result.stability is not None:
        figure = plot_stability_path(
            result.stability.alphas_,
            result.stability.selection_probabilities_,
            feature_names=design.feature_names,
            threshold=result.stability.threshold,
            title=f"{name}: stability selection, {result.stability.n_resamples} pairs of "
            "half-samples",
        )
        plots[STABILITY_PNG] = png_bytes(figure, comment=comment)
    return plots
