"""The ``l1reg`` command: fit a sparse linear model to a table, reuse it, the demo, a checkpoint.

    l1reg demo                                  both bundled data sets, written to ./l1reg-demo/
    l1reg fit DATA.csv --target COLUMN          Lasso or L1 logistic regression, alpha chosen by CV
    l1reg predict MODEL NEW.csv                 the saved model.json applied to new rows
    l1reg inspect CHECKPOINT                    exact zeros per tensor of a saved model

``l1reg fit`` reads a CSV (its separator sniffed; gzip and the other compressions pandas reads),
or Parquet. Columns that cannot be features are left out and reported: an index or identifier, a
constant, a copy of another column, those named with ``--drop``. Numeric columns are used as they
are; a text column of two levels is one 0/1 feature, one of more levels is one-hot encoded (one
model feature per level, grouped back under their column in the report). Every model feature is
standardized (mean 0, standard deviation 1) before the fit, so one alpha penalizes all features
alike; the report gives each coefficient in the units of its column and per standard deviation,
and how many of the CV folds' fits keep it. The model is ``LassoCV`` for a regression and
``L1LogisticRegressionCV`` for a classification, on shuffled folds seeded by ``--seed``
(stratified for a classification); the report shows the model at ``alpha_min`` (the lowest mean CV
error) or, with ``--select 1se``, at ``alpha_1se`` (the largest alpha within one standard error of
it), and how many features each keeps. The CV score is the held-out mean squared error, or
log-loss (for more than two classes, fitted one-vs-rest, the log-loss summed over the one-vs-rest
problems). ``--stability B`` adds stability selection over B complementary pairs of half-samples.

``--alpha A`` skips the search: the same estimator is given the one alpha A, so its score is
cross-validated at A on the same folds and the model is its refit at A. alpha_min, alpha_1se and
the plots, which describe a search over alphas, are then not produced; the JSON summary has
``"alpha_source": "given"`` and nulls for them.

The files (coefficients.csv, summary.json, model.json, the plots) are one set: written into a new
folder beside ``--out`` and swapped in as a whole. ``model.json`` is the whole pipeline as plain
JSON; ``l1reg predict`` and ``l1reg.load_model`` apply it to new rows.

Errors (a missing file, a bad target column, missing values without ``--impute``, too few rows, a
bad option, a column or level a model does not know) print one line on stderr and exit with status
2, before any file is written.

Importing this package is cheap: pandas, scikit-learn, matplotlib, tqdm and the estimators are
imported by the command that needs them.

The rooms of this package, in the order a run goes through them:

    parser.py     the commands and their options (argparse); bad values refused as they are parsed
    commands.py   fit, predict, demo and inspect, and main(), which runs the one asked for
    table.py      reading the file (CSV, compressed, Parquet); what a column holds
    columns.py    the columns that cannot be features: index, constant, duplicate, dropped
    target.py     the target column: the task (regression or classification) and its encoding
    design.py     the features: their encodings (one encoder for fit and predict), standardization
    fitting.py    the fit, through the estimators' own cross-validation only; stability selection
    report.py     the summary dict, the printed table, coefficients.csv and the plots
    model.py      model.json: written from a fit, read back as a TableModel that predicts
    files.py      the output folder, and the set of files swapped into it as one
    errors.py     CommandError: one line on stderr, exit status 2
    wording.py    plurals, lists of names and numbers, spelled one way in errors and report
"""

from l1reg.cli.commands import main

__all__ = ["main"]
