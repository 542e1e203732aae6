"""Permuted rows built in the network's dtype: the same numbers, or not at all.

The exact engine copies X once per slice. Where the network takes float32,
it copies a float32 version of X (``keras_engine.narrowed_rows``), which
halves the copying and removes a cast per chunk, but only where the network
then sees bit for bit the same rows and nothing else reads X.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import check_scoring, r2_score
from sklearn.preprocessing import FunctionTransformer

from skimportance import KerasRegressor, build_mlp, permutation_importance
from skimportance._engines import keras_engine
from skimportance._engines.plan import ShuffledColumns, draw_permutation_plan
from skimportance._model import locate_keras_model


def _data(n_rows=200, n_features=4):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, n_features)) * [1, 10, 0.1, 1000]
    y = X[:, 0] + 0.1 * X[:, 1] + rng.normal(size=n_rows) * 0.1
    return X, y


class ThirdsRegressor(KerasRegressor):
    """Its feature encoder divides by 3 in float64: float32 inputs round differently."""

    @property
    def feature_encoder(self):
        return FunctionTransformer(lambda X: np.asarray(X, dtype=np.float64) / 3)


def _fitted(cls=KerasRegressor):
    X, y = _data()
    model = cls(
        model=build_mlp,
        model__hidden=(8,),
        loss="mse",
        epochs=1,
        verbose=0,
        random_state=0,
    )
    return model.fit(X, y), X, y


def _source(estimator, X, scoring=None):
    located = locate_keras_model(estimator)
    plan = draw_permutation_plan(0, len(X), len(X), 2)
    shuffle = ShuffledColumns(plan, [np.array([j]) for j in range(X.shape[1])])
    scorer = check_scoring(estimator, scoring=scoring)
    return keras_engine.narrowed_rows(located, X, shuffle, scorer)


def test_float64_rows_are_copied_as_float32_when_the_network_sees_the_same():
    estimator, X, _ = _fitted()
    source = _source(estimator, X)
    assert source.dtype == np.float32
    np.testing.assert_array_equal(source, X.astype(np.float32))


def test_a_feature_encoder_computing_in_float64_keeps_the_float64_rows():
    estimator, X, _ = _fitted(ThirdsRegressor)
    assert _source(estimator, X) is X


def test_a_scorer_that_may_read_x_keeps_the_float64_rows():
    estimator, X, _ = _fitted()

    def reads_x(estimator, X, y):
        return r2_score(y, estimator.predict(X)) + float(np.sum(X) * 0)

    assert _source(estimator, X, scoring=reads_x) is X


@pytest.mark.parametrize("regressor", [KerasRegressor, ThirdsRegressor])
def test_importances_are_bit_identical_with_or_without_the_narrow_copy(
    monkeypatch, regressor
):
    estimator, X, y = _fitted(regressor)
    kwargs = dict(n_repeats=3, random_state=0, algorithm="exact")
    narrowed = permutation_importance(estimator, X, y, **kwargs)
    monkeypatch.setattr(keras_engine, "narrowed_rows", lambda located, X, *a: X)
    wide = permutation_importance(estimator, X, y, **kwargs)
    np.testing.assert_array_equal(narrowed.importances, wide.importances)
