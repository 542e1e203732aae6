"""Cross-validated importance, the importance scorer, and runs on a dask cluster."""

import joblib
import numpy as np
import pytest
from conftest import make_friedman_pipeline
from sklearn.datasets import make_friedman1
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate

from skimportance import cross_validate_importance, importance_scorer


@pytest.fixture(scope="module")
def friedman_small():
    return make_friedman1(n_samples=300, n_features=8, noise=0.0, random_state=2)


def keras_model(epochs=30):
    return make_friedman_pipeline(epochs=epochs)


@pytest.fixture(scope="module")
def keras_cv_result(friedman_small):
    X, y = friedman_small
    return cross_validate_importance(
        keras_model(), X, y, cv=3, n_repeats=3, random_state=0, return_estimator=True
    )


def test_cross_validated_importance_ranks_informative_first(keras_cv_result):
    result = keras_cv_result
    assert result.importances.shape == (8, 3)
    assert set(result.ranking()[:5]) == {f"x{i}" for i in range(5)}
    assert len(result.fold_results) == 3 and len(result.estimators) == 3
    np.testing.assert_allclose(
        result.importances[:, 0], result.fold_results[0].importances_mean
    )
    np.testing.assert_allclose(
        result.test_scores, [r.baseline_score for r in result.fold_results]
    )
    assert np.all(result.n_train == 200) and np.all(result.n_test == 100)


def test_intervals_and_the_nadeau_bengio_correction(keras_cv_result):
    plain, corrected = (
        keras_cv_result.ci(0.95),
        keras_cv_result.ci(0.95, corrected=True),
    )
    mean = keras_cv_result.importances_mean
    assert np.all(plain["lower"] <= mean) and np.all(mean <= plain["upper"])
    plain_width = plain["upper"] - plain["lower"]
    corrected_width = corrected["upper"] - corrected["lower"]
    # factor 1/k + n_test/n_train = 1/3 + 1/2 instead of 1/3
    np.testing.assert_allclose(
        corrected_width, plain_width * np.sqrt((1 / 3 + 0.5) / (1 / 3))
    )
    # the informative features' intervals stay above zero
    assert np.all(plain["lower"].iloc[:5] > 0)


def test_classifiers_get_stratified_folds_and_any_method():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] > 0).astype(int)
    result = cross_validate_importance(LogisticRegression(), X, y, cv=3, random_state=0)
    assert "StratifiedKFold" in result.details["cv"]
    assert result.ranking()[0] == "x0"


def test_other_methods_and_scoring(friedman_small):
    X, y = friedman_small
    result = cross_validate_importance(
        keras_model(epochs=3), X, y, cv=KFold(2), method="saliency", scoring="r2"
    )
    assert result.method == "saliency" and result.importances.shape == (8, 2)
    assert np.all(result.importances >= 0)
    assert result.test_scores.shape == (2,)


def test_n_jobs_gives_the_same_numbers(friedman_small):
    X, y = friedman_small
    kwargs = dict(cv=3, random_state=0, n_repeats=3)
    sequential = cross_validate_importance(Ridge(), X, y, n_jobs=1, **kwargs)
    parallel = cross_validate_importance(Ridge(), X, y, n_jobs=2, **kwargs)
    np.testing.assert_array_equal(sequential.importances, parallel.importances)


def test_importance_scorer_in_grid_search(friedman_small):
    X, y = friedman_small
    search = GridSearchCV(
        keras_model(epochs=5),
        {"kerasregressor__epochs": [2, 5]},
        cv=KFold(2),
        scoring=importance_scorer(n_repeats=2, random_state=0),
        refit="score",
    ).fit(X, y)
    for i in range(8):
        values = search.cv_results_[f"mean_test_importance_x{i}"]
        assert values.shape == (2,) and np.all(np.isfinite(values))
    assert "mean_test_score" in search.cv_results_
    assert search.best_index_ == np.argmax(search.cv_results_["mean_test_score"])


def test_importance_scorer_in_cross_validate_matches_direct_call(friedman_small):
    X, y = friedman_small
    scorer = importance_scorer(n_repeats=2, random_state=0)
    cv = cross_validate(Ridge(), X, y, cv=KFold(2), scoring=scorer)
    assert "test_importance_x3" in cv
    ridge = Ridge().fit(X[150:], y[150:])
    direct = scorer(ridge, X[:150], y[:150])
    assert direct["importance_x3"] == pytest.approx(cv["test_importance_x3"][0])
    assert direct["score"] == pytest.approx(cv["test_score"][0])


def test_unknown_method_is_refused_early():
    with pytest.raises(ValueError, match="Unknown importance method 'shap'"):
        importance_scorer("shap")
    with pytest.raises(ValueError, match="Unknown importance method"):
        cross_validate_importance(Ridge(), np.ones((4, 2)), np.ones(4), method="shap")


def test_stratified_cv_object_is_accepted():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = (X[:, 1] > 0).astype(int)
    result = cross_validate_importance(
        LogisticRegression(), X, y, cv=StratifiedKFold(2), random_state=0
    )
    assert result.n_folds == 2


