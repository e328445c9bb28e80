"""The plots of ``l1reg fit``: the coefficient path over alpha, the cross-validation curve, and
the stability paths of stability selection.

Each function returns a matplotlib ``Figure`` drawn on the Agg canvas, without pyplot and without
changing the user's backend; :func:`png_bytes` renders one to PNG, with a fallback for glyphs the
default font lacks (a CJK column name drawn in a CJK font where one is installed, as a box where
none is, without a warning either way). matplotlib is imported when a function is called, never by
``import l1reg``.

    >>> import numpy as np
    >>> from l1reg.plotting import plot_cv_error, png_bytes
    >>> alphas = np.geomspace(1, 1e-3, 20)
    >>> errors = np.random.default_rng(0).random((20, 5)) + (np.log(alphas)[:, None] + 3) ** 2
    >>> png_bytes(plot_cv_error(alphas, errors, alpha_min=alphas[13], alpha_1se=alphas[11]))[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_coefficient_path", "plot_cv_error", "plot_stability_path", "png_bytes"]

# How many paths get a name beside the chosen alpha; the others are drawn in grey, unnamed.
_MAX_LABELLED = 10
_MIN_COLOR = "black"
_1SE_COLOR = "0.35"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _mark_alphas(axes, alpha_min, alpha_1se, parameter: str = "alpha") -> None:
    """Vertical lines at the chosen alphas, named in the legend."""
    if alpha_min is not None:
        axes.axvline(
            alpha_min, color=_MIN_COLOR, ls="--", lw=1.2, label=f"{parameter}_min = {alpha_min:.3g}"
        )
    if alpha_1se is not None:
        axes.axvline(
            alpha_1se, color=_1SE_COLOR, ls=":", lw=1.5, label=f"{parameter}_1se = {alpha_1se:.3g}"
        )


def _alpha_axis(axes, alphas: np.ndarray, parameter: str = "alpha") -> None:
    # Strong penalty on the left, weak on the right: features enter as one reads left to right.
    axes.set_xscale("log")
    axes.set_xlim(alphas.max() * 1.15, alphas.min() / 1.15)
    axes.set_xlabel(f"{parameter} (log scale; penalty decreases to the right)")
    axes.grid(True, which="major", alpha=0.3)


def plot_coefficient_path(
    alphas: Sequence[float] | np.ndarray,
    coef_path: np.ndarray,
    *,
    feature_names: Sequence[str],
    alpha_min: float | None = None,
    alpha_1se: float | None = None,
    output_names: Sequence[str] | None = None,
    title: str = "Coefficient path",
    ylabel: str = "coefficient (standardized features)",
    parameter: str = "alpha",
) -> Figure:
    """The coefficients over ``alphas``, one line per feature, chosen alphas marked.

    ``coef_path`` is ``(n_features, n_alphas)``, or ``(n_outputs, n_features, n_alphas)`` for a
    multiclass model, drawn as one panel per output named by ``output_names``. The features kept at
    ``alpha_min`` (at the smallest alpha without it), the largest ten when there are more, are drawn
    in colour (never grey) and named beside their line at ``alpha_min``; the others are grey.
    ``parameter`` names the strength on the axis and in the legend (``"lambda"`` for a network).
    """
    alphas = np.asarray(alphas, dtype=float)
    paths = np.asarray(coef_path, dtype=float)
    if paths.ndim == 2:
        paths = paths[np.newaxis]
    n_outputs, n_features, n_alphas = paths.shape
    if n_alphas != alphas.shape[0] or n_features != len(feature_names):
        raise ValueError(
            f"coef_path of shape {np.shape(coef_path)} does not match {alphas.shape[0]} alphas "
            f"and {len(feature_names)} feature names"
        )
    names = list(output_names) if output_names is not None else [None] * n_outputs
    figure = _new_figure(8.0, 3.0 + 2.6 * n_outputs if n_outputs > 1 else 5.0)
    axes_list = figure.subplots(n_outputs, 1, sharex=True, squeeze=False)[:, 0]
    palette = _palette()
    chosen = n_alphas - 1 if alpha_min is None else int(np.argmin(np.abs(alphas - alpha_min)))
    # One colour per feature in every panel, the largest features first.
    ranking = np.argsort(-np.abs(paths[:, :, chosen]).max(axis=0), kind="stable")
    color = {int(j): palette[rank % len(palette)] for rank, j in enumerate(ranking)}
    for axes, path, name in zip(axes_list, paths, names):
        # Name the features of the chosen model, the largest first.
        at_chosen = np.abs(path[:, chosen])
        order = np.argsort(-at_chosen, kind="stable")
        labelled = [j for j in order[:_MAX_LABELLED] if at_chosen[j] > 0]
        for j in range(n_features):
            if j in labelled:
                continue
            axes.plot(alphas, path[j], color="0.75", lw=0.9)
        for j in labelled:
            axes.plot(alphas, path[j], color=color[j], lw=1.6)
        axes.axhline(0.0, color="black", lw=0.6)
        _mark_alphas(axes, alpha_min, alpha_1se, parameter)
        _alpha_axis(axes, alphas, parameter)
        _name_lines(axes, alphas[chosen], path[:, chosen], labelled, feature_names, color)
        axes.set_ylabel(ylabel if name is None else f"{ylabel}\nclass {name}")
        if axes is axes_list[0]:
            axes.legend(loc="upper left", fontsize=8, framealpha=0.9)
        if axes is not axes_list[-1]:
            axes.set_xlabel("")
    where = f"{parameter}_min" if alpha_min is not None else f"the smallest {parameter}"
    n_kept = int(np.count_nonzero(np.any(paths[:, :, chosen] != 0, axis=0)))
    which = f"the largest {_MAX_LABELLED} of the {n_kept}" if n_kept > _MAX_LABELLED else "the"
    figure.suptitle(
        f"{title}\nin colour: {which} features kept at {where}; others grey", fontsize=10
    )
    return figure


def plot_cv_error(
    alphas: Sequence[float] | np.ndarray,
    errors: np.ndarray,
    *,
    alpha_min: float | None = None,
    alpha_1se: float | None = None,
    n_selected: Sequence[int] | None = None,
    title: str = "Cross-validation error",
    ylabel: str = "mean squared error",
    parameter: str = "alpha",
    unit: str = "folds",
) -> Figure:
    """The mean held-out error over ``alphas`` with one-standard-error bars, chosen alphas marked.

    ``errors`` is ``(n_alphas, n_folds)``, one column per fold (``mse_path_`` or ``loss_path_``).
    The standard error is the standard deviation over folds divided by sqrt(n_folds); the dotted
    horizontal line is the minimum plus its standard error, the bound that defines alpha_1se.
    ``n_selected`` (features kept at each alpha) is written along the top axis. ``parameter``
    names the strength; ``unit`` what the columns of ``errors`` are (folds, validation chunks).
    """
    alphas = np.asarray(alphas, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if errors.ndim != 2 or errors.shape[0] != alphas.shape[0]:
        raise ValueError(f"errors of shape {errors.shape} does not match {alphas.shape[0]} alphas")
    mean = errors.mean(axis=1)
    n_folds = errors.shape[1]
    stderr = errors.std(axis=1, ddof=1) / np.sqrt(n_folds) if n_folds > 1 else np.zeros_like(mean)
    figure = _new_figure(8.0, 5.0)
    axes = figure.subplots()
    axes.errorbar(
        alphas,
        mean,
        yerr=stderr,
        fmt="o",
        ms=3,
        color="0.2",
        ecolor="0.6",
        elinewidth=1,
        capsize=2,
        label=f"mean over {n_folds} {unit} ± 1 s.e.",
    )
    best = int(np.argmin(mean))
    axes.axhline(mean[best] + stderr[best], color="0.5", ls=":", lw=1, label="minimum + 1 s.e.")
    _mark_alphas(axes, alpha_min, alpha_1se, parameter)
    _alpha_axis(axes, alphas, parameter)
    axes.set_ylabel(ylabel)
    axes.legend(loc="best", fontsize=8, framealpha=0.9)
    if n_selected is not None:
        top = axes.secondary_xaxis("top")
        picks = np.unique(np.linspace(0, len(alphas) - 1, 9).round().astype(int))
        top.set_xticks(alphas[picks], labels=[str(int(n_selected[i])) for i in picks])
        top.minorticks_off()
        top.set_xlabel("features kept", fontsize=9)
        top.tick_params(labelsize=8)
    figure.suptitle(title, fontsize=11)
    return figure


def plot_stability_path(
    alphas: Sequence[float] | np.ndarray,
    probabilities: np.ndarray,
    *,
    feature_names: Sequence[str],
    threshold: float,
    title: str = "Stability selection",
) -> Figure:
    """Each feature's selection probability over ``alphas``, the threshold marked.

    ``probabilities`` is ``(n_alphas, n_features)``, as ``selection_probabilities_`` of
    :class:`~l1reg.StabilitySelection`.
    The features whose probability reaches ``threshold`` somewhere on the grid (the selected ones),
    the ten most stable when there are more, are drawn in colour and named beside their line where
    it is highest; the others are grey.
    """
    alphas = np.asarray(alphas, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.shape != (alphas.shape[0], len(feature_names)):
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not match {alphas.shape[0]} alphas "
            f"and {len(feature_names)} feature names"
        )
    figure = _new_figure(8.0, 5.0)
    axes = figure.subplots()
    highest = probabilities.max(axis=0)
    order = np.argsort(-highest, kind="stable")
    labelled = [int(j) for j in order[:_MAX_LABELLED] if highest[j] >= threshold]
    palette = _palette()
    color = {j: palette[rank % len(palette)] for rank, j in enumerate(labelled)}
    for j in range(len(feature_names)):
        if j not in color:
            axes.plot(alphas, probabilities[:, j], color="0.75", lw=0.9)
    for j in labelled:
        axes.plot(alphas, probabilities[:, j], color=color[j], lw=1.6)
    axes.axhline(threshold, color="black", ls="--", lw=1.0, label=f"threshold {threshold:g}")
    _alpha_axis(axes, alphas)
    axes.set_ylim(-0.02, 1.05)
    axes.set_ylabel("selection probability (share of half-samples)")
    axes.legend(loc="lower right", fontsize=8, framealpha=0.9)
    # Each name where its line ends: every selected line reaches its highest value at the small
    # alphas, so the right end is beside it.
    _name_lines(axes, alphas[-1], probabilities[-1], labelled, feature_names, color)
    n_selected = int(np.count_nonzero(highest >= threshold))
    which = (
        f"the {_MAX_LABELLED} most stable of the {n_selected}"
        if n_selected > _MAX_LABELLED
        else "the"
    )
    figure.suptitle(f"{title}\nin colour: {which} features selected; others grey", fontsize=10)
    return figure


def png_bytes(figure: Figure, *, comment: str | None = None) -> bytes:
    """The figure rendered as PNG (``comment`` as its Comment text chunk).

    Glyphs the default font lacks are taken from any installed CJK font, and the warnings
    matplotlib prints for glyphs no font has are silenced: such a name is drawn with boxes.
    """
    import logging
    import warnings

    from matplotlib import rc_context

    buffer = io.BytesIO()
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    with rc_context({"font.sans-serif": _fallback_fonts()}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*Glyph .* missing from")
        warnings.filterwarnings("ignore", message=r"(?s).*findfont")
        logger.setLevel(logging.ERROR)
        try:
            figure.savefig(
                buffer, format="png", metadata=None if comment is None else {"Comment": comment}
            )
        finally:
            logger.setLevel(level)
    return buffer.getvalue()


def _fallback_fonts() -> list[str]:
    """matplotlib's sans-serif fonts, then any installed font for CJK text."""
    from matplotlib import font_manager, rcParams

    wide = sorted(
        {
            font.name
            for font in font_manager.fontManager.ttflist
            if any(key in font.name for key in ("CJK", "WenQuanYi", "Droid Sans Fallback", "AR PL"))
        }
    )
    return [*rcParams["font.sans-serif"], *wide]


