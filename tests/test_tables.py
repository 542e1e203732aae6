"""to_frame: the mean, the test's interval, p-values and FDR, in one table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from skimportance import cross_validate_importance, permutation_importance
from skimportance._tables import FOLDS_TEST, ROWS_TEST


@pytest.fixture(scope="module")
def data():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:240], y.iloc[:240]


def test_held_out_table_carries_the_row_test(data):
    X, y = data
    result = permutation_importance(
        Ridge(alpha=0.1).fit(X[:120], y[:120]), X[120:], y[120:], n_repeats=3,
        random_state=0,
    )  # fmt: skip
    frame = result.to_frame(sort=False)
    assert list(frame.columns) == [
        "importance_mean", "importance_std", "test", "lower", "upper",
        "pvalue", "qvalue", "selected",
    ]  # fmt: skip
    assert (frame["test"] == ROWS_TEST).all()
    pd.testing.assert_frame_equal(frame[["pvalue", "qvalue", "selected"]],
                                  result.fdr(0.05))  # fmt: skip
    # The interval is the row test's, carried to the importance's units: it
    # excludes 0 exactly when the two-sided t-test across rows rejects at 5%.
    two_sided = stats.ttest_1samp(result.loss_differences, 0.0, axis=1).pvalue
    excludes_zero = (frame["lower"] > 0) | (frame["upper"] < 0)
    np.testing.assert_array_equal(excludes_zero.to_numpy(), two_sided < 0.05)
    assert excludes_zero.any() and not excludes_zero.all()
    # R^2 is linear in the mean squared error: the carried interval is exact.
    mean_d = result.loss_differences.mean(axis=1)
    np.testing.assert_allclose(result.importances_mean / mean_d,
                               1 / np.var(y[120:]), rtol=1e-6)  # fmt: skip


def test_cv_table_carries_the_corrected_interval(data):
    X, y = data
    cv = cross_validate_importance(Ridge(), X, y, cv=3, n_repeats=2, random_state=0)
    frame = cv.to_frame(sort=False, level=0.9)
    corrected = cv.ci(0.9, corrected=True)
    assert (frame["test"] == FOLDS_TEST).all()
    np.testing.assert_array_equal(frame["lower"], corrected["lower"])
    np.testing.assert_array_equal(frame["upper"], corrected["upper"])
    np.testing.assert_array_equal(frame["pvalue"], cv.pvalues())
    html = cv._repr_html_()
    assert "<caption>" in html and FOLDS_TEST in html and "permutation" in html


def test_untested_result_has_no_interval_columns():
    from skimportance import ImportanceResult

    result = ImportanceResult([[1.0, 2.0], [0.5, 0.5]], ["a", "b"], method="olden")
    assert list(result.to_frame().columns) == ["importance_mean", "importance_std"]
    assert result.test_interval() is None
    assert "no test" in result._repr_html_()
