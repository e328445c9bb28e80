"""``l1reg fit`` and ``l1reg predict`` on files as users have them, run in a subprocess.

Sorted rows, index columns, duplicated and constant columns, ``;`` and tab separators, Parquet and
gzip, text targets; the saved model and its predictions; the output set under kill -9 and
concurrent runs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from test_cli import run_l1reg  # noqa: E402


def fit(folder: Path, data: str, *args: str, expect: int = 0):
    result = run_l1reg("fit", data, *args, "--json", cwd=folder)
    assert result.returncode == expect, result.stderr
    return json.loads(result.stdout) if expect == 0 else result


def sorted_regression(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """y = x0 + x1 - x2 + noise over 8 columns, the rows sorted by y (as a published table)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(8)])
    frame["y"] = x[:, 0] + x[:, 1] - x[:, 2] + 0.5 * rng.standard_normal(n)
    return frame.sort_values("y").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Folds


def test_folds_are_shuffled_so_a_sorted_file_scores_as_the_shuffled_one(tmp_path):
    frame = sorted_regression()
    frame.to_csv(tmp_path / "sorted.csv", index=False)
    frame.sample(frac=1, random_state=3).to_csv(tmp_path / "mixed.csv", index=False)
    on_sorted = fit(tmp_path, "sorted.csv", "--target", "y", "--out", "a")
    on_mixed = fit(tmp_path, "mixed.csv", "--target", "y", "--out", "b")
    # Contiguous folds of the sorted file each miss a fifth of the range of y: R² 0.70 here.
    # The truth has R² 0.92 (noise variance 0.25 of 3.25).
    for summary in (on_sorted, on_mixed):
        assert summary["score"]["r2"] > 0.88
        assert summary["seed"] == 0 and summary["folds"] == "shuffled"
        assert {row["feature"] for row in summary["selected"]} >= {"x0", "x1", "x2"}
    assert on_sorted["score"]["r2"] == pytest.approx(on_mixed["score"]["r2"], abs=0.02)


def test_the_same_seed_gives_the_same_result_and_another_seed_other_folds(tmp_path):
    sorted_regression(n=120).to_csv(tmp_path / "d.csv", index=False)
    first = fit(tmp_path, "d.csv", "--target", "y", "--seed", "7", "--out", "a")
    again = fit(tmp_path, "d.csv", "--target", "y", "--seed", "7", "--out", "b")
    other = fit(tmp_path, "d.csv", "--target", "y", "--seed", "8", "--out", "c")
    assert first["seed"] == 7 and first["score"] == again["score"]
    assert first["alpha_min"] == again["alpha_min"] and first["selected"] == again["selected"]
    assert other["score"]["mean"] != first["score"]["mean"]


def test_classification_folds_are_stratified(tmp_path):
    from sklearn.model_selection import StratifiedKFold

    from l1reg.cli.design import build_design
    from l1reg.cli.fitting import FitOptions, folds

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.standard_normal(60), "label": ["a"] * 50 + ["b"] * 10})
    design = build_design(frame, source="t", target="label", cv=5)
    splitter = folds(design, FitOptions(cv=5, seed=4))
    assert isinstance(splitter, StratifiedKFold) and splitter.shuffle
    for _, test in splitter.split(design.X, design.y):
        assert np.bincount(design.y[test]).tolist() == [10, 2]  # each fold holds both classes


# --------------------------------------------------------------------------------------------------
# Columns


def penguins_like(n_per_class: int = 40, seed: int = 0) -> pd.DataFrame:
    """Three species sorted by species, with R's row names and a pandas index as columns."""
    rng = np.random.default_rng(seed)
    species = np.repeat(["Adelie", "Chinstrap", "Gentoo"], n_per_class)
    code = np.repeat([0.0, 1.0, 2.0], n_per_class)
    frame = pd.DataFrame(
        {
            "rownames": np.arange(1, len(species) + 1),
            "bill_length": 40 + 5 * code + rng.standard_normal(len(species)),
            "flipper": 190 + rng.standard_normal(len(species)) * 8,
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], len(species)),
            "study": "PAL0708",
            "sample_id": [f"N{k}A1" for k in range(len(species))],
            "species": species,
        }
    )
    frame["bill_copy"] = frame["bill_length"]
    frame["flipper_mm"] = frame["flipper"]
    return frame