@pytest.mark.slow  # a dask cluster of two processes
def test_dask_cluster_equals_sequential_run(friedman_small):
    # Conditional importance fits its models on each fold's training rows:
    # those rows travel to the workers with the test rows.
    distributed = pytest.importorskip("dask.distributed")
    X, y = friedman_small
    kwargs = dict(
        cv=2, n_repeats=2, random_state=0, method=["permutation", "conditional"]
    )
    sequential = cross_validate_importance(keras_model(epochs=5), X, y, **kwargs)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_config(backend="dask"):
            on_cluster = cross_validate_importance(
                keras_model(epochs=5), X, y, n_jobs=2, **kwargs
            )
        workers_used = client.run(lambda: __import__("os").getpid())
    assert len(workers_used) == 2
    for method in ("permutation", "conditional"):
        np.testing.assert_allclose(
            on_cluster[method].importances, sequential[method].importances, atol=1e-6
        )
        np.testing.assert_allclose(
            on_cluster[method].test_scores, sequential[method].test_scores, atol=1e-6
        )
    assert sequential["conditional"].fold_results[0].details["n_fit"] == len(X) // 2


def test_several_methods_share_one_fit_per_fold(friedman_small):
    X, y = friedman_small
    both = cross_validate_importance(
        keras_model(epochs=3),
        X,
        y,
        cv=KFold(2),
        method=["permutation", "olden"],
        random_state=0,
        method_params={"permutation": {"n_repeats": 2}},
        return_estimator=True,
    )
    assert set(both) == {"permutation", "olden"}
    # the same fitted estimators served both methods
    assert both["permutation"].estimators[0] is both["olden"].estimators[0]
    np.testing.assert_array_equal(
        both["permutation"].test_scores, both["olden"].test_scores
    )
    with pytest.raises(ValueError, match="distinct method names"):
        cross_validate_importance(Ridge(), X, y, method=["olden", "olden"])
    with pytest.raises(ValueError, match="maps method names"):
        cross_validate_importance(
            Ridge(), X, y, method=["permutation"], method_params={"n_repeats": 2}
        )


class FitForbidden(Ridge):
    """Fails the test if anything tries to train it."""

    def fit(self, X, y, **params):
        raise AssertionError("fit must not be reached")


def test_misspelt_method_params_fail_before_any_fold_is_fitted(friedman_small):
    X, y = friedman_small
    with pytest.raises(ValueError, match=r"\['scorin'\] are not accepted"):
        cross_validate_importance(FitForbidden(), X, y, method_params={"scorin": "r2"})
    with pytest.raises(ValueError, match="not accepted by method 'saliency'"):
        importance_scorer("saliency", method_params={"n_repeats": 2})


def test_cv_result_holds_its_folds_and_plots(friedman_small):
    pytest.importorskip("matplotlib")
    from skimportance import CVImportanceResult, ImportanceDisplay, ImportanceResult

    X, y = friedman_small
    result = cross_validate_importance(Ridge(), X, y, cv=3, n_repeats=4, random_state=0)
    assert isinstance(result, CVImportanceResult)
    assert not isinstance(result, ImportanceResult)  # composed, not re-meant
    assert all(fold.importances.shape == (8, 4) for fold in result.fold_results)
    np.testing.assert_allclose(
        result.importances,
        np.column_stack([fold.importances_mean for fold in result.fold_results]),
    )
    display = ImportanceDisplay.from_result(result).plot(errorbars="ci")
    assert display.features_[0] == result.ranking()[0]


def test_fit_params_and_error_score_come_from_cross_validate(friedman_small):
    X, y = friedman_small
    weights = np.ones(len(y))
    weighted = cross_validate_importance(
        Ridge(), X, y, cv=KFold(2), random_state=0, params={"sample_weight": weights}
    )
    plain = cross_validate_importance(Ridge(), X, y, cv=KFold(2), random_state=0)
    np.testing.assert_allclose(weighted.importances, plain.importances)

    class FailsOnSmallFolds(Ridge):
        def fit(self, X, y, **params):
            if len(X) < 200:
                raise ValueError("too few rows")
            return super().fit(X, y, **params)

    folds = [
        (np.arange(100, 300), np.arange(100)),
        (np.arange(100), np.arange(100, 300)),
    ]
    with pytest.warns(FitFailedWarning, match="1 fits failed"):
        partial = cross_validate_importance(
            FailsOnSmallFolds(), X, y, cv=folds, random_state=0, error_score=np.nan
        )
    assert np.isfinite(partial.importances[:, 0]).all()
    assert np.isnan(partial.importances[:, 1]).all()
    assert partial.fold_results[1].details["fit_failed"]
    with pytest.raises(ValueError, match="too few rows"):
        cross_validate_importance(FailsOnSmallFolds(), X, y, cv=folds)


def test_run_parameters_a_method_does_not_take_fail_before_any_fit(friedman_small):
    X, y = friedman_small
    with pytest.raises(ValueError, match="n_repeats is not taken by method 'olden'"):
        cross_validate_importance(FitForbidden(), X, y, method="olden", n_repeats=3)
    with pytest.raises(ValueError, match="batch_size is not taken by method 'olden'"):
        importance_scorer("olden", batch_size=10)
    with pytest.raises(ValueError, match="n_repeats == 0"):
        cross_validate_importance(FitForbidden(), X, y, n_repeats=0)
