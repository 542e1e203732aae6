"""The cross-validated result: every held-out fold's ``ImportanceResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._persistence import ResultIO, register_result
from ._result import ImportanceResult
from ._stats import (
    check_level,
    fdr_frame,
    fold_scale,
    interval_frame,
    nadeau_bengio_pvalues,
    pvalue_series,
    t_interval,
)
from ._tables import FOLDS_TEST, importance_frame

__all__ = ["CVImportanceResult"]


@register_result("cv_importance")
@dataclass(repr=False, eq=False)
class CVImportanceResult(ResultIO):
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

    @property
    def loss_differences(self) -> np.ndarray | None:
        """Every held-out row's loss differences, fold after fold, shape
        (n_features, total held-out rows); None unless every fold has them."""
        parts = [fold.loss_differences for fold in self.fold_results]
        if any(part is None for part in parts):
            return None
        return np.concatenate(parts, axis=1)

    def __getitem__(self, key: str):
        return self.summary[key]

    def keys(self):
        return self.summary.keys()

    def ranking(self) -> np.ndarray:
        """Feature names from most to least important (by mean over folds)."""
        return self.summary.ranking()

    @property
    def test_name(self) -> str | None:
        return FOLDS_TEST if self.n_folds > 1 else None

    def test_interval(self, level: float = 0.95):
        """``ci(level, corrected=True)``, the interval of the test across folds."""
        return self.ci(level, corrected=True) if self.n_folds > 1 else None

    def to_frame(self, sort: bool = True, *, level: float = 0.95, alpha=0.05):
        """The table of :meth:`ImportanceResult.to_frame` over folds: mean, spread,
        the corrected interval and, where defined, p-values and FDR."""
        return importance_frame(self, sort=sort, level=level, alpha=alpha)

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

        Raises ValueError with fewer than two folds, or folds of a method
        whose importance is not a loss difference.
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
