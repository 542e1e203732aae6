"""No silently wrong number, no late failure (issue 20, items 1 and 3).

Each test is built so that it fails without its fix: a simulation where the
wrong number is far from the right one, or a refusal that must come before
the expensive work (counted, not timed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression, Ridge

from skimportance import (
    ImportanceEstimator,
    ImportanceSelector,
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


# --- p-values only on held-out rows -----------------------------------------------


def overfitting_network():
    """A network wide enough to fit its 5 noise inputs on 120 rows."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6))
    y = X[:, 0] + rng.normal(0, 0.5, 160)
    network = MLPRegressor(
        hidden_layer_sizes=(64,), max_iter=2000, learning_rate_init=0.01,
        random_state=0,
    )  # fmt: skip
    return network, X, y


def test_in_sample_p_values_call_fitted_noise_significant():
    """The simulation the fixes below are about: on its training rows the
    network's noise inputs all look significant, on held-out rows none."""
    network, X, y = overfitting_network()
    network.fit(X[:120], y[:120])
    inside = permutation_importance(network, X[:120], y[:120], random_state=0)
    outside = permutation_importance(network, X[120:], y[120:], random_state=0)
    assert inside.fdr(0.05)["selected"].all()
    assert outside.fdr(0.05)["selected"].tolist() == [True] + [False] * 5


def test_selecting_by_p_values_holds_out_rows_by_default():
    network, X, y = overfitting_network()
    selector = ImportanceSelector(network, threshold="fdr:0.05", random_state=0)
    selector.fit(X, y)
    assert selector.get_support().tolist() == [True] + [False] * 5
    # The model was fitted on the other rows, and the held-out share is 0.25.
    assert selector.importances_.details["n_samples"] == 40
    assert selector.importance_estimator_.estimator_.n_iter_ > 0


def test_p_values_of_training_rows_are_refused_in_words():
    network, X, y = overfitting_network()
    measured = ImportanceEstimator(network, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="fitted on.*held-out rows"):
        measured.importances_.pvalues()
    with pytest.raises(ValueError, match="validation_fraction"):
        measured.importances_.fdr(0.05)
    held_out = ImportanceEstimator(network, validation_fraction=0.25, random_state=0)
    assert held_out.fit(X, y).importances_.pvalues().shape == (6,)


def test_a_selector_keeping_no_feature_says_so():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 4)), rng.normal(size=200)  # nothing to find
    selector = ImportanceSelector(
        LinearRegression(), threshold="fdr:0.05", random_state=0
    )
    with pytest.raises(ValueError, match="No feature passes threshold='fdr:0.05'"):
        selector.fit(X, y)


