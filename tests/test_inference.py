"""p-values, Benjamini-Hochberg and selection by them.

The tests are compared with SciPy's own t-tests and with the confidence
intervals the results already give; the selection tests use a design where
the truth is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skimportance import (
    CVImportanceResult,
    ImportanceResult,
    ImportanceSelector,
    conditional_importance,
    cross_validate_importance,
    permutation_importance,
)
from skimportance._inference import resolve_loss
from skimportance._stats import benjamini_hochberg, row_test_pvalues

# --- results --------------------------------------------------------------------------


def echo_data(seed=0, n=400):
    """y = x0 + x2; x1 echoes x0 (no effect of its own); x3 is noise."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    X = np.column_stack(
        [x0, x0 + 0.3 * rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)]
    )
    y = X[:, 0] + X[:, 2] + rng.normal(size=n)
    return X, y


def test_result_pvalues_and_fdr_are_pandas():
    X, y = echo_data()
    model = LinearRegression().fit(X[:200], y[:200])
    result = conditional_importance(
        model, X[200:], y[200:], X_fit=X[:200], random_state=0
    )
    pvalues = result.pvalues()
    assert isinstance(pvalues, pd.Series) and pvalues.name == "pvalue"
    assert pvalues.index.tolist() == ["x0", "x1", "x2", "x3"]
    np.testing.assert_array_equal(pvalues, row_test_pvalues(result.loss_differences))
    frame = result.fdr(0.05)
    assert frame.columns.tolist() == ["pvalue", "qvalue", "selected"]
    np.testing.assert_allclose(frame["qvalue"], benjamini_hochberg(pvalues.to_numpy()))
    # x0 adds little to its echo x1 on 200 rows; x2 stands out, x1 and x3 do not.
    assert frame["selected"][["x1", "x2", "x3"]].tolist() == [False, True, False]
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        result.fdr(1.5)


def test_results_without_loss_differences_have_no_pvalues():
    olden_like = ImportanceResult([[0.3], [0.1]], ["a", "b"], method="olden")
    with pytest.raises(ValueError, match="'olden' result carries no per-row loss"):
        olden_like.pvalues()
    X, y = echo_data()
    model = LinearRegression().fit(X, y)
    untested = permutation_importance(model, X, y, loss=None, random_state=0)
    assert untested.loss_differences is None
    with pytest.raises(ValueError, match="unless loss=None"):
        untested.fdr()
    with pytest.raises(ValueError, match=r"loss_differences must have shape"):
        ImportanceResult([[0.3], [0.1]], ["a", "b"], "x", loss_differences=np.ones(3))


def test_cv_pvalues_are_the_corrected_interval_turned_into_a_test():
    X, y = echo_data(n=300)
    result = cross_validate_importance(
        Ridge(), X, y, cv=KFold(5, shuffle=True, random_state=0), random_state=0
    )
    pvalues = result.pvalues()
    lower = result.ci(0.95, corrected=True)["lower"]
    # A two-sided 95% interval excludes 0 from above exactly when the
    # one-sided p-value is below 0.025.
    np.testing.assert_array_equal((pvalues < 0.025).to_numpy(), (lower > 0).to_numpy())
    assert pvalues.index.tolist() == ["x0", "x1", "x2", "x3"]
    assert result.fdr(0.05)["selected"][["x0", "x2"]].all()


def test_cv_pvalues_need_tested_folds_and_failed_folds_give_nan():
    folds = [ImportanceResult([[v]], ["a"], method="saliency") for v in (1, 2, 3)]
    untested = CVImportanceResult(folds, [0.5] * 3, [80] * 3, [20] * 3)
    with pytest.raises(ValueError, match="'saliency' folds carry no per-row loss"):
        untested.pvalues()
    tested = [
        ImportanceResult([[v]], ["a"], "permutation", loss_differences=[[v, v]])
        for v in (0.1, 0.2)
    ]
    failed = ImportanceResult(
        [[np.nan]], ["a"], "permutation", details={"fit_failed": True}
    )
    partial = CVImportanceResult([*tested, failed], [0.5] * 3, [80] * 3, [20] * 3)
    assert np.isnan(partial.pvalues().iloc[0])
    assert not partial.fdr(0.05)["selected"].iloc[0]


