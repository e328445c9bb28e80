"""The ``l1reg`` command, run as a user runs it, in a subprocess: its output, status and files."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

OUTPUT_FILES = {
    "coefficients.csv",
    "summary.json",
    "model.json",
    "coefficient_path.png",
    "cv_error.png",
}


def run_l1reg(*args: str, cwd: Path, stderr=subprocess.PIPE, timeout: float = 120):
    """``python -m l1reg.cli ARGS`` in ``cwd``; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "l1reg.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=timeout,
    )


def regression_frame(n: int = 150, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """y = 3 x0 - 2 x1 + 0.5 x2 + 4 [group = c] + noise: x0..x2 in different units, x3..x5 noise."""
    rng = np.random.default_rng(seed)
    scales = np.array([10.0, 0.1, 1000.0, 1.0, 5.0, 0.01])
    x = rng.standard_normal((n, 6)) * scales
    group = rng.choice(["a", "b", "c"], size=n)
    truth = {"x0": 3.0 / 10, "x1": -2.0 / 0.1, "x2": 0.5 / 1000}  # per unit of each column
    y = 3.0 * x[:, 0] / 10 - 2.0 * x[:, 1] / 0.1 + 0.5 * x[:, 2] / 1000 + 4.0 * (group == "c")
    y = y + 0.1 * rng.standard_normal(n) + 7.0
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(6)])
    frame.insert(3, "group", group)
    frame["y"] = y
    return frame, truth


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """One `l1reg fit` on the regression data, shared by the tests that read its output."""
    folder = tmp_path_factory.mktemp("fit")
    frame, truth = regression_frame()
    frame.loc[7, "x4"] = np.nan  # a noise column: filling it changes nothing the tests check
    frame.to_csv(folder / "data.csv", index=False)
    result = run_l1reg(
        "fit", "data.csv", "--target", "y", "--cv", "3", "--out", "out", "--impute", cwd=folder
    )
    assert result.returncode == 0, result.stderr
    return folder, frame, truth, result


def table_rows(stdout: str) -> dict[str, list[float]]:
    """The rows of the printed coefficient table: model feature name -> numbers on the row."""
    lines = stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    assert len(rules) >= 2, stdout
    rows: dict[str, list[float]] = {}
    column = None
    for line in lines[rules[0] + 1 : rules[1]]:
        if line.startswith("  ="):  # a level of the text column named on the row above
            name, *numbers = line.split()
            rows[f"{column}={name[1:]}"] = [float(v) for v in numbers if "/" not in v]
        elif re.search(r" \(text: \d+ of \d+ levels kept\)$", line):
            column = line.split(" (text")[0]
        else:
            name, *numbers = re.split(r"\s{2,}", line.strip())
            rows[name] = [float(v) for v in numbers if "/" not in v]  # not "3/5": in folds
    return rows


def assert_png(path: Path) -> None:
    from matplotlib.image import imread

    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # something is drawn on it


# --------------------------------------------------------------------------------------------------
# l1reg fit


def test_fit_writes_the_four_files_and_the_report_matches_them(regression_run):
    folder, frame, _, result = regression_run
    out = folder / "out"
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES  # no temporary file left over
    for name in ("coefficient_path.png", "cv_error.png"):
        assert_png(out / name)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "regression" and summary["estimator"] == "LassoCV"
    assert summary["rows"] == 150 and summary["columns"] == 7 and summary["model_features"] == 9
    assert summary["alpha_1se"] >= summary["alpha_min"] > 0
    assert summary["alpha"] == summary["alpha_min"]

    stdout = result.stdout
    assert f"alpha_min  {summary['alpha_min']:.5g}" in stdout
    assert f"alpha_1se  {summary['alpha_1se']:.5g}" in stdout
    assert f"kept       {summary['kept']} of 7 features" in stdout
    assert "wrote out" in stdout
    median = frame["x4"].median()
    assert f"imputed: 1 missing value of 'x4' set to {median:.5g} (median)" in stdout

    # The printed table and the JSON list the same features with the same coefficients.
    rows = table_rows(stdout)
    selected = {row["feature"]: row for row in summary["selected"]}
    assert set(rows) == set(selected)
    for name, row in selected.items():
        printed_coefficient, printed_per_sd = rows[name]
        assert printed_coefficient == pytest.approx(row["coefficient"], rel=1e-4, abs=1e-12)
        assert printed_per_sd == pytest.approx(row["per_sd"], rel=1e-4, abs=1e-12)
    assert summary["kept"] == len({row["column"] for row in summary["selected"]})