def test_index_constant_and_duplicated_columns_are_left_out_and_reported(tmp_path):
    frame = penguins_like()
    frame.to_csv(tmp_path / "penguins.csv")  # pandas' own index too: "Unnamed: 0"
    summary = fit(tmp_path, "penguins.csv", "--target", "species", "--task", "classification")
    left_out = summary["left_out"]
    assert left_out["index"] == ["Unnamed: 0", "rownames", "sample_id"]
    assert left_out["constant"] == ["study"]
    assert left_out["duplicates"] == [
        {"kept": "bill_length", "copies": ["bill_copy"]},
        {"kept": "flipper", "copies": ["flipper_mm"]},
    ]
    assert summary["columns"] == 3  # bill_length, flipper, island
    assert summary["selected"][0]["column"] == "bill_length"  # not the row number
    assert "Adelie" in summary["classes"] and summary["multiclass"] == "one-vs-rest"
    assert any("fitted one-vs-rest" in note for note in summary["notes"])

    report = run_l1reg("fit", "penguins.csv", "--target", "species", "--task", "classification",
                       cwd=tmp_path).stdout  # fmt: skip
    lines = report.splitlines()
    # One line per kind; the duplicates as groups.
    assert sum(line.startswith("left out, an index") for line in lines) == 1
    assert "left out, constant (one value): 'study'" in lines
    assert (
        "left out, 2 duplicated columns (copies of a kept one): 'bill_copy' = 'bill_length'; "
        "'flipper_mm' = 'flipper'" in lines
    )


def test_drop_and_its_errors(tmp_path):
    penguins_like().to_csv(tmp_path / "p.csv", index=False)
    summary = fit(tmp_path, "p.csv", "--target", "species", "--task", "classification",
                  "--drop", "island,flipper")  # fmt: skip
    assert summary["left_out"]["dropped"] == ["flipper", "island"]
    assert {row["column"] for row in summary["selected"]} <= {"bill_length", "flipper_mm"}
    bad = fit(tmp_path, "p.csv", "--target", "species", "--drop", "islnd", expect=2)
    assert "--drop names 'islnd', not a column of p.csv" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = fit(tmp_path, "p.csv", "--target", "species", "--drop", "species", expect=2)
    assert "--drop names the target column 'species'" in bad.stderr


def test_a_numeric_id_that_is_not_the_row_numbers_stays_a_feature(tmp_path):
    from l1reg.cli.columns import screen_columns

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "shuffled_rows": rng.permutation(50),  # a permutation of 0..49: an index
            "distinct_measure": rng.standard_normal(50),  # all distinct, but a measurement
            "y": rng.standard_normal(50),
        }
    )
    screening = screen_columns(frame, target="y", drop=[], source="t")
    assert screening.index == ["shuffled_rows"]
    assert screening.features == ["distinct_measure"]