# --- pointwise losses -----------------------------------------------------------------


class _Median(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        self.value_ = float(np.median(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.value_)


def test_losses_resolve_by_task_and_accept_callables(binary_classifier, breast_cancer):
    X, y = echo_data()
    model = LinearRegression().fit(X, y)
    assert resolve_loss("auto", model, y).name == "squared_error"
    X_c, y_c = breast_cancer
    assert resolve_loss("auto", binary_classifier, y_c).name == "log_loss"
    # "auto" never fails where scikit-learn would not: no y, no loss; labels
    # the classifier never saw, zero-one; several outputs, none.
    assert resolve_loss("auto", model, None) is None
    assert resolve_loss("auto", binary_classifier, y_c + 5).name == "zero_one"
    assert resolve_loss("auto", binary_classifier, np.c_[y_c, y_c]) is None

    def absolute(y_true, y_pred):
        return np.abs(y_true - y_pred)

    named = permutation_importance(model, X, y, loss="absolute_error", random_state=0)
    given = permutation_importance(model, X, y, loss=absolute, random_state=0)
    np.testing.assert_array_equal(named.loss_differences, given.loss_differences)
    assert given.details["loss"] == "absolute"

    with pytest.raises(ValueError, match="must return one value per row"):
        permutation_importance(model, X, y, loss=lambda t, p: np.mean(t - p))

    classified = permutation_importance(
        binary_classifier,
        X_c,
        y_c,
        scoring="neg_log_loss",
        n_repeats=2,
        random_state=0,
        feature_groups=[[0, 1, 2], [3]],
    )
    # scikit-learn's log loss is the mean of the pointwise one.
    np.testing.assert_allclose(
        classified.loss_differences.mean(axis=1),
        classified.importances_mean,
        rtol=1e-4,
        atol=1e-6,
    )
    zero_one = permutation_importance(
        binary_classifier,
        X_c,
        y_c,
        loss="zero_one",
        n_repeats=2,
        random_state=0,
        feature_groups=[[0, 1, 2], [3]],
    )
    np.testing.assert_allclose(  # accuracy is 1 - mean zero-one loss
        zero_one.loss_differences.mean(axis=1), zero_one.importances_mean, atol=1e-9
    )


# --- selection by p-values ------------------------------------------------------------


def test_selector_by_fdr_keeps_the_signals_and_drops_the_echo():
    X, y = echo_data(seed=3, n=600)
    selector = ImportanceSelector(
        LinearRegression(),
        method="conditional",
        threshold="fdr:0.05",
        validation_fraction=0.5,
        random_state=0,
    ).fit(X, y)
    assert selector.get_support().tolist() == [True, False, True, False]
    strict = ImportanceSelector(
        LinearRegression(),
        method="conditional",
        threshold="pvalue:0.01",
        max_features=1,
        validation_fraction=0.5,
        random_state=0,
    ).fit(X, y)
    assert strict.get_support().tolist() == [False, False, True, False]  # the larger


def test_p_value_thresholds_tune_in_grid_search():
    X, y = echo_data(seed=4, n=600)
    pipe = Pipeline(
        [
            (
                "select",
                ImportanceSelector(
                    LinearRegression(),
                    method="conditional",
                    validation_fraction=0.5,
                    random_state=0,
                ),
            ),
            ("model", Ridge()),
        ]
    )
    grid = {"select__threshold": ["fdr:0.05", "pvalue:0.5", "fdr:0.9"]}
    search = GridSearchCV(pipe, grid, cv=KFold(3)).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 3
    kept = search.best_estimator_["select"].get_support()
    assert kept[[0, 2]].all()


class _NeverFit(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        raise AssertionError("trained before the threshold was checked")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(threshold="fdr:2"), r"give the level after the colon.*\(0, 1\)"),
        (dict(threshold="pvalue:x"), "give the level after the colon"),
        (dict(threshold="fdr:0.05", method="olden"), "which method 'olden' does not"),
    ],
)
def test_bad_p_value_thresholds_fail_before_training(params, match):
    X, y = echo_data()
    with pytest.raises(ValueError, match=match):
        ImportanceSelector(_NeverFit(), **params).fit(X, y)