def test_fit_finds_the_true_features_in_original_units(regression_run):
    folder, frame, truth, result = regression_run
    summary = json.loads((folder / "out" / "summary.json").read_text())
    selected = {row["feature"]: row for row in summary["selected"]}
    for name, value in truth.items():  # per unit of the column, despite scales 10, 0.1, 1000
        assert selected[name]["coefficient"] == pytest.approx(value, rel=0.05)
    assert {"x0", "x1", "x2"} <= {row["column"] for row in summary["selected"][:4]}
    assert "group" in {row["column"] for row in summary["selected"]}
    # The text column is reported as one feature, its levels together under it.
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("group (text: "))
    kept_levels = [row["level"] for row in summary["selected"] if row["column"] == "group"]
    assert lines[header] == f"group (text: {len(kept_levels)} of 3 levels kept)"
    assert summary["text_levels"] == {"group": 3}
    assert lines[header + 1].startswith("  =")
    assert summary["score"]["r2"] > 0.95

    # The CSV's coefficients, in original units with the intercept, predict y from the raw data.
    table = pd.read_csv(folder / "out" / "coefficients.csv")
    model_features = ["x0", "x1", "x2", "group=a", "group=b", "group=c", "x3", "x4", "x5"]
    assert list(table["feature"]) == model_features
    assert list(table.loc[table["kept"], "feature"]) == [
        f for f in table["feature"] if f in selected
    ]
    raw = pd.get_dummies(frame.drop(columns="y"), columns=["group"], prefix_sep="=").astype(float)
    raw["x4"] = raw["x4"].fillna(summary["imputed"][0]["value"])
    coefficients = table.set_index("feature")["coefficient"]
    prediction = raw[coefficients.index].to_numpy() @ coefficients.to_numpy() + summary["intercept"]
    residual = frame["y"].to_numpy() - prediction
    assert np.sqrt(np.mean(residual**2)) < 0.3  # noise 0.1, plus the shrinkage of the Lasso