class _NeverFit(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        raise AssertionError("trained before the threshold was checked")


@pytest.mark.parametrize("threshold", ["fdr=0.05", "pvalues:0.05", "Mean!", "x*mean"])
def test_misspelt_thresholds_are_refused_before_training(threshold):
    X, y = np.ones((20, 3)), np.arange(20.0)
    with pytest.raises(ValueError, match="'fdr:<level>'.*'pvalue:<level>'.*'mean'"):
        ImportanceSelector(_NeverFit(), threshold=threshold).fit(X, y)


@pytest.mark.parametrize("threshold", ["FDR:0.05", " Fdr : 0.05", "PVALUE:0.01"])
def test_thresholds_are_read_in_any_case(threshold):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    y = 3 * X[:, 0] + rng.normal(size=400)
    selector = ImportanceSelector(
        LinearRegression(), threshold=threshold, random_state=0
    )
    assert selector.fit(X, y).get_support().tolist() == [True, False, False]


def test_model_thresholds_are_read_in_any_case_too():
    X = np.random.default_rng(3).normal(size=(100, 3))
    y = X @ [3.0, 1.0, 0.0]
    upper = ImportanceSelector(LinearRegression(), threshold="1.5*MEAN", random_state=0)
    lower = ImportanceSelector(LinearRegression(), threshold="1.5*mean", random_state=0)
    upper, lower = upper.fit(X, y), lower.fit(X, y)
    assert upper.get_support().tolist() == lower.get_support().tolist()


# --- a scorer that returns NaN ----------------------------------------------------


def nan_when_shuffled(estimator, X, y):
    """NaN as soon as the rows are not the original ones (a strict metric)."""
    prediction = estimator.predict(X)
    return float("nan") if not np.allclose(prediction, y) else 1.0


@pytest.mark.parametrize("method", ["permutation", "conditional"])
def test_a_scorer_returning_nan_is_named_once(method):
    X = np.random.default_rng(4).normal(size=(50, 3))
    y = X @ [1.0, 2.0, 0.0]
    model = LinearRegression().fit(X, y)
    kwargs = {"X_fit": X} if method == "conditional" else {}
    run = permutation_importance if method == "permutation" else conditional_importance
    with pytest.warns(UserWarning, match="Non-finite scores") as w:
        result = run(model, X, y, scoring=nan_when_shuffled, random_state=0, **kwargs)
    assert len([r for r in w if "Non-finite" in str(r.message)]) == 1
    # x2 is ignored: its 5 slices score on the original predictions.
    assert "scorer: nan_when_shuffled on 10 of 15 perturbed slices" in str(w[0].message)
    assert np.isnan(result.importances[:2]).all()
    assert (result.importances[2] == 0).all()


# --- conditional draws stay in the data's domain ----------------------------------


class CountingRidge(Ridge):
    """Ridge counting its fits, so a test sees a refusal came before any."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


class RecordingRegression(LinearRegression):
    """A linear model remembering every value column 2 took in ``predict``."""

    def predict(self, X):
        self.seen_ = np.union1d(getattr(self, "seen_", []), np.asarray(X)[:, 2])
        return super().predict(X)


def test_integer_codes_are_drawn_as_integers_in_their_range():
    rng = np.random.default_rng(5)
    x0 = rng.normal(size=200)
    code = np.clip(np.rint(x0 + rng.normal(0, 0.7, 200)) + 1, 0, 3)  # codes 0..3
    X = np.column_stack([x0, rng.normal(size=200), code])
    y = X[:, 0] + (X[:, 2] == 2)
    model = RecordingRegression().fit(X, y)
    result = conditional_importance(model, X, y, n_repeats=3, random_state=0)
    assert set(model.seen_) <= {0.0, 1.0, 2.0, 3.0}
    assert np.isfinite(result.importances).all()


def test_a_category_x_does_not_know_is_refused_before_any_fit():
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(6)
    X = pd.DataFrame(
        {
            "size": rng.normal(size=40),
            "city": pd.Categorical(rng.choice(["a", "b"], 40), categories=["a", "b"]),
        }
    )
    X_fit = X.assign(city=pd.Categorical(rng.choice(["a", "b", "c"], 40)))
    y = X["size"].to_numpy() + (X["city"] == "a")
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["city"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LinearRegression()).fit(X_fit, y)
    CountingRidge.fits = 0
    with pytest.raises(ValueError, match=r"column 'city' holds categories \['c'\]"):
        conditional_importance(model, X, y, X_fit=X_fit, imputer=CountingRidge())
    assert CountingRidge.fits == 0


@pytest.mark.parametrize("n_fit", [1, 9])
def test_too_few_fit_rows_are_refused_with_the_minimum(n_fit):
    X = np.random.default_rng(7).normal(size=(50, 3))
    y = X[:, 0]
    model = LinearRegression().fit(X, y)
    CountingRidge.fits = 0
    with pytest.raises(ValueError, match=f"X_fit has {n_fit} rows.*at least 10"):
        conditional_importance(model, X, y, X_fit=X[:n_fit], imputer=CountingRidge())
    assert CountingRidge.fits == 0
    result = conditional_importance(model, X, y, X_fit=X[:10], random_state=0)
    assert result.ranking()[0] == "x0"


# --- row-dependent preprocessing on the exact engine ------------------------------


def column_ranks(X):
    """Each value's rank within its column, in [0, 1]: a row's output depends
    on every other row of the batch."""
    from scipy.stats import rankdata

    return rankdata(X, axis=0) / len(X)


def test_row_dependent_preprocessing_gives_scikit_learns_numbers():
    import keras
    from sklearn.inspection import permutation_importance as sklearn_permutation
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    keras.utils.set_random_seed(0)
    network = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
         keras.layers.Dense(1)]
    )  # fmt: skip
    kernel, bias = network.layers[0].get_weights()
    kernel[3] = 0.0  # the network ignores x3
    network.layers[0].set_weights([kernel, bias])
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 4))
    ranks = FunctionTransformer(column_ranks).fit(X)
    model = make_pipeline(ranks, from_keras(network, task="regression"))
    y = model.predict(X) + rng.normal(0, 0.1, 60)
    kwargs = dict(n_repeats=2, random_state=0)
    ours = permutation_importance(model, X, y, algorithm="exact", **kwargs)
    theirs = sklearn_permutation(model, X, y, **kwargs)
    assert ours.details["row_wise_preprocessing"] is False
    scale = np.abs(theirs.importances).max()
    np.testing.assert_allclose(ours.importances, theirs.importances, atol=1e-6 * scale)
    # On a subsample, the unperturbed rows the per-row losses are compared
    # with are the subsample transformed whole too: x3 moves nothing.
    half = dict(kwargs, max_samples=0.5)
    ours = permutation_importance(model, X, y, algorithm="exact", **half)
    theirs = sklearn_permutation(model, X, y, **half)
    np.testing.assert_allclose(ours.importances, theirs.importances, atol=1e-6 * scale)
    assert (ours.loss_differences[3] == 0).all() and ours.pvalues()["x3"] == 1.0


# --- missing-value indicators do not change a column's kind -----------------------


def test_a_numeric_column_with_missing_cells_is_probed_as_a_number():
    import keras
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    from skimportance import probe_importance

    rng = np.random.default_rng(9)
    income = rng.normal(3.0, 2.0, 200)
    income[rng.random(200) < 0.2] = np.nan
    X = pd.DataFrame({"age": rng.normal(size=200), "income": income})
    imputer = SimpleImputer(add_indicator=True).fit(X)  # age, income, missing
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    linear.set_weights([np.array([[1.0], [2.0], [5.0]]), np.zeros(1)])
    model = make_pipeline(imputer, from_keras(linear, task="regression"))
    result = probe_importance(model, X)  # from the mean, by one std
    assert result.details["categorical"] == []
    np.testing.assert_allclose(
        result.importances_mean,
        [X["age"].std(ddof=0), 2 * np.nanstd(income)],
        rtol=1e-5,
    )


# --- the CLI tries its output paths before training -------------------------------


def test_output_paths_are_tried_without_leaving_a_trace(tmp_path):
    from argparse import Namespace

    from skimportance._cli_output import CommandError, check_output_paths

    existing = tmp_path / "result.json"
    existing.write_text("keep me")
    check_output_paths(Namespace(out=str(tmp_path / "fig.png"), json=str(existing)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert existing.read_text() == "keep me"
    with pytest.raises(CommandError, match="/sys/fig.png: cannot write there"):
        check_output_paths(Namespace(out="/sys/fig.png", json=None))