def _name_lines(axes, x: float, ys: np.ndarray, labelled, names, color) -> None:
    """Each labelled line's name just right of ``x``, at its height there, pushed apart."""
    low, high = axes.get_ylim()
    placed = _spread([float(ys[j]) for j in labelled], gap=(high - low) * 0.045)
    left, right = axes.get_xlim()  # decreasing: alpha falls to the right
    step = (left / right) ** 0.015  # 1.5% of the axis width, on the log scale
    for j, y in zip(labelled, placed):
        axes.annotate(
            names[j],
            xy=(x, float(ys[j])),
            xytext=(x / step, y),
            va="center",
            fontsize=8,
            color=color[j],
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
            annotation_clip=False,
        )


def _spread(values: list[float], gap: float) -> list[float]:
    """``values`` moved apart to at least ``gap`` from each other, each as little as possible.

    Close values form a cluster spaced ``gap`` apart around the mean of its members; clusters that
    then overlap merge, until none do. The order of the values is kept.
    """
    order = np.argsort(values, kind="stable")
    ordered = np.asarray(values, dtype=float)[order]
    clusters = [[v] for v in ordered]  # members' original values, bottom to top

    def bounds(cluster: list[float]) -> tuple[float, float]:
        centre = float(np.mean(cluster))
        half = gap * (len(cluster) - 1) / 2
        return centre - half, centre + half

    merged = True
    while merged:
        merged = False
        for i in range(len(clusters) - 1):
            if bounds(clusters[i])[1] + gap > bounds(clusters[i + 1])[0]:
                clusters[i : i + 2] = [clusters[i] + clusters[i + 1]]
                merged = True
                break
    placed = []
    for cluster in clusters:
        bottom = bounds(cluster)[0]
        placed += [bottom + gap * k for k in range(len(cluster))]
    result = np.empty(len(placed))
    result[order] = placed
    return result.tolist()


def _palette() -> list:
    """tab10 without its grey (grey is for the features not kept), and navy for a tenth."""
    from matplotlib import colormaps

    return [colormaps["tab10"](i) for i in range(10) if i != 7] + ["navy"]
