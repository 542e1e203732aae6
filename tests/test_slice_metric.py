"""One metric call for many slices: bit for bit what one call per slice gives.

The engines score a chunk's slices in one call of a column-wise regression
metric (``_engines/slice_metric.py``). These tests hold it to scikit-learn's
own numbers: the metric on each column alone, and
``sklearn.inspection.permutation_importance`` on the same fitted network,
with no tolerance where the code path is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import d2_absolute_error_score, get_scorer, make_scorer

from skimportance import permutation_importance
from skimportance._engines import slice_metric as slice_metric_module
from skimportance._engines.scoring import ScoringContext
from skimportance._engines.slice_metric import (
    COLUMNWISE_METRICS,
    SliceMetric,
    slice_metric,
)
from skimportance._model import locate_keras_model


def _params(metric):
    return getattr(metric, "__name__", repr(metric))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("metric", sorted(COLUMNWISE_METRICS, key=_params), ids=_params)
def test_one_call_equals_one_call_per_slice_bit_for_bit(metric, weighted):
    rng = np.random.default_rng(0)
    for n_rows, n_slices in [(7, 3), (1000, 20), (2053, 5)]:
        y = rng.normal(size=n_rows) * 50
        predictions = [
            (y + rng.normal(size=n_rows)).astype(np.float32) for _ in range(n_slices)
        ]
        weight = rng.uniform(0, 2, size=n_rows) if weighted else None
        batch = SliceMetric(metric, y, weight, {}).scores(predictions)
        alone = [float(metric(y, p, sample_weight=weight)) for p in predictions]
        assert batch == alone


def test_a_metric_that_is_not_column_wise_is_not_batched():
    # d2_absolute_error_score's multi-output quantile differs in the last bits.
    assert d2_absolute_error_score not in COLUMNWISE_METRICS


@pytest.fixture(scope="module")
def regressor():
    from conftest import make_regressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 5))
    y = 2 * X[:, 0] + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=240)
    return make_regressor(epochs=2).fit(X, y), X, y


def _metric_of(estimator, scoring, y):
    from sklearn.metrics import check_scoring

    context = ScoringContext.from_located(locate_keras_model(estimator))
    return slice_metric(check_scoring(estimator, scoring=scoring), context, y, None)


@pytest.mark.parametrize(
    "scoring, batched",
    [
        (None, True),  # KerasRegressor.score: R^2
        ("r2", True),
        ("neg_mean_absolute_error", True),
        ("neg_root_mean_squared_error", True),
        ("neg_max_error", False),  # no multioutput
        (make_scorer(d2_absolute_error_score), False),
        (make_scorer(lambda y, p: float(np.mean(y - p))), False),  # a user's metric
    ],
    ids=["score", "r2", "mae", "rmse", "max_error", "d2", "custom"],
)
def test_which_scorers_are_batched(regressor, scoring, batched):
    estimator, _, y = regressor
    assert (_metric_of(estimator, scoring, y) is not None) is batched


def test_a_classifier_is_scored_slice_by_slice(binary_classifier, breast_cancer):
    _, y = breast_cancer
    assert _metric_of(binary_classifier, None, y) is None


@pytest.mark.parametrize("algorithm", ["exact", "incremental"])
@pytest.mark.parametrize("scoring", [None, "neg_mean_squared_error"])
@pytest.mark.parametrize("with_zero_weights", [False, True], ids=["", "zero-weights"])
def test_permutation_importance_equals_scikit_learns_through_the_batched_path(
    regressor, monkeypatch, algorithm, scoring, with_zero_weights
):
    estimator, X, y = regressor
    weight = None
    if with_zero_weights:  # scikeras's score drops rows of zero weight
        weight = np.random.default_rng(1).integers(0, 3, size=len(y)).astype(float)
    calls = []
    original = SliceMetric.scores
    monkeypatch.setattr(
        slice_metric_module.SliceMetric,
        "scores",
        lambda self, p: calls.append(len(p)) or original(self, p),
    )
    kwargs = dict(n_repeats=3, random_state=0, scoring=scoring, sample_weight=weight)
    ours = permutation_importance(estimator, X, y, algorithm=algorithm, **kwargs)
    theirs = sklearn_permutation_importance(estimator, X, y, **kwargs)
    assert sum(calls) == X.shape[1] * 3  # every slice went through one metric call
    # float32 network output: batches of another size round differently
    np.testing.assert_allclose(ours.importances, theirs.importances, rtol=0, atol=1e-5)
    assert ours.details["algorithm"] == algorithm


def test_scorer_objects_keep_their_sign(regressor):
    estimator, X, y = regressor
    ours = permutation_importance(
        estimator, X, y, scoring=get_scorer("neg_mean_absolute_error"), random_state=0
    )
    # Permuting the signal raises the error: a positive importance, as in sklearn.
    assert ours.importances_mean[0] > 0
    assert np.argmax(ours.importances_mean) == 0
