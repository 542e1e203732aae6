"""local_importance: Shapley values, occlusion and expected gradients against
a background; the baseline is never taken from the rows being explained."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.compose import make_column_transformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import (
    ImportanceResult,
    LocalResult,
    from_keras,
    gradient_importance,
    local_importance,
    probe_importance,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = X[:, 0] * X[:, 1] + X[:, 2] ** 2 + 0.5 * X[:, 3]
    return X, y


@pytest.fixture(scope="module")
def boosted(data):
    X, y = data
    return GradientBoostingRegressor(n_estimators=15, random_state=0).fit(X, y)


def reference_shapley(predict, x, background):
    """Shapley values by their definition: every order of the features, the
    value of a set the mean prediction with those columns from x."""
    p = len(x)

    def value(members):
        rows = np.array(background, dtype=float, copy=True)
        rows[:, list(members)] = x[list(members)]
        return predict(rows).mean()

    phi = np.zeros(p)
    for order in itertools.permutations(range(p)):
        for k, j in enumerate(order):
            phi[j] += value(order[: k + 1]) - value(order[:k])
    return phi / math.factorial(p)


def smooth_net(n_inputs=3, seed=0):
    import keras

    model = keras.Sequential(
        [
            keras.Input((n_inputs,)),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


# --- the silent zero is gone ---


def test_one_row_without_background_is_refused_in_words():
    model = smooth_net()
    X = np.random.default_rng(1).normal(size=(30, 3))
    with pytest.raises(ValueError, match="needs a background.*never computed"):
        gradient_importance(model, X[[0]], method="integrated_gradients")
    with pytest.raises(ValueError, match="needs a background.*never computed"):
        probe_importance(model, X[[0]], kind="occlusion")
    with pytest.raises(ValueError, match="one row: its spread is zero"):
        probe_importance(model, X[[0]])
    with pytest.raises(ValueError, match="local_importance needs a background"):
        local_importance(model, X[[0]], background=None)


def test_one_row_alone_equals_the_same_row_in_a_batch():
    model = smooth_net()
    X = np.random.default_rng(1).normal(size=(30, 3))
    background = X[:20]
    batch = gradient_importance(
        model, X[20:], method="integrated_gradients", background=background, n_steps=8
    )
    alone = gradient_importance(
        model, X[[22]], method="integrated_gradients", background=background, n_steps=8
    )
    row = alone.details["attributions"][0]
    assert np.abs(row).max() > 1e-3  # not the silent zero
    np.testing.assert_allclose(row, batch.details["attributions"][2], atol=1e-6)
    occluded = probe_importance(model, X[20:], kind="occlusion", background=background)
    single = probe_importance(model, X[[22]], kind="occlusion", background=background)
    np.testing.assert_allclose(
        single.details["attributions"][0],
        occluded.details["attributions"][2],
        atol=1e-6,
    )
    for kwargs in (dict(), dict(exact=False, random_state=3), dict(method="occlusion")):
        many = local_importance(model, X[20:], background=background, **kwargs)
        one = local_importance(model, X[[22]], background=background, **kwargs)
        np.testing.assert_allclose(one.values[0], many.values[2], atol=1e-6)


# --- Shapley values ---


def test_exact_shapley_equals_shap_and_adds_up(data, boosted):
    shap = pytest.importorskip("shap")
    X, _ = data
    background = X[:25]
    result = local_importance(boosted, X[100:104], background=background)
    masker = shap.maskers.Independent(background, max_samples=len(background))
    expected = shap.ExactExplainer(boosted.predict, masker)(X[100:104])
    np.testing.assert_allclose(result.values, expected.values, atol=1e-5)
    np.testing.assert_allclose(result.base_value, expected.base_values[0], atol=1e-9)
    prediction = boosted.predict(X[100:104])
    np.testing.assert_allclose(
        result.values.sum(axis=1), prediction - result.base_value, atol=1e-5
    )
    assert result.standard_errors is None
    assert result.details["estimator"] == "exact"


def test_sampled_shapley_is_efficient_and_within_its_errors(data, boosted):
    X, _ = data
    background = X[:25]
    exact = local_importance(boosted, X[100:103], background=background)
    sampled = local_importance(
        boosted, X[100:103], background=background, exact=False,
        n_permutations=40, random_state=0,
    )  # fmt: skip
    assert sampled.details["estimator"] == "permutation"
    np.testing.assert_allclose(
        sampled.values.sum(axis=1), exact.values.sum(axis=1), atol=1e-9
    )
    z = np.abs(sampled.values - exact.values) / np.maximum(
        sampled.standard_errors, 1e-12
    )
    assert np.mean(z < 3) > 0.9, z
    again = local_importance(
        boosted, X[100:103], background=background, exact=False,
        n_permutations=40, random_state=0,
    )  # fmt: skip
    np.testing.assert_array_equal(again.values, sampled.values)


def test_occlusion_of_a_linear_model(data):
    X, y = data
    linear = LinearRegression().fit(X, y)
    result = local_importance(linear, X[:3], background=X[50:], method="occlusion")
    expected = linear.coef_ * (X[:3] - X[50:].mean(axis=0))
    np.testing.assert_allclose(result.values, expected, atol=1e-10)


def test_a_classifier_explains_its_positive_class_probability(data):
    X, y = data
    clf = LogisticRegression().fit(X, y > np.median(y))
    result = local_importance(clf, X[:3], background=X[50:70])
    assert result.output_name == "True"
    proba = clf.predict_proba(X[:3])[:, 1]
    np.testing.assert_allclose(result.values.sum(axis=1), proba - result.base_value)


# --- raw columns through a Pipeline, groups ---


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(4)
    n = 90
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "city": rng.choice(["paris", "lyon", "nice"], size=n),
            "age": rng.normal(size=n),
        }
    )
    y = 2 * X["size"] + X["city"].map({"paris": 3.0, "lyon": -1.0, "nice": 0.0})
    return X, y.to_numpy()


def encoder():
    return make_column_transformer(
        (OneHotEncoder(), ["city"]), (StandardScaler(), ["size", "age"])
    )


def test_one_hot_column_gets_one_value_equal_to_its_effect(frame):
    X, y = frame
    pipe = make_pipeline(encoder(), Ridge(alpha=1e-6)).fit(X, y)
    background = X.iloc[:40]
    result = local_importance(pipe, X.iloc[60:64], background=background)
    assert result.feature_names.tolist() == ["size", "city", "age"]
    assert result.to_frame().index.tolist() == [60, 61, 62, 63]
    # A model additive in the raw columns: each value is that column's effect
    # at x minus its mean effect over the background.
    effect = {"paris": 3.0, "lyon": -1.0, "nice": 0.0}
    city = X["city"].iloc[60:64].map(effect) - background["city"].map(effect).mean()
    np.testing.assert_allclose(result.values[:, 1], city, atol=1e-4)
    np.testing.assert_allclose(
        result.values.sum(axis=1),
        pipe.predict(X.iloc[60:64]) - result.base_value,
        atol=1e-9,
    )


def test_keras_pipeline_with_one_hot_equals_the_definition(frame):
    X, y = frame
    network = from_keras(smooth_net(n_inputs=5, seed=2), task="regression")
    pipe = make_pipeline(encoder().fit(X), network)  # seeded weights, no training
    background = X.iloc[:15]
    result = local_importance(pipe, X.iloc[[70, 71]], background=background)
    assert result.feature_names.tolist() == ["size", "city", "age"]
    codes = {name: k for k, name in enumerate(X.columns)}

    def predict(rows):  # raw rows, columns as codes, through the pipeline
        frame = pd.DataFrame(rows, columns=X.columns)
        frame["city"] = frame["city"].map(dict(enumerate(["paris", "lyon", "nice"])))
        return pipe.predict(frame.astype({"size": float, "age": float}))

    as_codes = X.replace({"city": {"paris": 0, "lyon": 1, "nice": 2}}).astype(float)
    for k, i in enumerate([70, 71]):
        expected = reference_shapley(
            predict, as_codes.iloc[i].to_numpy(), as_codes.iloc[:15].to_numpy()
        )
        np.testing.assert_allclose(result.values[k], expected, atol=1e-5)
    assert codes["city"] == 1


def test_groups_get_one_value_and_still_add_up(data, boosted):
    X, _ = data
    result = local_importance(
        boosted, X[:3], background=X[50:70], feature_groups={"pair": [0, 1]}
    )
    assert result.feature_names.tolist() == ["pair", "x2", "x3"]
    assert result.data is None
    np.testing.assert_allclose(
        result.values.sum(axis=1), boosted.predict(X[:3]) - result.base_value, atol=1e-9
    )


# --- Keras: several inputs and heads, expected gradients ---


def two_inputs_two_heads():
    import keras

    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    hidden = keras.layers.Dense(4, activation="tanh")(
        keras.layers.Concatenate()([a, b])
    )
    model = keras.Model(
        [a, b], [keras.layers.Dense(1, name="price")(hidden),
                 keras.layers.Dense(1, name="rent")(hidden)],
    )  # fmt: skip
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return from_keras(model, task="regression", inputs={"a": ["u", "v"], "b": ["w"]})


def test_several_inputs_and_heads_give_one_result_per_head():
    estimator = two_inputs_two_heads()
    X = pd.DataFrame(np.random.default_rng(6).normal(size=(30, 3)), columns=list("uvw"))
    results = local_importance(estimator, X.iloc[:2], background=X.iloc[10:])
    assert list(results) == ["price", "rent"]
    Y = estimator.predict(X)
    for k, name in enumerate(["price", "rent"]):
        result = results[name]
        assert result.feature_names.tolist() == ["u", "v", "w"]

        def head(rows, k=k):
            return estimator.predict(pd.DataFrame(rows, columns=list("uvw")))[:, k]

        np.testing.assert_allclose(
            result.values.sum(axis=1), Y[:2, k] - result.base_value, atol=1e-5
        )
        expected = reference_shapley(head, X.iloc[0].to_numpy(), X.iloc[10:].to_numpy())
        np.testing.assert_allclose(result.values[0], expected, atol=1e-5)


def test_incremental_first_layer_equals_building_every_row(frame):
    X, y = frame
    network = from_keras(smooth_net(n_inputs=5, seed=3), task="regression")
    pipe = make_pipeline(encoder().fit(X), network)
    rows, background = X.iloc[70:73], X.iloc[:20]
    for kwargs in (dict(), dict(exact=False, random_state=0), dict(method="occlusion")):
        exact = local_importance(pipe, rows, background=background, **kwargs)
        incremental = local_importance(
            pipe, rows, background=background, algorithm="incremental", **kwargs
        )
        assert exact.details["algorithm"] == "exact"
        assert incremental.details["algorithm"] == "incremental"
        np.testing.assert_allclose(incremental.values, exact.values, atol=1e-5)
    with pytest.raises(ValueError, match="'incremental' does not apply: it needs a"):
        local_importance(
            Ridge().fit(X[["size"]], y), X[["size"]].iloc[:2],
            background=X[["size"]], algorithm="incremental",
        )  # fmt: skip


def test_expected_gradients_on_a_linear_network_and_complete_on_a_smooth_one():
    import keras

    X = np.random.default_rng(7).normal(size=(25, 3))
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    linear.set_weights([np.array([[2.0], [-1.0], [0.5]]), np.array([0.3])])
    result = local_importance(
        linear, X[:4], background=X[5:], method="expected_gradients", n_steps=2
    )
    expected = (X[:4] - X[5:].mean(axis=0)) * [2.0, -1.0, 0.5]
    np.testing.assert_allclose(result.values, expected, rtol=1e-4, atol=1e-5)
    smooth = smooth_net()
    result = local_importance(
        smooth, X[:4], background=X[5:], method="expected_gradients", n_steps=32
    )
    total = result.details["prediction"] - result.base_value
    np.testing.assert_allclose(result.values.sum(axis=1), total, atol=1e-4)
    with pytest.raises(TypeError, match="expected_gradients' needs a Keras model"):
        local_importance(
            LinearRegression().fit(X, X[:, 0]), X[:2], background=X,
            method="expected_gradients",
        )  # fmt: skip


# --- bad input: one clear error, before any forward pass ---


class CountingRegressor(LinearRegression):
    """Counts its forward passes."""

    calls = 0

    def predict(self, X):
        type(self).calls += 1
        return super().predict(X)


@pytest.mark.parametrize(
    "background, kwargs, match",
    [
        (None, {}, "needs a background"),
        ("empty", {}, "background has no rows"),
        ("other", {}, r"other columns than X \(missing \['d'\], extra \['z'\]"),
        ("nan", {}, "background contains NaN"),
        ("ok", {"exact": True}, r"2\*\*20 = 1,048,576 coalitions.*memory budget"),
        ("ok", {"method": "lime"}, "method must be one of"),
        ("ok", {"n_permutations": 5}, "must be even"),
    ],
)
def test_bad_input_is_refused_before_any_forward_pass(background, kwargs, match):
    rng = np.random.default_rng(8)
    columns = [f"c{k}" for k in range(19)] + ["d"]
    X = pd.DataFrame(rng.normal(size=(40, 20)), columns=columns)
    model = CountingRegressor().fit(X, X["d"])
    rows = {
        None: None,
        "empty": X.iloc[:0],
        "other": X.rename(columns={"d": "z"}),
        "nan": X.mask(X > 2.5),
        "ok": X,
    }[background]
    CountingRegressor.calls = 0
    with config_context(working_memory=1), pytest.raises(ValueError, match=match):
        local_importance(model, X.iloc[:2], background=rows, **kwargs)
    assert CountingRegressor.calls == 0


# --- the result ---


def test_result_frame_global_importance_plot_and_shap(data, boosted):
    X, _ = data
    frame = pd.DataFrame(X, columns=list("abcd"), index=range(100, 220))
    model = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(
        frame, X[:, 0]
    )
    result = local_importance(model, frame.iloc[:6], background=frame.iloc[50:70])
    assert isinstance(result, LocalResult)
    assert result.to_frame().index.tolist() == list(range(100, 106))
    summary = result.global_importance()
    assert isinstance(summary, ImportanceResult)
    np.testing.assert_allclose(summary.importances_mean, np.abs(result.values).mean(0))
    assert summary.ranking()[0] == "a"
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot(label=101)
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "a"
    assert ax.get_title() == "row 101"
    assert result.plot(row=1).get_title() == "row 101"
    with pytest.raises(ValueError, match="not a \\(unique\\) label"):
        result.plot(label="nope")
    shap = pytest.importorskip("shap")
    explanation = result.to_shap()
    np.testing.assert_array_equal(explanation.values, result.values)
    assert explanation.feature_names == list("abcd")
    shap.plots.waterfall(explanation[0], show=False)
    shap.plots.beeswarm(explanation, show=False)
    matplotlib.pyplot.close("all")


@pytest.mark.slow  # worker processes
def test_parallel_blocks_equal_the_serial_ones(data, boosted):
    X, _ = data
    with config_context(working_memory=1):  # many small blocks
        serial = local_importance(boosted, X[:4], background=X[50:80])
        parallel = local_importance(boosted, X[:4], background=X[50:80], n_jobs=2)
    np.testing.assert_allclose(parallel.values, serial.values, atol=1e-12)
