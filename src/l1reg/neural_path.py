"""``NeuralPath``: the result of a neural network's lambda path, for any framework.

Built by :func:`l1reg.torch.lambda_path` (and later by the Keras path): per strength ``lambda``
the inputs kept, the validation loss over folds, the group norms and the training time; the
strengths of least loss and of the sparsest model within one standard error of it (glmnet's
``lambda.1se``); the selection frequency of each input across folds; and the model trained at the
chosen strength. Importing this module imports NumPy only (pandas, matplotlib and scikit-learn
when a method needs them); the model is kept as the framework's own object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import Checked, NoneValue, declare_params, invalid_parameter

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["NeuralPath", "choose_lambdas", "standard_error"]


def choose_lambdas(lambdas: np.ndarray, errors: np.ndarray) -> tuple[int, int]:
    """(index of the least mean loss, index of the largest lambda within one standard error),
    ``errors`` of shape ``(n_lambdas, n_folds)``: the rule of ``LassoCV`` (glmnet's), reused."""
    from .linear_model._cv import one_standard_error_alpha  # (scikit-learn: only when needed)

    return one_standard_error_alpha(np.asarray(lambdas), np.asarray(errors))


def standard_error(errors: np.ndarray) -> np.ndarray:
    """The standard error of the mean of each row: ``std(ddof=1) / sqrt(columns)`` (0 for one
    column), as the 1-SE rule uses it."""
    errors = np.asarray(errors, dtype=float)
    columns = errors.shape[-1]
    if columns < 2:
        return np.zeros(errors.shape[:-1])
    return errors.std(axis=-1, ddof=1) / np.sqrt(columns)


_NAMES = "None or a sequence of one name (str) per input"


class NeuralPath:
    """The lambda path of a neural network, scored by validation (see ``lambda_path``).

    Built by ``l1reg.torch.lambda_path``; every array is indexed by the strengths ``lambdas_``,
    which decrease (the walk itself went from the weakest to the strongest).

    Attributes
    ----------
    lambdas_ : ndarray (n_lambdas,)
        The strengths scored: the part of the grid the path walked (from dense to sparse, it
        goes on above ``lambda_max_`` until no input is left).
    lambda_max_ : float
        The smallest strength at which every penalized group that is zero stays zero (from the
        gradient with the penalized weights at zero, the others at the dense solution).
    val_loss_path_ : ndarray (n_lambdas, n_folds)
        The validation loss of each fold at each strength (without folds: of each of 10 chunks
        of the validation data, whose spread gives the standard error).
    val_loss_mean_, val_loss_se_ : ndarray (n_lambdas,)
        Their mean, and its standard error (standard deviation / sqrt(columns)).
    support_path_ : ndarray of bool (n_lambdas, n_inputs)
        The inputs kept at each strength: by at least half of the folds (without folds: by the
        path).
    n_selected_ : ndarray of int (n_lambdas,)
    group_norm_path_ : ndarray (n_inputs, n_lambdas)
        The L2 norm of each input's weights in the first penalized layer along the path (the
        mean over folds).
    train_seconds_ : ndarray (n_lambdas,)
        Training time at each strength, its refits and every fold included.
    lambda_min_, lambda_1se_, lambda_ : float
        The strength of least mean loss, the largest within one standard error of it, and the
        one ``model_`` was trained at (``select``).
    selected_min_, selected_1se_, selected_features_ : list of int
        The inputs kept at each.
    fold_support_path_ : ndarray of bool (n_folds, n_lambdas, n_inputs)
        The inputs each fold's path keeps at each strength (without folds: ``support_path_``).
    selection_frequency_path_ : ndarray (n_lambdas, n_inputs)
        The share of folds that keep each input at each strength.
    selection_frequency_ : ndarray (n_inputs,)
        The same at ``lambda_``.
    feature_importances_ : ndarray (n_inputs,)
        The strength at which each input leaves the model for good (the smallest strength from
        which on the path no longer keeps it, as LassoNet reports); ``inf`` for an input still
        kept at the strongest strength the path reached.
    model_ : the framework's model
        Trained at ``lambda_`` (refitted on its support when relaxed) and pruned: the dropped
        inputs and dead units physically removed.
    """

    def __init__(
        self,
        *,
        lambdas: np.ndarray,
        lambda_max: float,
        val_loss: np.ndarray,
        support: np.ndarray,
        group_norms: np.ndarray,
        train_seconds: np.ndarray,
        fold_support: np.ndarray,
        exit_lambdas: np.ndarray,
        select: str,
        unit: str,
        model: Any = None,
    ) -> None:
        self.lambdas_ = np.asarray(lambdas, dtype=float)
        self.lambda_max_ = float(lambda_max)
        self.val_loss_path_ = np.asarray(val_loss, dtype=float)
        self.support_path_ = np.asarray(support, dtype=bool)
        self.group_norm_path_ = np.asarray(group_norms, dtype=float).T
        self.train_seconds_ = np.asarray(train_seconds, dtype=float)
        self.fold_support_path_ = np.asarray(fold_support, dtype=bool)
        self.feature_importances_ = np.asarray(exit_lambdas, dtype=float)
        self.select = select
        self.unit = unit
        self.model_ = model
        best, one_se = choose_lambdas(self.lambdas_, self.val_loss_path_)
        self.index_min_, self.index_1se_ = best, one_se
        self.index_ = one_se if select == "1se" else best

    @property
    def n_selected_(self) -> np.ndarray:
        return self.support_path_.sum(axis=1)

    @property
    def val_loss_mean_(self) -> np.ndarray:
        return self.val_loss_path_.mean(axis=1)

    @property
    def val_loss_se_(self) -> np.ndarray:
        return standard_error(self.val_loss_path_)

    @property
    def lambda_min_(self) -> float:
        return float(self.lambdas_[self.index_min_])

    @property
    def lambda_1se_(self) -> float:
        return float(self.lambdas_[self.index_1se_])

    @property
    def lambda_(self) -> float:
        return float(self.lambdas_[self.index_])

    def _kept(self, index: int) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.support_path_[index])]

    @property
    def selected_min_(self) -> list[int]:
        return self._kept(self.index_min_)

    @property
    def selected_1se_(self) -> list[int]:
        return self._kept(self.index_1se_)

    @property
    def selected_features_(self) -> list[int]:
        return self._kept(self.index_)

    @property
    def selected_(self) -> list[list[int]]:
        """The inputs kept at each strength."""
        return [self._kept(i) for i in range(self.lambdas_.shape[0])]

    @property
    def selection_frequency_path_(self) -> np.ndarray:
        return self.fold_support_path_.mean(axis=0)

    @property
    def selection_frequency_(self) -> np.ndarray:
        return self.selection_frequency_path_[self.index_].copy()

    def __repr__(self) -> str:
        return (
            f"NeuralPath({self.lambdas_.shape[0]} lambdas, lambda_{self.select}="
            f"{self.lambda_:.3g}, {len(self.selected_features_)} of "
            f"{self.support_path_.shape[1]} inputs kept)"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per strength: lambda, inputs kept, validation loss (mean, s.e.), seconds."""
        import pandas as pd

        return pd.DataFrame(
            {
                "lambda": self.lambdas_,
                "n_selected": self.n_selected_,
                "val_loss_mean": self.val_loss_mean_,
                "val_loss_se": self.val_loss_se_,
                "train_seconds": self.train_seconds_,
                "selected": self.selected_,
            }
        )

    @declare_params(
        "NeuralPath.plot",
        feature_names=[
            NoneValue(),
            Checked(_NAMES, lambda valid: ["abc", 3, ["x0"], [1, 2, 3]]),
        ],
    )
    def plot(self, *, feature_names: Sequence[str] | None = None) -> tuple[Figure, Figure]:
        """The two figures of ``l1reg fit``: the validation loss over lambda with one-standard-
        error bars (inputs kept on the top axis), and each input's group norm along the path.

        Returns matplotlib Figures on the Agg canvas (no pyplot); ``feature_names`` name the
        inputs (default ``x0, x1, ...``).
        """
        names = self._names(feature_names)
        from . import plotting

        chosen = {"alpha_min": self.lambda_min_, "alpha_1se": self.lambda_1se_}
        loss = plotting.plot_cv_error(
            self.lambdas_,
            self.val_loss_path_,
            n_selected=self.n_selected_,
            title="Validation loss along the lambda path (refitted supports)",
            ylabel="validation loss",
            parameter="lambda",
            unit=self.unit,
            **chosen,
        )
        norms = plotting.plot_coefficient_path(
            self.lambdas_,
            self.group_norm_path_,
            feature_names=names,
            title="Input group norms along the lambda path",
            ylabel="group norm of the input's weights",
            parameter="lambda",
            **chosen,
        )
        return loss, norms

    def _names(self, feature_names: Sequence[str] | None) -> list[str]:
        n_inputs = self.support_path_.shape[1]
        if feature_names is None:
            return [f"x{j}" for j in range(n_inputs)]
        if isinstance(feature_names, (str, bytes)) or not hasattr(feature_names, "__len__"):
            raise TypeError(
                invalid_parameter("feature_names", "NeuralPath.plot", _NAMES, feature_names)
            )
        names = list(feature_names)
        if len(names) != n_inputs or not all(isinstance(n, str) for n in names):
            raise ValueError(
                invalid_parameter(
                    "feature_names", "NeuralPath.plot", f"{_NAMES} ({n_inputs})", feature_names
                )
            )
        return names
