"""No silently wrong number, no late failure (issue 20, items 1 and 3).

Each test is built so that it fails without its fix: a simulation where the
wrong number is far from the right one, or a refusal that must come before
the expensive work (counted, not timed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, Ridge

from skimportance import (
    conditional_importance,
    from_keras,
    permutation_importance,
)


def two_headed_model():
    """price = 3 x0, rent = 2 x2: x1 matters to no head, x2 not to price."""
    import keras

    inputs = keras.Input((3,))
    price = keras.layers.Dense(1, use_bias=False, name="price")
    rent = keras.layers.Dense(1, use_bias=False, name="rent")
    model = keras.Model(inputs, [price(inputs), rent(inputs)])
    price.set_weights([np.array([[3.0], [0.0], [0.0]])])
    rent.set_weights([np.array([[0.0], [0.0], [2.0]])])
    return model


# --- several heads: each head tests its own loss ----------------------------------


@pytest.mark.parametrize("method", ["permutation", "conditional"])
def test_each_head_tests_its_own_loss(method):
    estimator = from_keras(two_headed_model(), task="regression")
    X = np.random.default_rng(2).normal(size=(80, 3))
    Y = estimator.predict(X) + np.random.default_rng(3).normal(0, 0.1, (80, 2))
    if method == "permutation":
        results = permutation_importance(estimator, X, Y, n_repeats=3, random_state=0)
    else:
        results = conditional_importance(
            estimator, X, Y, X_fit=X, n_repeats=3, random_state=0
        )
    price, rent = results["price"].pvalues(), results["rent"].pvalues()
    # x2 moves only the rent head: for price its importance and p-value say so.
    assert results["price"].importances_mean[2] == 0.0
    assert price["x2"] == 1.0 and rent["x2"] < 1e-6
    assert rent["x0"] == 1.0 and price["x0"] < 1e-6
    assert price["x1"] == 1.0 and rent["x1"] == 1.0
    # All outputs together: both inputs matter.
    everything = results["all outputs"].pvalues()
    assert everything["x0"] < 1e-6 and everything["x2"] < 1e-6
    # Squared errors add up over the heads, so the per-head losses do too.
    np.testing.assert_allclose(
        results["price"].loss_differences + results["rent"].loss_differences,
        results["all outputs"].loss_differences,
        atol=1e-9,
    )


# --- late failures: refused before the expensive work -----------------------------


def test_incremental_without_a_network_is_refused_before_any_conditional_fit():
    class CountingRidge(Ridge):
        fits = 0

        def fit(self, X, y, sample_weight=None):
            type(self).fits += 1
            return super().fit(X, y, sample_weight)

    X = np.random.default_rng(0).normal(size=(60, 4))
    y = X[:, 0]
    model = LinearRegression().fit(X, y)
    with pytest.raises(ValueError, match="needs a Keras model"):
        conditional_importance(
            model, X, y, X_fit=X, imputer=CountingRidge(), algorithm="incremental"
        )
    assert CountingRidge.fits == 0
