"""ImportanceEstimator and ImportanceSelector inside scikit-learn's selection tools."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_friedman_pipeline, make_regressor
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_friedman1
from sklearn.exceptions import NotFittedError
from sklearn.feature_selection import RFE, RFECV, SelectFromModel
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import ImportanceEstimator, ImportanceSelector

INFORMATIVE = np.arange(10) < 5


@pytest.fixture(scope="module")
def friedman_small():
    return make_friedman1(n_samples=400, n_features=10, noise=0.0, random_state=1)


def keras_friedman_model(epochs=40):
    return make_friedman_pipeline(epochs=epochs)


PERMUTATION = {"n_repeats": 3}


def test_select_from_model_keeps_the_informative_features(friedman_small):
    X, y = friedman_small
    ranked = ImportanceEstimator(
        keras_friedman_model(), method_params=PERMUTATION, random_state=0
    )
    select = SelectFromModel(ranked, threshold=-np.inf, max_features=5).fit(X, y)
    np.testing.assert_array_equal(select.get_support(), INFORMATIVE)
    assert select.estimator_.importances_.method == "permutation"


@pytest.mark.slow  # one importance run per eliminated feature
def test_rfe_keeps_the_informative_features(friedman_small):
    X, y = friedman_small
    ranked = ImportanceEstimator(
        keras_friedman_model(), method_params=PERMUTATION, random_state=0
    )
    rfe = RFE(ranked, n_features_to_select=5, step=5).fit(X, y)
    np.testing.assert_array_equal(rfe.support_, INFORMATIVE)


@pytest.mark.slow  # many network fits: several seconds
def test_rfecv_runs_around_a_keras_pipeline(friedman_small):
    X, y = friedman_small
    ranked = ImportanceEstimator(
        keras_friedman_model(epochs=25), method_params=PERMUTATION, random_state=0
    )
    rfecv = RFECV(ranked, step=5, min_features_to_select=5, cv=KFold(2)).fit(X, y)
    assert rfecv.n_features_ in (5, 10)
    assert np.all(rfecv.support_[INFORMATIVE])


def test_held_out_importance_uses_unseen_rows(friedman_small):
    X, y = friedman_small
    est = ImportanceEstimator(Ridge(), validation_fraction=0.25, random_state=0)
    est.fit(X, y)
    assert est.importances_.details["n_samples"] == 100
    assert set(est.importances_.ranking()[:5]) >= {"x3"}


def test_delegation_and_tags(binary_classifier, breast_cancer):
    X, y = breast_cancer
    clf = ImportanceEstimator(clone(binary_classifier[-1]).set_params(epochs=2))
    assert is_classifier(clf) and not is_regressor(clf)
    assert is_regressor(ImportanceEstimator(Ridge()))
    assert not hasattr(ImportanceEstimator(Ridge()), "predict_proba")
    with pytest.raises(NotFittedError):
        ImportanceEstimator(Ridge()).predict(X)
    fitted = ImportanceEstimator(
        make_pipeline(
            StandardScaler(), clone(binary_classifier[-1]).set_params(epochs=2)
        ),
        method_params={"n_repeats": 2},
        random_state=0,
    ).fit(X, y)
    inner = fitted.estimator_
    np.testing.assert_array_equal(fitted.predict(X), inner.predict(X))
    np.testing.assert_allclose(fitted.predict_proba(X), inner.predict_proba(X))
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert fitted.score(X, y) == inner.score(X, y)
    assert list(fitted.feature_names_in_) == list(X.columns)
    assert fitted.feature_importances_.shape == (X.shape[1],)
    assert np.all(fitted.feature_importances_ >= 0)


def test_weight_method_scores_are_magnitudes(diabetes):
    X, y = diabetes
    model = make_pipeline(StandardScaler(), make_regressor(epochs=2))
    est = ImportanceEstimator(model, method="olden").fit(X, y)
    np.testing.assert_allclose(
        est.feature_importances_, np.abs(est.importances_.importances_mean)
    )


def test_every_method_scores_the_raw_columns_or_refuses():
    X = pd.DataFrame({"a": [0.0, 1, 2, 3] * 5, "c": list("xyzx") * 5})
    y = np.arange(20.0)
    pre = ColumnTransformer(
        [("n", StandardScaler(), ["a"]), ("c", OneHotEncoder(), ["c"])]
    )
    model = make_pipeline(pre, make_regressor(epochs=1))
    probe = ImportanceEstimator(model, method="probe").fit(X, y)
    assert probe.feature_importances_.shape == (2,)  # 'c' is one column
    assert list(probe.importances_.feature_names) == ["a", "c"]
    with pytest.raises(ValueError, match=r"raw columns 'c' \(3 model columns\)"):
        ImportanceEstimator(model, method="olden").fit(X, y)
    # the encoded view is there when asked for, and cannot feed a selector
    with pytest.raises(ValueError, match="measured 4 model inputs but X has 2"):
        ImportanceEstimator(
            model, method="olden", method_params={"columns": "model"}
        ).fit(X, y)


@pytest.mark.slow  # many network fits: several seconds
def test_selector_in_a_pipeline_tuned_by_grid_search(friedman_small):
    X, y = friedman_small
    pipe = Pipeline(
        [
            (
                "select",
                ImportanceSelector(
                    keras_friedman_model(epochs=25),
                    method_params=PERMUTATION,
                    random_state=0,
                ),
            ),
            ("model", Ridge()),
        ]
    )
    search = GridSearchCV(pipe, {"select__max_features": [2, 5]}, cv=KFold(2)).fit(X, y)
    assert search.best_params_ == {"select__max_features": 5}
    assert search.best_estimator_[0].get_support().sum() == 5


def test_selector_feature_names_and_pandas_output(friedman_small):
    X, y = friedman_small
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    selector = ImportanceSelector(Ridge(), max_features=3, random_state=0)
    selector.set_output(transform="pandas")
    out = selector.fit(frame, y).transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(selector.get_feature_names_out())
    assert "f3" in out.columns  # the 10 * x3 term


def test_selector_prefit_measures_on_the_given_data(friedman_small):
    X, y = friedman_small
    ridge = Ridge().fit(X[:300], y[:300])
    selector = ImportanceSelector(ridge, prefit=True, max_features=4, random_state=0)
    selector.fit(X[300:], y[300:])
    assert selector.importances_.details["n_samples"] == 100
    assert selector.importance_estimator_.estimator_ is ridge
    with pytest.raises(NotFittedError):
        ImportanceSelector(Ridge(), prefit=True).fit(X, y)


def test_default_threshold_is_the_mean(friedman_small):
    X, y = friedman_small
    selector = ImportanceSelector(Ridge(), random_state=0).fit(X, y)
    scores = selector.feature_importances_
    np.testing.assert_array_equal(selector.get_support(), scores >= scores.mean())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"method": "nope"}, "Unknown importance method 'nope'"),
        ({"max_features": 0}, "max_features == 0, must be >= 1"),
        ({"max_features": 11}, "max_features == 11, must be <= 10"),
        ({"validation_fraction": 1.5}, "validation_fraction must be in \\(0, 1\\)"),
    ],
)
def test_bad_parameters(friedman_small, params, match):
    X, y = friedman_small
    with pytest.raises(ValueError, match=match):
        ImportanceSelector(Ridge(), **params).fit(X, y)


def test_several_metrics_are_refused(friedman_small):
    X, y = friedman_small
    est = ImportanceEstimator(
        Ridge(), method_params={"scoring": ["r2", "neg_mean_squared_error"]}
    )
    with pytest.raises(ValueError, match="single metric"):
        est.fit(X, y)


def test_classifier_selector_with_logistic_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 1] + 0.2 * rng.normal(size=200) > 0).astype(int)
    selector = ImportanceSelector(LogisticRegression(), max_features=1, random_state=0)
    np.testing.assert_array_equal(selector.fit(X, y).get_support(), [0, 1, 0, 0])


class FitForbidden(Ridge):
    """Fails the test if anything tries to train it."""

    def fit(self, X, y, **params):
        raise AssertionError("fit must not be reached")


def test_misspelt_method_params_fail_before_training(friedman_small):
    X, y = friedman_small
    untrainable = FitForbidden()
    with pytest.raises(
        ValueError, match=r"method_params \['n_repeat'\] are not accepted"
    ):
        ImportanceEstimator(untrainable, method_params={"n_repeat": 3}).fit(X, y)
    with pytest.raises(ValueError, match="not accepted by method 'olden'"):
        ImportanceSelector(
            untrainable, method="olden", method_params={"n_repeats": 3}
        ).fit(X, y)
