"""The full table of a result: mean, spread, the test's interval, p and FDR.

``ImportanceResult.to_frame`` and ``CVImportanceResult.to_frame`` build their
table here, so both say the same things in the same columns:

``importance_mean``, ``importance_std``
    The mean over the draws (repeats, rows, folds) and their spread (ddof=0,
    as scikit-learn's ``importances_std``).
``test``
    Which test the interval and p-value come from: :data:`ROWS_TEST` for a
    result with per-row loss differences on held-out rows,
    :data:`FOLDS_TEST` for a cross-validated one. Absent when the result
    offers no test (weights, gradients, probes).
``lower``, ``upper``
    That test's two-sided ``level`` interval, in the importance's units.
``pvalue``, ``qvalue``, ``selected``
    The one-sided p-value of "importance <= 0", its Benjamini-Hochberg
    q-value and whether the feature is selected at false discovery rate
    ``alpha``: what ``result.fdr(alpha)`` says. Absent when undefined.
"""

from __future__ import annotations

from ._stats import interval_frame, row_interval

__all__ = ["FOLDS_TEST", "ROWS_TEST", "importance_frame", "rows_interval"]

#: The test across held-out rows of per-row loss differences.
ROWS_TEST = "t across rows"
#: The corrected test across cross-validation folds.
FOLDS_TEST = "Nadeau-Bengio t across folds"


def rows_interval(result, level: float):
    """The row test's interval of an ImportanceResult, or None without one."""
    if result.loss_differences is None:
        return None
    bounds = row_interval(result.importances_mean, result.loss_differences, level)
    return interval_frame(result.importances_mean, bounds, result.feature_names)


def importance_frame(result, *, sort: bool, level: float, alpha: float):
    """The table described in this module's docstring, most important first."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        },
        index=pd.Index(result.feature_names, name="feature"),
    )
    interval = result.test_interval(level)
    if interval is not None:
        frame["test"] = result.test_name
        frame["lower"] = interval["lower"].to_numpy()
        frame["upper"] = interval["upper"].to_numpy()
        try:
            tested = result.fdr(alpha)
        except ValueError:  # an interval without p-values (e.g. weights over folds)
            tested = None
        if tested is not None:
            frame = frame.join(tested)
    frame.attrs.update(level=level, alpha=alpha)
    if sort:
        frame = frame.sort_values("importance_mean", ascending=False, kind="stable")
    return frame
