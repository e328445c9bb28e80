"""The plots: colours that tell kept from not kept, names where the model was chosen, any text."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from l1reg.plotting import (
    _palette,
    plot_coefficient_path,
    plot_cv_error,
    plot_stability_path,
    png_bytes,
)


def _path(n_features: int = 14, n_alphas: int = 30):
    """A path on which feature j enters at alpha index 2j (the first ones largest)."""
    alphas = np.geomspace(1.0, 1e-3, n_alphas)
    path = np.zeros((n_features, n_alphas))
    for j in range(n_features):
        path[j, 2 * j :] = (n_features - j) * np.linspace(0.1, 1.0, n_alphas - 2 * j)
    return alphas, path


def test_the_palette_has_no_grey():
    from matplotlib.colors import to_rgb

    colours = [to_rgb(c) for c in _palette()]
    assert len(colours) == 10 and len(set(colours)) == 10
    for rgb in colours:
        assert max(rgb) - min(rgb) > 0.15  # grey has r = g = b


def test_kept_features_are_named_in_colour_beside_alpha_min():
    alphas, path = _path()
    chosen = 9  # features 0..4 are kept there
    names = [f"f{j}" for j in range(path.shape[0])]
    figure = plot_coefficient_path(
        alphas, path, feature_names=names, alpha_min=alphas[chosen], alpha_1se=alphas[5]
    )
    axes = figure.axes[0]
    labels = {t.get_text(): t for t in axes.texts}
    assert set(labels) == {"f0", "f1", "f2", "f3", "f4"}
    for name, text in labels.items():
        j = int(name[1:])
        assert text.xy == pytest.approx((alphas[chosen], path[j, chosen]))
        assert text.get_color() != "0.75"
    grey = [line for line in axes.lines if line.get_color() == "0.75"]
    assert len(grey) == path.shape[0] - 5  # the features not kept at alpha_min


def test_stability_paths_colour_the_selected_features():
    alphas = np.geomspace(1.0, 1e-2, 20)
    probabilities = np.zeros((20, 6))
    probabilities[:, 0] = np.linspace(0.2, 1.0, 20)
    probabilities[:, 1] = np.linspace(0.0, 0.7, 20)
    probabilities[:, 2:] = np.linspace(0.0, 0.3, 20)[:, None]
    figure = plot_stability_path(alphas, probabilities, feature_names=list("abcdef"), threshold=0.6)
    assert {t.get_text() for t in figure.axes[0].texts} == {"a", "b"}
    with pytest.raises(ValueError, match="do not match"):
        plot_stability_path(alphas, probabilities[:, :3], feature_names=list("ab"), threshold=0.6)


def test_names_without_a_glyph_in_the_font_are_drawn_without_warnings(capfd):
    alphas, path = _path(3)
    figure = plot_coefficient_path(
        alphas, path, feature_names=["年齢", "収入", "x"], alpha_min=alphas[-1]
    )
    cv = plot_cv_error(alphas, np.ones((alphas.size, 3)) + alphas[:, None], alpha_min=alphas[3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for f in (figure, cv):
            data = png_bytes(f, comment="l1reg run 1")
            assert data[:4] == b"\x89PNG" and b"l1reg run 1" in data
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""