def classification_frame(n: int, classes: list[str], seed: int = 0) -> pd.DataFrame:
    """Class k is likeliest where feature f{k} is large; n0.. are noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(classes) + 3))
    scores = 3.0 * x[:, : len(classes)] if len(classes) > 2 else 3.0 * x[:, :1] * [[-1, 1]]
    probabilities = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    labels = [classes[rng.choice(len(classes), p=p)] for p in probabilities]
    names = [f"f{k}" for k in range(len(classes) if len(classes) > 2 else 1)]
    names += [f"n{k}" for k in range(x.shape[1] - len(names))]
    frame = pd.DataFrame(x, columns=names)
    frame["label"] = labels
    return frame


def test_fit_binary_classification_with_text_labels(tmp_path):
    classification_frame(120, ["no", "yes"]).to_csv(tmp_path / "c.csv", index=False)
    # Two text values are two classes under --task auto, as for numbers.
    result = run_l1reg("fit", "c.csv", "--target", "label", "--cv", "3", "--out", "o", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "classification (auto: the target has 2 distinct values)" in result.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["task"] == "classification"
    assert summary["estimator"] == "L1LogisticRegressionCV"
    assert summary["classes"] == ["no", "yes"] and summary["coefficient_of"] == ["yes"]
    assert summary["selected"][0]["feature"] == "f0"
    assert summary["selected"][0]["coefficient"] > 0  # "yes" is likelier where f0 is large
    assert summary["score"]["metric"] == "log-loss"
    assert summary["score"]["mean"] < summary["score"]["baseline"]
    assert "log-odds of yes" in result.stdout
    rows = table_rows(result.stdout)
    assert rows["f0"][0] == pytest.approx(summary["selected"][0]["coefficient"], rel=1e-4)
    for name in ("coefficient_path.png", "cv_error.png"):
        assert_png(tmp_path / "o" / name)


def test_fit_auto_task_and_multiclass(tmp_path):
    binary = classification_frame(90, ["0", "1"], seed=2)
    binary["label"] = binary["label"].astype(int)
    binary.to_csv(tmp_path / "b.csv", index=False)
    result = run_l1reg("fit", "b.csv", "--target", "label", "--cv", "3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["task"] == "classification" and "auto" in summary["task_reason"]

    classification_frame(150, ["ant", "bee", "cat"], seed=3).to_csv(tmp_path / "m.csv", index=False)
    result = run_l1reg(
        "fit", "m.csv", "--target", "label", "--task", "classification", "--cv", "3", "--out", "m",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["coefficient_of"] == ["ant", "bee", "cat"]
    by_name = {row["feature"]: row["coefficient"] for row in summary["selected"]}
    for k, name in enumerate(["ant", "bee", "cat"]):  # class k's own feature raises its log-odds
        assert max(by_name[f"f{k}"], key=by_name[f"f{k}"].get) == name
    assert "log-odds of ant" in result.stdout and "log-odds of cat" in result.stdout
    table = pd.read_csv(tmp_path / "m" / "coefficients.csv")
    assert {"coefficient[ant]", "coefficient[bee]", "coefficient[cat]"} <= set(table.columns)
    assert_png(tmp_path / "m" / "coefficient_path.png")


def test_fit_at_a_given_alpha(regression_run):
    folder, _, _, _ = regression_run
    search = json.loads((folder / "out" / "summary.json").read_text())
    alpha_min = repr(search["alpha_min"])
    # Plots of an earlier search in the same folder would no longer match: they go.
    (folder / "1e6").mkdir()
    (folder / "1e6" / "cv_error.png").write_bytes(b"stale")
    given = {}
    for alpha in (alpha_min, "1e6"):
        out = "1e6" if alpha == "1e6" else "given"
        result = run_l1reg(
            "fit", "data.csv", "--target", "y", "--alpha", alpha, "--cv", "3", "--impute",
            "--out", out, cwd=folder,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads((folder / out / "summary.json").read_text())
        assert summary["alpha"] == float(alpha) and summary["alpha_source"] == "given"
        assert summary["alpha_min"] is None and summary["alpha_1se"] is None
        assert summary["estimator"] == "Lasso"
        assert (
            f"alpha      {float(alpha):.5g}" in result.stdout and "alpha_min" not in result.stdout
        )
        # No search over alphas, so no path and no CV curve to draw.
        assert {p.name for p in (folder / out).iterdir()} == {
            "coefficients.csv",
            "summary.json",
            "model.json",
        }
        given[out] = (summary, result.stdout)
    assert given["1e6"][0]["kept"] == 0 and "no feature kept" in given["1e6"][1]
    # At alpha_min, on the same folds, the same model and the same CV score as the search's (up to
    # the solver's tolerance; the fold-to-fold spread is 10 times larger than this bound).
    at_min = given["given"][0]
    assert at_min["score"]["std_error"] > 0.05 * at_min["score"]["mean"]
    assert at_min["score"]["mean"] == pytest.approx(search["score"]["mean"], rel=0.02)
    assert [r["feature"] for r in at_min["selected"]] == [r["feature"] for r in search["selected"]]
    for mine, theirs in zip(at_min["selected"], search["selected"]):
        assert mine["coefficient"] == pytest.approx(theirs["coefficient"], rel=1e-2, abs=1e-6)


def standardized_features(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The features of a table of numbers standardized as l1reg fit does it."""
    X = frame.drop(columns=target).to_numpy(dtype=float)
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.mark.parametrize("classes", [["no", "yes"], ["ant", "bee", "cat"]])
def test_fit_at_a_given_alpha_is_the_cv_estimator_on_a_grid_of_that_alpha(tmp_path, classes):
    from sklearn.model_selection import StratifiedKFold

    from l1reg.linear_model import L1LogisticRegressionCV

    frame = classification_frame(150, classes, seed=3)
    frame.to_csv(tmp_path / "c.csv", index=False)
    alpha = 0.02
    result = run_l1reg(
        "fit", "c.csv", "--target", "label", "--task", "classification", "--cv", "3",
        "--alpha", str(alpha), "--out", "o", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["alpha_source"] == "given" and summary["estimator"] == "L1LogisticRegression"
    assert {p.name for p in (tmp_path / "o").iterdir()} == {
        "coefficients.csv",
        "summary.json",
        "model.json",
    }

    # The same folds, tolerance and refit as the estimator's own CV given the one alpha: for more
    # than two classes, the log-loss of each one-vs-rest problem, summed. Equal up to the solver's
    # tolerance (1e-6 of the objective), since standardizing here rounds differently: such a
    # change moved the CV error by 2e-7 and the coefficients by 5e-6 on this data.
    frame = pd.read_csv(tmp_path / "c.csv")  # the numbers exactly as the command read them
    X = standardized_features(frame, "label")
    y = np.unique(frame["label"], return_inverse=True)[1]
    folds = StratifiedKFold(3, shuffle=True, random_state=0)  # --seed 0
    model = L1LogisticRegressionCV(alphas=[alpha], cv=folds, tol=1e-6).fit(X, y)
    fold_errors = model.loss_path_[0]
    assert summary["score"]["mean"] == pytest.approx(fold_errors.mean(), rel=1e-5)
    assert summary["score"]["std_error"] == pytest.approx(
        fold_errors.std(ddof=1) / np.sqrt(3), rel=1e-3
    )
    names = list(frame.columns[:-1])
    assert summary["kept"] > 0
    for row in summary["selected"]:
        j = names.index(row["feature"])
        per_sd = [row["per_sd"]] if len(classes) == 2 else [row["per_sd"][c] for c in classes]
        np.testing.assert_allclose(per_sd, model.coef_[:, j], rtol=1e-4, atol=1e-4)


def test_multiclass_baseline_is_the_same_sum_of_one_vs_rest_log_losses(tmp_path):
    classes = ["ant", "bee", "cat"]
    frame = classification_frame(150, classes, seed=3)
    frame.to_csv(tmp_path / "m.csv", index=False)
    result = run_l1reg(
        "fit", "m.csv", "--target", "label", "--task", "classification", "--cv", "3",
        "--alpha", "1e6", "--out", "o", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    score = summary["score"]
    p = frame["label"].value_counts(normalize=True).to_numpy()
    expected = -np.sum(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert score["baseline"] == pytest.approx(expected, rel=1e-12)
    # At an alpha that keeps no feature, each problem predicts its class frequency: the baseline
    # is what the model's CV error is then (the folds are stratified, so up to their rounding).
    assert summary["kept"] == 0
    assert score["mean"] == pytest.approx(score["baseline"], rel=1e-3)


def test_fit_impute_fills_missing_values(tmp_path):
    frame, _ = regression_frame(n=60, seed=5)
    frame.loc[[3, 7], "x0"] = np.nan
    frame.loc[10, "group"] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    refused = run_l1reg("fit", "d.csv", "--target", "y", "--cv", "3", cwd=tmp_path)
    assert refused.returncode == 2
    assert "column 'x0' has 2 missing values, the first in data row 4" in refused.stderr
    assert "(and 1 more column)" in refused.stderr
    result = run_l1reg(
        "fit", "d.csv", "--target", "y", "--cv", "3", "--impute", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # --json: stdout is the JSON summary and nothing else
    out = tmp_path / "l1reg-out" / "d"  # the default --out
    assert summary == json.loads((out / "summary.json").read_text())
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    assert summary["out_dir"] == str(Path("l1reg-out") / "d")
    imputed = {item["column"]: item for item in summary["imputed"]}
    assert imputed["x0"]["value"] == pytest.approx(frame["x0"].median())
    assert imputed["x0"]["missing"] == 2
    assert imputed["group"]["value"] == frame["group"].mode()[0]


def run_with_terminal_stderr(*args: str, cwd: Path) -> tuple[int, str]:
    """Run l1reg with stderr on a pseudo-terminal of 100 columns; (status, what it wrote there)."""
    pty = pytest.importorskip("pty")
    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "l1reg.cli", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path):
    frame, _ = regression_frame(n=60, seed=6)
    frame.to_csv(tmp_path / "d.csv", index=False)
    status, shown = run_with_terminal_stderr(
        "fit", "d.csv", "--target", "y", "--cv", "3", cwd=tmp_path
    )
    assert status == 0
    assert "cross-validation" in shown and ("fit/s" in shown or "s/fit" in shown)
    status, shown = run_with_terminal_stderr(
        "fit", "d.csv", "--target", "y", "--cv", "3", "--quiet", cwd=tmp_path
    )
    assert status == 0 and shown == ""


def test_no_progress_bar_when_stderr_is_not_a_terminal(regression_run):
    assert regression_run[3].stderr == ""


# --------------------------------------------------------------------------------------------------
# Errors: one line, status 2, no file


def _write_cases(folder: Path) -> None:
    frame, _ = regression_frame(n=30, seed=7)
    frame.to_csv(folder / "good.csv", index=False)
    frame.head(1).to_csv(folder / "one_row.csv", index=False)
    with_text = frame.copy()
    with_text["y"] = with_text["y"].round(1).astype(str)
    with_text.loc[4, "y"] = "n.a."
    with_text.to_csv(folder / "text_target.csv", index=False)
    missing = frame.copy()
    missing.loc[5, "x1"] = np.nan
    missing.to_csv(folder / "missing.csv", index=False)
    (folder / "empty.csv").write_text("")
    (folder / "not_a_checkpoint.pt").write_bytes(b"this is not a checkpoint")
    (folder / "a_file").write_text("")
    # Checkpoints that hold no tensor, or a tensor that does not hold numbers.
    np.savez(folder / "empty.npz")
    np.savez(folder / "names.npz", weight=np.ones((2, 2)), names=np.array(["in", "out"]))
    np.savez(folder / "dates.npz", when=np.array(["2024-01-01"], dtype="datetime64[D]"))
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    (folder / "empty.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)


ERROR_CASES = {
    "missing file": (["fit", "absent.csv", "--target", "y"], ["'absent.csv'", "no such file"]),
    "empty file": (["fit", "empty.csv", "--target", "y"], ["'empty.csv'", "empty"]),
    "missing target": (["fit", "good.csv", "--target", "z"], ["'z'", "not found", "'x0'"]),
    "text target": (
        ["fit", "text_target.csv", "--target", "y", "--task", "regression"],
        ["'y'", "not numeric", "'n.a.'", "row 5"],
    ),
    "missing values": (["fit", "missing.csv", "--target", "y"], ["'x1'", "missing", "--impute"]),
    "one row": (["fit", "one_row.csv", "--target", "y"], ["one_row.csv", "1 data row"]),
    "unknown option": (["fit", "good.csv", "--target", "y", "--frobnicate"], ["--frobnicate"]),
    "unknown command": (["frobnicate"], ["'frobnicate'"]),
    "no target": (["fit", "good.csv"], ["--target", "required"]),
    "bad cv": (["fit", "good.csv", "--target", "y", "--cv", "1"], ["--cv", "'1'"]),
    "cv not a number": (["fit", "good.csv", "--target", "y", "--cv", "five"], ["--cv", "'five'"]),
    "negative alpha": (["fit", "good.csv", "--target", "y", "--alpha", "-1"], ["--alpha", "'-1'"]),
    "nan alpha": (["fit", "good.csv", "--target", "y", "--alpha", "nan"], ["--alpha", "'nan'"]),
    "too many folds": (["fit", "good.csv", "--target", "y", "--cv", "20"], ["30 data rows", "40"]),
    "out is a file": (["fit", "good.csv", "--target", "y", "--out", "a_file"], ["'a_file'"]),
    "unreadable checkpoint": (["inspect", "not_a_checkpoint.pt"], ["'not_a_checkpoint.pt'"]),
    "missing checkpoint": (["inspect", "absent.npz"], ["'absent.npz'", "no such file"]),
    "checkpoint of no tensor": (["inspect", "empty.npz"], ["'empty.npz'", "holds no tensor"]),
    "safetensors of no tensor": (
        ["inspect", "empty.safetensors"],
        ["'empty.safetensors'", "holds no tensor"],
    ),
    "text tensor": (["inspect", "names.npz"], ["'names.npz'", "'names'", "text", "not numbers"]),
    "dates tensor": (["inspect", "dates.npz"], ["'dates.npz'", "'when'", "not numbers"]),
}


@pytest.fixture(scope="module")
def error_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    _write_cases(folder)
    return folder


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_one_line_with_status_2_and_no_files(case, error_folder):
    args, expected = ERROR_CASES[case]
    before = sorted(p.name for p in error_folder.iterdir())
    result = run_l1reg(*args, cwd=error_folder)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("l1reg") and "error:" in lines[0]
    for text in expected:
        assert text in lines[0]
    assert sorted(p.name for p in error_folder.iterdir()) == before  # no output folder, no file


def test_written_files_get_the_usual_mode(tmp_path):
    from l1reg.cli.files import write_file, write_set

    previous = os.umask(0o022)
    try:
        write_set(tmp_path / "out", {"summary.json": b"{}\n"})
        write_file(tmp_path / "data.csv", b"1\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "summary.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "data.csv").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    from l1reg.cli.files import write_set

    out = tmp_path / "new" / "out"
    with pytest.raises(TypeError):  # the second file cannot be written
        write_set(out, {"summary.json": b"{}", "model.json": None, "cv_error.png": b"x"})
    assert list(tmp_path.iterdir()) == []  # no temporary folder, and the folders it made are gone

    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "summary.json").write_bytes(b"old")
    (tmp_path / "kept" / "cv_error.png").write_bytes(b"old plot")
    with pytest.raises(TypeError):
        write_set(tmp_path / "kept", {"summary.json": b"new", "model.json": None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (tmp_path / "kept" / "summary.json").read_bytes() == b"old"  # all or nothing
    # A set written whole replaces the whole folder: no plot of the old set stays beside it.
    write_set(tmp_path / "kept", {"summary.json": b"new"})
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_demo_runs_both_data_sets_and_fit_reproduces_it(tmp_path):
    result = run_l1reg("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    demo = tmp_path / "l1reg-demo"
    for name, target in (("diabetes", "progression"), ("breast_cancer", "diagnosis")):
        assert {p.name for p in (demo / name).iterdir()} == OUTPUT_FILES
        assert_png(demo / name / "coefficient_path.png")
        assert_png(demo / name / "cv_error.png")
        assert f"wrote {Path('l1reg-demo') / name}" in result.stdout
        assert (
            f"l1reg fit {Path('l1reg-demo') / (name + '.csv')} --target {target}" in result.stdout
        )
    diabetes = json.loads((demo / "diabetes" / "summary.json").read_text())
    assert diabetes["rows"] == 442 and diabetes["columns"] == 10
    assert 0 < diabetes["kept"] <= 10 and 0.4 < diabetes["score"]["r2"] < 0.6
    assert {"bmi", "ltg"} <= {row["feature"] for row in diabetes["selected"]}
    cancer = json.loads((demo / "breast_cancer" / "summary.json").read_text())
    assert cancer["rows"] == 569 and cancer["columns"] == 30
    assert cancer["classes"] == ["benign", "malignant"]
    assert cancer["score"]["mean"] < 0.3 * cancer["score"]["baseline"]

    # The CSV the demo wrote, through `l1reg fit`, is the same job: the same alphas and features.
    again = run_l1reg(
        "fit", str(Path("l1reg-demo") / "diabetes.csv"), "--target", "progression", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    refit = json.loads(again.stdout)
    assert refit["alpha_min"] == pytest.approx(diabetes["alpha_min"], rel=1e-9)
    assert [r["feature"] for r in refit["selected"]] == [r["feature"] for r in diabetes["selected"]]


# --------------------------------------------------------------------------------------------------
# l1reg inspect


def test_inspect_npz_and_torch_checkpoints(tmp_path):
    weight = np.arange(1.0, 13.0).reshape(3, 4)  # outputs x inputs, as PyTorch stores it
    weight[:, 1] = 0.0  # input 1 removed
    weight[2] = 0.0  # output 2 removed
    bias = np.array([0.5, 0.0, -1.0])
    np.savez(tmp_path / "model.npz", **{"layer.weight": weight, "layer.bias": bias})
    result = run_l1reg("inspect", "model.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("layer.weight"))
    assert "3x4" in row and "6 / 12" in row and "3 / 4" in row and "2 / 3" in row
    total = next(line for line in result.stdout.splitlines() if line.startswith("total"))
    assert "7 / 15" in total

    result = run_l1reg("inspect", "model.npz", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["total"]["zeros"] == 7
    assert report["total"]["l1_norm"] == pytest.approx(np.abs(weight).sum() + 1.5)
    tensors = {t["name"]: t for t in report["tensors"]}
    assert tensors["layer.weight"]["inputs_kept"] == 3
    assert tensors["layer.weight"]["outputs_kept"] == 2

    torch = pytest.importorskip("torch")
    state = {"layer.weight": torch.tensor(weight), "layer.bias": torch.tensor(bias)}
    torch.save(state, tmp_path / "model.pt")
    from_torch = run_l1reg("inspect", "model.pt", "--json", cwd=tmp_path)
    assert from_torch.returncode == 0, from_torch.stderr
    assert {k: v for k, v in json.loads(from_torch.stdout).items() if k != "checkpoint"} == {
        k: v for k, v in report.items() if k != "checkpoint"
    }


def test_inspect_torch_checkpoints_without_numbers_fail_in_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"epoch": 3, "note": "no weights here"}, tmp_path / "no_tensor.pt")
    torch.save({"w": torch.eye(3).to_sparse()}, tmp_path / "sparse.pt")
    for name, expected in (("no_tensor.pt", "holds no tensor"), ("sparse.pt", "tensor 'w'")):
        result = run_l1reg("inspect", name, cwd=tmp_path)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and f"'{name}'" in lines[0] and expected in lines[0], lines


def test_inspect_widens_torch_floats_that_numpy_lacks(tmp_path):
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this torch has no float8")
    values = torch.tensor([[0.0, 1.5], [-0.25, 0.0]])  # exact in float8_e4m3fn and bfloat16
    state = {"w8": values.to(torch.float8_e4m3fn), "w16": values.to(torch.bfloat16)}
    torch.save(state, tmp_path / "low.pt")
    result = run_l1reg("inspect", "low.pt", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tensors = {t["name"]: t for t in json.loads(result.stdout)["tensors"]}
    for name in state:
        assert tensors[name]["zeros"] == 2 and tensors[name]["l1_norm"] == 1.75


# --------------------------------------------------------------------------------------------------
# Imports stay light


def test_import_l1reg_and_the_cli_modules_load_no_plotting_pandas_or_estimators(tmp_path):
    # Every room of the command, so that a top-level import added to any of them is caught.
    code = (
        "import importlib, pkgutil, sys, l1reg, l1reg.cli, l1reg.plotting, l1reg.datasets, "
        "l1reg.checkpoints\n"
        "for m in pkgutil.iter_modules(l1reg.cli.__path__, 'l1reg.cli.'):\n"
        "    if m.name != 'l1reg.cli.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "heavy = ('pandas', 'matplotlib', 'tqdm', 'sklearn', 'torch', 'l1reg.linear_model')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_lists_the_commands(tmp_path):
    result = run_l1reg("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("fit", "demo", "inspect"):
        assert command in result.stdout


# --------------------------------------------------------------------------------------------------
# The bundled data


def test_datasets_write_csv_round_trips(tmp_path):
    from l1reg.datasets import DATASETS, load_breast_cancer, write_csv

    path = write_csv("breast_cancer", tmp_path / "data" / "cancer.csv")
    assert [p.name for p in path.parent.iterdir()] == ["cancer.csv"]
    read_back = pd.read_csv(path)
    expected = load_breast_cancer()
    assert list(read_back.columns) == list(expected.columns)
    assert read_back["diagnosis"].value_counts().to_dict() == {"benign": 357, "malignant": 212}
    np.testing.assert_allclose(
        read_back.drop(columns="diagnosis").to_numpy(),
        expected.drop(columns="diagnosis").to_numpy(),
    )
    assert DATASETS["diabetes"].target in DATASETS["diabetes"].load().columns
    with pytest.raises(KeyError, match="diabetes"):
        write_csv("iris", tmp_path / "iris.csv")


def test_a_set_written_through_a_link_goes_into_the_linked_folder(tmp_path):
    from l1reg.cli.files import write_set

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "summary.json").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    write_set(tmp_path / "link", {"summary.json": b"new"})
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real" / "summary.json").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