def test_a_two_level_text_column_is_one_feature_and_counts_are_exact_zeros(tmp_path):
    rng = np.random.default_rng(2)
    n = 200
    frame = pd.DataFrame(
        {
            "smoker": rng.choice(["no", "yes"], n),
            "x": rng.standard_normal(n),
            "noise": rng.standard_normal(n),
        }
    )
    frame["y"] = 2.0 * (frame["smoker"] == "yes") + frame["x"] + 0.3 * rng.standard_normal(n)
    for copy in range(3):  # fingerprint-like copies: one group, left out
        frame[f"x_copy{copy}"] = frame["x"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = run_l1reg("fit", "d.csv", "--target", "y", "--out", "o", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["model_features"] == 3  # smoker=yes, x, noise
    names = {row["feature"]: row for row in summary["selected"]}
    assert names["smoker=yes"]["coefficient"] == pytest.approx(2.0, abs=0.15)
    assert "smoker=no" not in names
    coefficients = pd.read_csv(tmp_path / "o" / "coefficients.csv")
    kept = coefficients["coefficient"] != 0
    assert coefficients["kept"].tolist() == kept.tolist()
    assert summary["kept_model_features"] == int(kept.sum())
    # Every kept coefficient is a real one: nothing at round-off is counted.
    assert coefficients.loc[kept, "per_sd"].abs().min() > 1e-6
    assert "smoker=yes" in result.stdout and "(text:" not in result.stdout


# --------------------------------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_separator_is_sniffed_or_given(tmp_path, sep):
    frame = sorted_regression(n=80)
    frame.to_csv(tmp_path / "d.txt", sep=sep, index=False)
    sniffed = fit(tmp_path, "d.txt", "--target", "y")
    assert sniffed["columns"] == 8
    given = fit(tmp_path, "d.txt", "--target", "y", "--sep", "tab" if sep == "\t" else sep)
    assert given["selected"] == sniffed["selected"] and given["score"] == sniffed["score"]
    wrong = fit(tmp_path, "d.txt", "--target", "y", "--sep", ",", expect=2)
    assert "target column 'y' not found" in wrong.stderr


def test_the_same_table_from_csv_gzip_and_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    frame = sorted_regression(n=90)
    frame["group"] = np.where(frame["x3"] > 0, "up", "down")
    frame.to_csv(tmp_path / "hitters.csv", index=False)
    frame.to_csv(tmp_path / "hitters.csv.gz", index=False)
    frame.to_parquet(tmp_path / "hitters.parquet")
    results = {}
    for name in ("hitters.csv", "hitters.csv.gz", "hitters.parquet"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        os.replace(tmp_path / name, folder / name)
        results[name] = fit(folder, name, "--target", "y")
        # The output folder is named after the file's stem, without its suffixes.
        assert results[name]["out_dir"] == str(Path("l1reg-out") / "hitters")
        assert (folder / "l1reg-out" / "hitters" / "model.json").exists()
    reference = results["hitters.csv"]
    for summary in results.values():
        assert summary["selected"] == reference["selected"]
        assert summary["score"] == reference["score"]


def test_na_values_mark_missing_cells(tmp_path):
    frame = sorted_regression(n=60)
    text = frame.to_csv(index=False).splitlines()
    cells = text[5].split(",")
    cells[3] = "?"
    text[5] = ",".join(cells)
    (tmp_path / "d.csv").write_text("\n".join(text) + "\n")
    refused = fit(tmp_path, "d.csv", "--target", "y", expect=2)
    assert "'?'" in refused.stderr and "--na-values" in refused.stderr
    summary = fit(tmp_path, "d.csv", "--target", "y", "--na-values", "?,n.a.", "--impute")
    assert summary["imputed"] == [
        {"column": "x3", "missing": 1, "value": frame["x3"].drop(4).median(), "by": "median"}
    ]


# --------------------------------------------------------------------------------------------------
# The target


@pytest.mark.parametrize("labels", [["bad", "good"], ["B", "M"], [False, True]])
def test_any_two_valued_target_is_a_classification(tmp_path, labels):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["t"] = np.where(x[:, 0] + 0.5 * rng.standard_normal(120) > 0, labels[1], labels[0])
    frame.to_csv(tmp_path / "d.csv", index=False)
    summary = fit(tmp_path, "d.csv", "--target", "t")
    assert summary["task"] == "classification"
    assert [str(c) for c in summary["classes"]] == [str(v) for v in labels]
    assert summary["selected"][0]["feature"] == "a"


def test_few_integer_targets_get_a_hint_and_more_text_values_an_error(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((80, 3)), columns=["a", "b", "c"])
    frame["klass"] = rng.integers(1, 5, 80)  # Khan's 4 tumour types, coded 1..4
    frame["word"] = rng.choice(["x", "y", "z"], 80)
    frame.to_csv(tmp_path / "d.csv", index=False)
    summary = fit(tmp_path, "d.csv", "--target", "klass", "--drop", "word")
    assert summary["task"] == "regression"
    assert any("4 distinct integer values" in n and "--task classification" in n
               for n in summary["notes"])  # fmt: skip
    refused = fit(tmp_path, "d.csv", "--target", "word", expect=2)
    assert "pass --task classification" in refused.stderr


# --------------------------------------------------------------------------------------------------
# --select, --max-iter, --tol


def test_select_1se_reports_the_sparser_model_and_both_alphas(tmp_path):
    sorted_regression(n=150).to_csv(tmp_path / "d.csv", index=False)
    at_min = fit(tmp_path, "d.csv", "--target", "y", "--out", "a")
    at_1se = fit(tmp_path, "d.csv", "--target", "y", "--select", "1se", "--out", "b")
    assert at_1se["alpha_source"] == "alpha_1se" and at_1se["alpha"] == at_1se["alpha_1se"]
    assert at_min["alpha_source"] == "alpha_min" and at_min["alpha"] == at_min["alpha_min"]
    for summary in (at_min, at_1se):  # both are always reported
        assert summary["alpha_1se"] > summary["alpha_min"]
        assert summary["kept_at_alpha_1se"] <= summary["kept_at_alpha_min"]
    assert at_1se["kept"] == at_1se["kept_at_alpha_1se"]
    assert at_min["kept"] == at_min["kept_at_alpha_min"]
    model = json.loads((tmp_path / "b" / "model.json").read_text())
    assert model["alpha"] == at_1se["alpha_1se"]


def test_max_iter_and_tol_reach_the_solver(tmp_path):
    sorted_regression(n=100).to_csv(tmp_path / "d.csv", index=False)
    result = run_l1reg("fit", "d.csv", "--target", "y", "--max-iter", "1", "--tol", "1e-12",
                       "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: ConvergenceWarning" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["max_iter"] == 1 and summary["tol"] == 1e-12
    for bad in (["--tol", "0"], ["--tol", "2"], ["--max-iter", "0"], ["--seed", "-1"]):
        refused = run_l1reg("fit", "d.csv", "--target", "y", *bad, cwd=tmp_path)
        assert refused.returncode == 2 and bad[0] in refused.stderr


# --------------------------------------------------------------------------------------------------
# The saved model and l1reg predict


def messy_classification(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "dose": rng.normal(5, 2, n),
            "site": rng.choice(["north", "south", "east"], n),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    score = (frame["age"] - 50) / 10 + (frame["site"] == "east") - 0.5 * (frame["sex"] == "M")
    frame["outcome"] = np.where(score + 0.5 * rng.standard_normal(n) > 0, "sick", "well")
    frame.loc[3, "dose"] = np.nan
    frame.loc[8, "site"] = np.nan
    return frame


@pytest.mark.parametrize("task", ["regression", "classification", "multiclass"])
def test_predict_round_trip_equals_the_fitted_estimator(tmp_path, task):
    from l1reg.cli.design import build_design
    from l1reg.cli.fitting import FitOptions, Progress, fit_design

    frame = messy_classification()
    target = "outcome"
    if task == "regression":
        target = "dose_response"
        frame[target] = frame["age"] * 0.3 + (frame["sex"] == "M") * 2.0
    elif task == "multiclass":
        frame[target] = np.where(frame["age"] > 55, "old", frame["site"].fillna("north"))
    frame.to_csv(tmp_path / "train.csv", index=False)
    args = ["--target", target, "--impute", "--select", "1se", "--seed", "3", "--out", "m"]
    if target == "dose_response":
        args += ["--drop", "outcome"]
    if task == "multiclass":
        args += ["--task", "classification"]
    summary = fit(tmp_path, "train.csv", *args)

    # The new rows: other order of columns, an extra column, missing cells the model fills.
    new = frame.drop(columns=[target]).sample(frac=1.0, random_state=1).reset_index(drop=True)
    new["extra"] = "ignored"
    new = new[list(reversed(new.columns))]
    new.loc[0, "age"] = np.nan
    new.to_csv(tmp_path / "new.csv", index=False)
    result = run_l1reg("predict", "m/model.json", "new.csv", "--out", "pred.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = pd.read_csv(tmp_path / "pred.csv")
    assert len(predicted) == len(new)

    # The estimator the command fitted, on the same rows encoded by the fit's own pipeline.
    train = pd.read_csv(tmp_path / "train.csv")
    if target == "dose_response":
        train = train.drop(columns="outcome")
    design = build_design(
        train, source="train.csv", target=target, impute=True, task=summary["task"]
    )
    fitted = fit_design(design, FitOptions(seed=3, select="1se"), Progress(False, "")).model
    assert fitted.alpha == summary["alpha_1se"]
    from l1reg.cli.design import encode

    # The missing cells of the new rows filled with the medians and modes of the training rows.
    filled = new.copy()
    for column in ("age", "dose"):
        filled[column] = filled[column].fillna(train[column].median())
    for column in ("site", "sex"):
        filled[column] = filled[column].fillna(train[column].mode().sort_values().iloc[0])
    assert filled.notna().all().all()
    features = encode(filled, design.encodings, source="new")
    X = (features - design.mean) / design.scale
    name = f"predicted_{target}"
    if task == "regression":
        np.testing.assert_allclose(predicted[name], fitted.predict(X), rtol=1e-10, atol=1e-10)
    else:
        classes = np.array(design.classes)
        assert predicted[name].tolist() == classes[fitted.predict(X)].tolist()
        columns = [f"probability[{c}]" for c in design.classes]
        np.testing.assert_allclose(predicted[columns], fitted.predict_proba(X), atol=1e-10)

    # The same model in Python.
    import l1reg

    model = l1reg.load_model(tmp_path / "m" / "model.json")
    np.testing.assert_allclose(
        model.predict(new) if task == "regression" else model.predict_proba(new),
        predicted[[name]].to_numpy().ravel()
        if task == "regression"
        else predicted[[f"probability[{c}]" for c in design.classes]].to_numpy(),
        rtol=1e-12,
        atol=1e-12,
    )
    assert set(model.feature_names_in_) == {e.name for e in design.encodings}


def test_predict_names_a_missing_column_an_unseen_level_and_a_bad_model(tmp_path):
    frame = messy_classification()
    frame.to_csv(tmp_path / "train.csv", index=False)
    fit(tmp_path, "train.csv", "--target", "outcome", "--impute", "--out", "m")
    cases = {
        "no_site.csv": (frame.drop(columns=["site", "outcome"]), "lacks the column 'site'"),
        "west.csv": (frame.assign(site="west"), "has the level 'west' (data row 1)"),
        "word.csv": (frame.assign(age="old"), "column 'age' of word.csv is numeric"),
    }
    for name, (table, message) in cases.items():
        table.to_csv(tmp_path / name, index=False)
        result = run_l1reg("predict", "m/model.json", name, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    (tmp_path / "junk.json").write_text('{"a": 1}')
    result = run_l1reg("predict", "junk.json", "west.csv", cwd=tmp_path)
    assert result.returncode == 2 and "not a model written by l1reg fit" in result.stderr
    model = json.loads((tmp_path / "m" / "model.json").read_text())
    assert model["format"] == "l1reg-model" and model["l1reg_version"]
    assert {c["name"]: c["kind"] for c in model["columns"]} == {
        "age": "numeric", "dose": "numeric", "site": "text", "sex": "text"
    }  # fmt: skip
    assert model["columns"][1]["fill"] == pytest.approx(frame["dose"].median())
    assert len(model["features"]) == 1 + 1 + 3 + 1  # sex is one 0/1 feature


def test_predict_writes_to_stdout_by_default(tmp_path):
    frame = messy_classification()
    frame.to_csv(tmp_path / "train.csv", index=False)
    fit(tmp_path, "train.csv", "--target", "outcome", "--impute", "--out", "m")
    result = run_l1reg("predict", "m", "train.csv", cwd=tmp_path)  # the folder holding the model
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert list(table.columns) == [
        "predicted_outcome", "probability[sick]", "probability[well]"
    ]  # fmt: skip
    accuracy = (table["predicted_outcome"] == frame["outcome"]).mean()
    assert accuracy > 0.8


# --------------------------------------------------------------------------------------------------
# The output set


def read_set(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_kill_9_in_the_write_window_never_leaves_a_mixed_or_partial_set(tmp_path):
    """Kills aimed at the write window (slowed down), at least 30 of them while the process was
    writing: the folder is always one whole set."""
    sorted_regression(n=60).to_csv(tmp_path / "d.csv", index=False)
    for seed in ("1", "2"):
        fit(tmp_path, "d.csv", "--target", "y", "--cv", "3", "--seed", seed, "--out", f"s{seed}")
    sets = [read_set(tmp_path / "s1"), read_set(tmp_path / "s2")]
    assert sets[0]["summary.json"] != sets[1]["summary.json"]
    script = textwrap.dedent(
        """
        import json, os, random, signal, sys, time
        from pathlib import Path
        import l1reg.cli.files as files

        root = Path(sys.argv[1])
        sets = [{p.name: p.read_bytes() for p in (root / s).iterdir()} for s in ("s1", "s2")]
        real_write = files._write_bytes

        def slow_write(path, data):  # widen the window: 30 ms per file
            real_write(path, data)
            time.sleep(0.03)

        files._write_bytes = slow_write
        rng = random.Random(0)
        out = root / "out"
        seen = []
        for trial in range(60):
            pid = os.fork()
            if pid == 0:
                files.write_set(out, sets[trial % 2])
                os._exit(0)
            time.sleep(rng.uniform(0.0, 0.25))  # the window: 0.15 s and more
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status)
            state = "absent"
            if out.exists():
                found = {p.name: p.read_bytes() for p in out.iterdir()}
                state = next((f"set{i}" for i, s in enumerate(sets) if found == s), "MIXED")
            leftovers = [p.name for p in root.iterdir() if ".l1reg-" in p.name]
            seen.append({"killed": killed, "state": state, "leftovers": len(leftovers)})
        print(json.dumps(seen))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    killed = [trial for trial in seen if trial["killed"]]
    assert len(killed) >= 30  # kills that hit a writing process
    assert all(trial["state"] != "MIXED" for trial in seen)
    assert {trial["state"] for trial in seen} >= {"set0", "set1"}
    first_set = next(i for i, trial in enumerate(seen) if trial["state"] != "absent")
    assert all(trial["state"] != "absent" for trial in seen[first_set:])  # never gone again
    assert any(trial["leftovers"] for trial in killed)  # some kills left a temporary folder
    # The next run removes what the killed ones left.
    fit(tmp_path, "d.csv", "--target", "y", "--cv", "3", "--out", "out")
    assert [p.name for p in tmp_path.iterdir() if ".l1reg-" in p.name] == []
    assert set(os.listdir(tmp_path / "out")) == set(sets[0])


def test_a_run_whose_output_another_run_replaced_says_so(tmp_path):
    sorted_regression(n=60).to_csv(tmp_path / "d.csv", index=False)
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        import l1reg.cli.commands as commands

        real = commands.write_set

        def write_then_wait(out_dir, contents):
            real(out_dir, contents)
            Path("written").touch()
            while not Path("go").exists():  # the other run writes meanwhile
                time.sleep(0.05)

        commands.write_set = write_then_wait
        sys.exit(commands.main(sys.argv[1:]))
        """
    )
    args = ["fit", "d.csv", "--target", "y", "--cv", "3", "--out", "out"]
    first = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(1200):
            if (tmp_path / "written").exists():
                break
            import time

            time.sleep(0.05)
        second = run_l1reg(*args, "--seed", "5", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert "replaced" not in second.stderr
    finally:
        (tmp_path / "go").touch()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert "were replaced by another run" in stderr
    assert "wrote out" not in stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["seed"] == 5


def test_out_folder_with_other_files_is_refused_before_any_work(tmp_path):
    sorted_regression(n=60).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    result = run_l1reg("fit", "d.csv", "--target", "y", "--out", "mine", cwd=tmp_path)
    assert result.returncode == 2
    assert "holds files l1reg fit did not write ('notes.txt')" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"


# --------------------------------------------------------------------------------------------------
# How much to trust the selection


def test_stability_and_fold_frequencies_are_reported_in_table_csv_and_json(tmp_path):
    rng = np.random.default_rng(4)
    n, p = 200, 30
    x = rng.standard_normal((n, p))
    frame = pd.DataFrame(x, columns=[f"g{j}" for j in range(p)])
    frame["y"] = x[:, :3] @ [2.0, -1.5, 1.0] + rng.standard_normal(n)
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = run_l1reg("fit", "d.csv", "--target", "y", "--stability", "20", "--out", "o",
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o"
    summary = json.loads((out / "summary.json").read_text())
    stability = summary["stability"]
    assert stability["pairs"] == 20 and stability["half_samples"] == 40
    assert {row["feature"] for row in stability["selected"]} >= {"g0", "g1", "g2"}
    assert 0 < stability["expected_false_selections"] < p / 4
    false = [row for row in stability["selected"] if row["feature"] not in ("g0", "g1", "g2")]
    assert len(false) <= 2
    table = pd.read_csv(out / "stability.csv")
    assert table.loc[table["selected"], "feature"].tolist() == sorted(
        [row["feature"] for row in stability["selected"]], key=lambda f: int(f[1:])
    )
    assert {"stability.csv", "stability_path.png"} <= set(summary["files"])
    assert "expected false selections <=" in result.stdout
    # The fold frequencies: the selection of the CV folds' own fits, in JSON, CSV and table.
    coefficients = pd.read_csv(out / "coefficients.csv").set_index("feature")
    for row in summary["selected"]:
        assert row["fold_frequency"] == coefficients.loc[row["feature"], "fold_frequency"]
        assert 0 < row["fold_frequency"] <= 1
        assert row["stability"] == pytest.approx(
            table.set_index("feature").loc[row["feature"], "stability"]
        )
    for name in ("g0", "g1", "g2"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert " 5/5 " in line and line.rstrip().endswith("1.00")
