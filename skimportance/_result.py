"""The one result type every importance method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._names import check_unique_names
from ._stats import (
    check_level,
    fdr_frame,
    fold_scale,
    interval_frame,
    nadeau_bengio_pvalues,
    pvalue_series,
    row_test_pvalues,
    standard_error,
    t_interval,
)

__all__ = ["CVImportanceResult", "ImportanceResult"]


@dataclass(repr=False, eq=False)
class ImportanceResult:
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
            measures no loss difference, or ``loss=None``).
        """

        if self.loss_differences is None:
            raise ValueError(
                f"This {self.method!r} result carries no per-row loss differences, "
                "so it has no p-values: only methods that measure a loss "
                "difference record them (unless loss=None)."
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

    def to_frame(self, sort: bool = True):
        """A pandas DataFrame indexed by feature, most important first.

        Columns: ``importance_mean``, ``importance_std``.
        """
        import pandas as pd

        frame = pd.DataFrame(
            {
                "importance_mean": self.importances_mean,
                "importance_std": self.importances_std,
            },
            index=pd.Index(self.feature_names, name="feature"),
        )
        if sort:
            frame = frame.sort_values("importance_mean", ascending=False, kind="stable")
        return frame

    def plot(self, **kwargs):
        """Plot with :class:`skimportance.ImportanceDisplay` (needs matplotlib).

        Short for ``ImportanceDisplay.from_result(result).plot(**kwargs)``. The
        Display is looked up on the public package, which loads it on first
        use: results sit below the Display (which imports the method registry,
        which imports the methods, which import results), so this module never
        imports ``plotting`` itself.
        """
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


@dataclass(repr=False, eq=False)
class CVImportanceResult:
    """Importances measured on the held-out fold of each cross-validation split.

    It holds every fold's full :class:`ImportanceResult` (``fold_results``,
    with that fold's permutation repeats, samples, ...), the fold test scores
    and the fold sizes. Its summary reads like an ``ImportanceResult`` whose
    draws are the folds: ``importances`` has one column per fold (that fold's
    mean importance), so ``importances_mean`` is the average over folds and
    ``importances_std`` the spread between them; ``ci(corrected=True)``
    widens the interval for the overlap of the training sets.

    Parameters
    ----------
    fold_results : list of ImportanceResult
        One per fold, all of the same method and features.
    test_scores : array-like of shape (n_folds,)
        The fitted model's score on each held-out fold.
    n_train, n_test : array-like of shape (n_folds,)
        Rows in each training and held-out fold.
    estimators : list or None, default=None
        The fitted estimator of each fold, when asked for.
    details : dict, default={}
        Extras, e.g. ``"cv"``: the splitter used.

    Examples
    --------
    >>> import numpy as np
    >>> from skimportance import CVImportanceResult, ImportanceResult
    >>> folds = [ImportanceResult([[v]], ["age"], method="permutation")
    ...          for v in (0.2, 0.4, 0.3)]
    >>> cv = CVImportanceResult(folds, test_scores=[0.5, 0.6, 0.55],
    ...                         n_train=[80, 80, 80], n_test=[40, 40, 40])
    >>> cv.importances.shape
    (1, 3)
    >>> bool(cv.ci(corrected=True)["lower"].iloc[0] < cv.ci()["lower"].iloc[0])
    True
    """

    fold_results: list[ImportanceResult]
    test_scores: np.ndarray
    n_train: np.ndarray
    n_test: np.ndarray
    estimators: list | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.fold_results = list(self.fold_results)
        if not self.fold_results:
            raise ValueError("A cross-validated result needs at least one fold.")
        first = self.fold_results[0]
        for k, fold in enumerate(self.fold_results):
            if fold.method != first.method or list(fold.feature_names) != list(
                first.feature_names
            ):
                raise ValueError(
                    f"Fold {k} measured {fold.method!r} on different features "
                    f"than fold 0 ({first.method!r}); folds must agree."
                )
        self.test_scores = np.asarray(self.test_scores, dtype=float)
        self.n_train = np.asarray(self.n_train, dtype=float)
        self.n_test = np.asarray(self.n_test, dtype=float)
        for name in ("test_scores", "n_train", "n_test"):
            if len(getattr(self, name)) != self.n_folds:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} values for "
                    f"{self.n_folds} folds."
                )
        self.summary = ImportanceResult(
            np.column_stack([fold.importances_mean for fold in self.fold_results]),
            first.feature_names,
            method=first.method,
            baseline_score=float(np.mean(self.test_scores)),
            details=self.details,
        )

    # -- the summary: folds are the draws ------------------------------------------
    @property
    def n_folds(self) -> int:
        return len(self.fold_results)

    @property
    def method(self) -> str:
        return self.summary.method

    @property
    def feature_names(self) -> np.ndarray:
        return self.summary.feature_names

    @property
    def n_features(self) -> int:
        return self.summary.n_features

    @property
    def importances(self) -> np.ndarray:
        """Each fold's mean importance, shape (n_features, n_folds)."""
        return self.summary.importances

    @property
    def importances_mean(self) -> np.ndarray:
        """Mean over folds, shape (n_features,)."""
        return self.summary.importances_mean

    @property
    def importances_std(self) -> np.ndarray:
        """Spread between folds (ddof=0, like scikit-learn)."""
        return self.summary.importances_std

    @property
    def baseline_score(self) -> float:
        """The mean held-out score."""
        return self.summary.baseline_score

    def __getitem__(self, key: str):
        return self.summary[key]

    def keys(self):
        return self.summary.keys()

    def ranking(self) -> np.ndarray:
        """Feature names from most to least important (by mean over folds)."""
        return self.summary.ranking()

    def to_frame(self, sort: bool = True):
        """A DataFrame of the mean and spread over folds, most important first."""
        return self.summary.to_frame(sort=sort)

    def ci(self, level: float = 0.95, *, corrected: bool = False):
        """Confidence interval of the mean importance across folds.

        ``mean +/- t_{(1+level)/2, k-1} * sqrt(factor * var)`` over the k fold
        values, with ``var`` the sample variance (ddof=1). Plain:
        ``factor = 1/k``, which treats folds as independent and is too narrow
        because the training sets overlap. ``corrected=True`` uses the
        Nadeau & Bengio (2003) correction, ``factor = 1/k + n_test/n_train``,
        the usual remedy for overlapping training sets (Bouckaert & Frank 2004).

        Returns
        -------
        pandas.DataFrame
            Indexed by feature: ``importance_mean``, ``lower``, ``upper``.
        """
        level = check_level(level)
        k = self.n_folds
        mean = self.importances_mean
        if k < 2:
            bounds = (mean, mean)
        else:
            sizes = (self.n_train, self.n_test) if corrected else (None, None)
            scale = fold_scale(self.importances, *sizes)
            bounds = t_interval(mean, scale, k - 1, level)
        return interval_frame(mean, bounds, self.feature_names)

    def pvalues(self):
        """p-values of "importance <= 0" across folds (Nadeau-Bengio corrected).

        A one-sided t-test over the k fold importances with the variance
        factor ``1/k + n_test/n_train`` of :meth:`ci` with
        ``corrected=True``: the importance is significant at level alpha
        exactly when the one-sided ``1 - alpha`` corrected interval excludes
        0. A fold whose fit failed makes the p-values NaN.

        Returns
        -------
        pandas.Series
            Indexed by feature, in the features' original order.

        Raises
        ------
        ValueError
            Fewer than two folds, or folds of a method whose importance is
            not a loss difference.
        """

        untestable = [
            k
            for k, fold in enumerate(self.fold_results)
            if fold.loss_differences is None and not fold.details.get("fit_failed")
        ]
        if untestable:
            raise ValueError(
                f"The {self.method!r} folds carry no per-row loss differences, so "
                "their importance cannot be tested against 0; cross-validate a "
                "method that measures a loss difference for p-values."
            )
        return pvalue_series(
            nadeau_bengio_pvalues(self.importances, self.n_train, self.n_test),
            self.feature_names,
        )

    def fdr(self, alpha: float = 0.05):
        """Features selected at false discovery rate ``alpha`` (Benjamini-Hochberg
        over :meth:`pvalues`); see :meth:`ImportanceResult.fdr`."""
        return fdr_frame(self.pvalues(), alpha)

    def plot(self, **kwargs):
        """Plot with :class:`skimportance.ImportanceDisplay` (needs matplotlib);
        see :meth:`ImportanceResult.plot`."""
        import skimportance

        return skimportance.ImportanceDisplay.from_result(self).plot(**kwargs)

    def __repr__(self) -> str:
        return repr(self.summary).replace(
            "ImportanceResult(", f"CVImportanceResult(n_folds={self.n_folds}, ", 1
        )
