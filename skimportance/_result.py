"""The one result type every importance method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._names import check_unique_names
from ._persistence import ResultIO, register_result
from ._stats import (
    check_level,
    fdr_frame,
    interval_frame,
    pvalue_series,
    row_test_pvalues,
    standard_error,
    t_interval,
)
from ._tables import ROWS_TEST, importance_frame, rows_interval

__all__ = ["ImportanceResult"]

#: ``details[MEASURED_ON] == TRAINING_ROWS`` marks a result measured on the
#: rows the estimator was fitted on (``ImportanceEstimator`` without a held-out
#: part): its p-values would call the noise the model fitted significant.
MEASURED_ON = "measured_on"
TRAINING_ROWS = "training rows"


@register_result("importance")
@dataclass(repr=False, eq=False)
class ImportanceResult(ResultIO):
    """Per-feature importances, shaped like scikit-learn's permutation Bunch.

    Code written for ``sklearn.inspection.permutation_importance`` keeps working:
    ``result.importances_mean``, ``result.importances_std``,
    ``result.importances`` and ``result["importances_mean"]`` all exist.

    Parameters
    ----------
    importances : ndarray of shape (n_features, n_draws)
        One column per draw the mean is taken over: permutation repeats,
        samples for gradient methods, a single column for deterministic
        methods such as weight importance.
    feature_names : array-like of str, length n_features
        Names of the features (or feature groups), in the rows' order; all
        different (a ValueError names the two rows that share a name).
    method : str
        Which method produced the numbers, e.g. ``"permutation"``, ``"olden"``.
    baseline_score : float, default=None
        The model's score before any perturbation, where the method has one.
    details : dict, default={}
        Method-specific extras (per-sample attributions, profile curves, ...).
    loss_differences : ndarray of shape (n_features, n_rows), default=None
        Per-row loss differences, averaged over the draws: how much worse
        each test row is predicted when the feature is perturbed. Permutation
        and conditional importance record them; :meth:`pvalues` tests them.

    Examples
    --------
    >>> import numpy as np
    >>> from skimportance import ImportanceResult
    >>> result = ImportanceResult(np.array([[0.1, 0.3], [0.5, 0.7]]),
    ...                           ["age", "bmi"], method="permutation")
    >>> result.importances_mean
    array([0.2, 0.6])
    >>> result.to_frame().index.tolist()
    ['bmi', 'age']
    """

    importances: np.ndarray
    feature_names: np.ndarray
    method: str
    baseline_score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    loss_differences: np.ndarray | None = None

    def __post_init__(self):
        importances = np.asarray(self.importances, dtype=float)
        if importances.ndim == 1:
            importances = importances[:, np.newaxis]
        if importances.ndim != 2:
            raise ValueError(
                "importances must have shape (n_features, n_draws), got "
                f"{importances.shape}."
            )
        names = np.asarray([str(name) for name in self.feature_names], dtype=object)
        if len(names) != importances.shape[0]:
            raise ValueError(
                f"{len(names)} feature names for {importances.shape[0]} features."
            )
        check_unique_names(
            names, [f"row {i}" for i in range(len(names))], what="feature name"
        )
        self.importances = importances
        self.feature_names = names
        if self.loss_differences is not None:
            differences = np.asarray(self.loss_differences, dtype=float)
            if differences.ndim != 2 or differences.shape[0] != len(names):
                raise ValueError(
                    "loss_differences must have shape (n_features, n_rows) with "
                    f"n_features={len(names)}, got {differences.shape}."
                )
            self.loss_differences = differences

    # -- scikit-learn Bunch compatibility ---------------------------------------
    @property
    def importances_mean(self) -> np.ndarray:
        """Mean over draws, shape (n_features,)."""
        return self.importances.mean(axis=1)

    @property
    def importances_std(self) -> np.ndarray:
        """Standard deviation over draws (ddof=0, like scikit-learn)."""
        return self.importances.std(axis=1)

    def __getitem__(self, key: str):
        if key in ("importances", "importances_mean", "importances_std"):
            return getattr(self, key)
        raise KeyError(key)

    def keys(self):
        return ["importances_mean", "importances_std", "importances"]

    # -- views --------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.importances.shape[0]

    def ranking(self) -> np.ndarray:
        """Feature names from most to least important (by mean)."""
        order = np.argsort(-self.importances_mean, kind="stable")
        return self.feature_names[order]

    def ci(self, level: float = 0.95):
        """Confidence interval of each feature's mean importance.

        A Student-t interval over the draws:
        ``mean +/- t_{(1+level)/2, n-1} * std(ddof=1) / sqrt(n)``. It describes the
        uncertainty of the estimate for *this* fitted model and data (the
        variation of the permutations); for the variation between refits use
        ``cross_validate_importance``. With a single draw the interval is the
        point itself.

        Returns
        -------
        pandas.DataFrame
            Indexed by feature, with columns ``importance_mean``, ``lower``,
            ``upper``, in the features' original order.
        """
        level = check_level(level)
        mean = self.importances_mean
        n_draws = self.importances.shape[1]
        if n_draws > 1:
            scale = standard_error(self.importances)
            bounds = t_interval(mean, scale, n_draws - 1, level)
        else:
            bounds = (mean, mean)
        return interval_frame(mean, bounds, self.feature_names)

    def pvalues(self):
        """p-values of "importance <= 0", by a one-sided t-test across test rows.

        Each feature's importance is decomposed into per-row loss differences
        (``loss_differences``, averaged over the repeats), and their mean is
        tested against 0 with Student's t across the rows (Chamma et al.
        2023). The test is about *this fitted model* on *these rows*: use
        held-out rows. It does not use ``sample_weight``.

        Returns
        -------
        pandas.Series
            Indexed by feature, in the features' original order.

        Raises
        ------
        ValueError
            The result carries no per-row loss differences (a method that
            measures no loss difference, or ``loss=None``), or was measured
            on the estimator's training rows (``ImportanceEstimator`` without
            ``validation_fraction``).
        """
        if self.loss_differences is None:
            raise ValueError(
                f"This {self.method!r} result carries no per-row loss differences, "
                "so it has no p-values: only methods that measure a loss "
                "difference record them (unless loss=None)."
            )
        if self.details.get(MEASURED_ON) == TRAINING_ROWS:
            raise ValueError(
                "These importances were measured on the rows the estimator was "
                "fitted on, where a network's fit to noise looks significant; "
                "p-values need held-out rows. Set validation_fraction (e.g. "
                "ImportanceEstimator(..., validation_fraction=0.25)), or call "
                "the method on held-out data."
            )
        return pvalue_series(
            row_test_pvalues(self.loss_differences), self.feature_names
        )

    def fdr(self, alpha: float = 0.05):
        """Features selected at false discovery rate ``alpha`` (Benjamini-Hochberg).

        Returns
        -------
        pandas.DataFrame
            Indexed by feature: ``pvalue`` (from :meth:`pvalues`), ``qvalue``
            (the Benjamini-Hochberg adjusted p-value) and ``selected``
            (``qvalue <= alpha``).
        """
        return fdr_frame(self.pvalues(), alpha)

    @property
    def test_name(self) -> str | None:
        """The test this result offers: across rows, with loss differences."""
        return None if self.loss_differences is None else ROWS_TEST

    def test_interval(self, level: float = 0.95):
        """The row test's ``level`` interval (``importance_mean``, ``lower``,
        ``upper``; see ``_stats.row_interval``), or None without a test."""
        return rows_interval(self, check_level(level))

    def to_frame(self, sort: bool = True, *, level: float = 0.95, alpha=0.05):
        """A pandas DataFrame indexed by feature, most important first: the mean,
        std, the test's interval, p-value, q-value and FDR decision (columns
        described in ``docs/guide.md``; ``pd.DataFrame(result)`` is not
        supported, this is the table)."""
        return importance_frame(self, sort=sort, level=level, alpha=alpha)

    def plot(self, **kwargs):
        """``ImportanceDisplay.from_result(result).plot(**kwargs)`` (matplotlib).

        The Display is found on the public package: results sit below it
        (docs/design.md), so this module never imports ``plotting``."""
        import skimportance

        return skimportance.ImportanceDisplay.from_result(self).plot(**kwargs)

    def __repr__(self) -> str:
        order = np.argsort(-self.importances_mean, kind="stable")[:5]
        top = ", ".join(
            f"{self.feature_names[i]}={self.importances_mean[i]:.4g}" for i in order
        )
        more = ", ..." if self.n_features > 5 else ""
        return (
            f"ImportanceResult(method={self.method!r}, n_features={self.n_features}, "
            f"n_draws={self.importances.shape[1]}, top: {top}{more})"
        )
