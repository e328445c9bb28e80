"""The ``l1reg`` command: fit a sparse linear model to a CSV file, the demo, inspect a checkpoint.

    l1reg demo                                  both bundled data sets, written to ./l1reg-demo/
    l1reg fit DATA.csv --target COLUMN          Lasso or L1 logistic regression, alpha chosen by CV
    l1reg inspect CHECKPOINT                    exact zeros per tensor of a saved model

``l1reg fit`` reads the CSV with pandas: numeric columns are used as they are, text columns are
one-hot encoded (one model feature per level, grouped back under their column in the report).
Every model feature is standardized (mean 0, standard deviation 1) before the fit, so one alpha
penalizes all features alike; the report gives each coefficient in the units of its column and
per standard deviation. The model is ``LassoCV`` for a regression and ``L1LogisticRegressionCV``
for a classification; the report shows the model refit at ``alpha_min`` (the lowest mean CV error)
and how many features survive at ``alpha_1se`` (the largest alpha within one standard error of it).
The CV score is the held-out mean squared error, or log-loss (for more than two classes, fitted
one-vs-rest, the log-loss summed over the one-vs-rest problems).

``--alpha A`` skips the search: the same estimator is given the one alpha A, so its score is
cross-validated at A on the same folds and the model is its refit at A. alpha_min, alpha_1se and
the two plots, which describe a search over alphas, are then not produced; the JSON summary has
``"alpha_source": "given"`` and nulls for them.

Errors (a missing file, a bad target column, missing values without ``--impute``, too few rows, a
bad option) print one line on stderr and exit with status 2, before any file is written. Output
files are written under temporary names and renamed into place once all of them are complete.

Importing this package is cheap: pandas, scikit-learn, matplotlib, tqdm and the estimators are
imported by the command that needs them.

The rooms of this package, in the order a run goes through them:

    parser.py     the commands and their options (argparse); bad values refused as they are parsed
    commands.py   fit, demo and inspect, and main(), which runs the one asked for
    table.py      reading the CSV file; what a column holds
    target.py     the target column: the task (regression or classification) and its encoding
    design.py     the features: one-hot encoding, imputation, standardization
    fitting.py    the fit, through the estimators' own cross-validation only
    report.py     the summary dict, the printed table, coefficients.csv and the two plots
    files.py      the output folder and the set of files written into it
    errors.py     CommandError: one line on stderr, exit status 2
    wording.py    plurals, lists of names and numbers, spelled one way in errors and report
"""

from l1reg.cli.commands import main

__all__ = ["main"]
