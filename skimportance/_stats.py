"""The statistics of the results: Student-t intervals and tests, Benjamini-Hochberg.

Every interval, p-value and q-value a result reports is computed here, on
``scipy.stats``:

* across the draws of one result, a Student-t interval of the mean
  (``ImportanceResult.ci``);
* across test rows, a one-sided t-test of the per-row loss differences
  (``ImportanceResult.pvalues``; the losses themselves come from
  ``_inference``);
* across folds, the Nadeau & Bengio (2003) corrected t statistic, whose
  variance factor ``1/k + n_test/n_train`` allows for the overlap of the
  training sets (``CVImportanceResult.ci(corrected=True)`` and ``pvalues``);
* Benjamini-Hochberg q-values, by :func:`scipy.stats.false_discovery_control`.

Tests run across rows or folds, never across permutation repeats: a t-test
across repeats measures only the permutation noise.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "benjamini_hochberg",
    "check_alpha",
    "check_level",
    "fdr_frame",
    "fold_scale",
    "interval_frame",
    "nadeau_bengio_pvalues",
    "pvalue_series",
    "row_test_pvalues",
    "standard_error",
    "t_interval",
]


# --- checks -------------------------------------------------------------------------


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), else a ValueError naming it."""
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0 < alpha < 1
    ):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}.")
    return float(alpha)


def check_level(level) -> float:
    """A confidence ``level`` in (0, 1), else a ValueError naming it."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    return level


# --- the scale of a mean --------------------------------------------------------------


def standard_error(values: np.ndarray) -> np.ndarray:
    """``std(ddof=1) / sqrt(n)`` of each row of ``values`` (n values per row)."""
    values = np.asarray(values, dtype=float)
    return values.std(axis=1, ddof=1) / np.sqrt(values.shape[1])


def fold_scale(fold_values, n_train=None, n_test=None) -> np.ndarray:
    """``sqrt(factor * var(ddof=1))`` of each row of the k fold values.

    ``factor = 1/k`` without ``n_train``/``n_test`` (folds taken as
    independent, too narrow as the training sets overlap); with them the
    Nadeau & Bengio (2003) correction ``1/k + mean(n_test / n_train)``.
    """
    fold_values = np.asarray(fold_values, dtype=float)
    k = fold_values.shape[1]
    factor = 1.0 / k
    if n_train is not None:
        factor += float(np.mean(np.asarray(n_test) / np.asarray(n_train)))
    return np.sqrt(factor * fold_values.var(axis=1, ddof=1))


# --- intervals and tests ------------------------------------------------------------


def t_interval(mean, scale, df: int, level: float):
    """(lower, upper): ``mean -/+ t_{(1+level)/2, df} * scale``."""
    from scipy import stats

    half = stats.t.ppf((1 + level) / 2, df=df) * scale
    return mean - half, mean + half


def interval_frame(mean, bounds, feature_names):
    """``importance_mean``, ``lower``, ``upper``, indexed by feature."""
    import pandas as pd

    lower, upper = bounds
    return pd.DataFrame(
        {"importance_mean": mean, "lower": lower, "upper": upper},
        index=pd.Index(feature_names, name="feature"),
    )


def _one_sided(mean, scale, df: int, constant) -> np.ndarray:
    """p-values of "mean <= 0" from ``t = mean / scale``; where ``constant``
    (no spread to test) p = 1 for a mean <= 0, else 0."""
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        pvalues = stats.t.sf(mean / scale, df=df)
    return np.where(constant, np.where(mean > 0, 0.0, 1.0), pvalues)


def row_test_pvalues(differences: np.ndarray) -> np.ndarray:
    """One-sided t-test across rows of "mean loss difference <= 0", per feature.

    ``differences`` has shape (n_features, n_rows); the statistic is
    :func:`scipy.stats.ttest_1samp`'s with ``alternative="greater"``. A
    feature whose every row has the same difference has no spread to test:
    p = 1 when that difference is <= 0 (e.g. a column the model ignores),
    else 0. With one row a positive mean cannot be tested (NaN).
    """
    differences = np.asarray(differences, dtype=float)
    n_rows = differences.shape[1]
    mean = differences.mean(axis=1)
    if n_rows < 2:
        return np.where(mean > 0, np.nan, 1.0)
    sd = differences.std(axis=1, ddof=1)
    constant = sd <= 1e-12 * np.maximum(1.0, np.abs(mean))
    return _one_sided(mean, sd / np.sqrt(n_rows), n_rows - 1, constant)


def nadeau_bengio_pvalues(
    fold_values: np.ndarray, n_train: np.ndarray, n_test: np.ndarray
) -> np.ndarray:
    """One-sided corrected t-test over folds of "mean importance <= 0".

    ``t = mean / sqrt((1/k + n_test/n_train) * var)`` with k - 1 degrees of
    freedom over the k fold values (Nadeau & Bengio 2003), per feature.
    NaN folds (failed fits) give NaN.
    """
    fold_values = np.asarray(fold_values, dtype=float)
    k = fold_values.shape[1]
    if k < 2:
        raise ValueError(
            "A test across folds needs at least 2 folds; this result has one."
        )
    mean = fold_values.mean(axis=1)
    scale = fold_scale(fold_values, n_train, n_test)
    constant = np.isfinite(mean) & (scale <= 1e-12 * np.maximum(1.0, np.abs(mean)))
    return _one_sided(mean, scale, k - 1, constant)


# --- multiple testing -----------------------------------------------------------------


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN.

    A feature is selected at false discovery rate ``alpha`` when its q-value
    is at most ``alpha``. Computed by :func:`scipy.stats.false_discovery_control`
    over the finite p-values.
    """
    from scipy.stats import false_discovery_control

    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(pvalues, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = false_discovery_control(pvalues[finite], method="bh")
    return adjusted


def pvalue_series(pvalues, feature_names):
    """The p-values as a Series named ``pvalue``, indexed by feature."""
    import pandas as pd

    return pd.Series(
        pvalues, index=pd.Index(feature_names, name="feature"), name="pvalue"
    )


def fdr_frame(pvalues, alpha):
    """pvalue, Benjamini-Hochberg qvalue and selected, indexed like the Series
    ``pvalues``."""
    import pandas as pd

    alpha = check_alpha(alpha)
    qvalues = benjamini_hochberg(pvalues.to_numpy())
    return pd.DataFrame(
        {"pvalue": pvalues.to_numpy(), "qvalue": qvalues, "selected": qvalues <= alpha},
        index=pvalues.index,
    )
