"""Raw columns, honest baselines and no silent zeros (issue: numbers you can trust).

A Pipeline that one-hot encodes a categorical column and imputes a numeric one
in front of a fixed network: every method reports on the user's columns by
default, each with its documented aggregation, and refuses (in words) where
it has none.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import (
    from_keras,
    gradient_importance,
    permutation_importance,
    probe_importance,
    weight_importance,
)
from skimportance._columns import column_map
from skimportance._model import locate_keras_model

RAW = ["income", "age", "city"]


def frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, size=n)
    income[::17] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 80, size=n).astype(float),
            "city": pd.Categorical(rng.choice(["east", "north", "west"], size=n)),
        }
    )


def encoder():
    numeric = make_pipeline(SimpleImputer(add_indicator=True), StandardScaler())
    return ColumnTransformer(
        [
            ("num", numeric, ["income", "age"]),
            ("cat", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    )


def network(n_inputs, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((n_inputs,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def data():
    return frame()


@pytest.fixture(scope="module")
def pipe(data):
    pre = encoder().fit(data)
    n_model = pre.transform(data).shape[1]  # income, its indicator, age, 3 cities
    return make_pipeline(pre, from_keras(network(n_model), task="regression"))


def test_the_map_reads_blocks_off_the_preprocessing(pipe, data):
    mapping = column_map(locate_keras_model(pipe), data)
    assert list(mapping.raw_names) == RAW
    widths = [len(block) for block in mapping.blocks]
    assert widths == [2, 1, 3]  # income + missing indicator, age, one-hot city
    assert mapping.separable and not mapping.one_to_one
    assert mapping.encoded() == {"income": 2, "city": 3}
    covered = np.sort(np.concatenate(mapping.blocks))
    np.testing.assert_array_equal(covered, np.arange(6))


def test_mixing_preprocessing_is_not_separable(data):
    numbers = data[["income", "age"]].fillna(0.0)
    pca = make_pipeline(StandardScaler(), PCA(2)).fit(numbers)
    pipe = make_pipeline(pca, from_keras(network(2), task="regression"))
    mapping = column_map(locate_keras_model(pipe), numbers)
    assert not mapping.separable
    with pytest.raises(ValueError, match="mixes them.*PCA"):
        gradient_importance(pipe, numbers, method="saliency")
    # the model's own inputs stay available
    result = gradient_importance(pipe, numbers, method="saliency", columns="model")
    assert result.n_features == 2


def test_every_method_reports_raw_columns_by_default(pipe, data):
    y = pipe.predict(data)
    results = [
        permutation_importance(pipe, data, y, n_repeats=2, random_state=0),
        probe_importance(pipe, data),
        probe_importance(pipe, data, kind="profile"),
        probe_importance(pipe, data, kind="occlusion", background=data),
        gradient_importance(pipe, data, method="saliency"),
        gradient_importance(pipe, data, method="input_x_gradient"),
        gradient_importance(
            pipe, data, method="integrated_gradients", background=data, n_steps=8
        ),
    ]
    for result in results:
        assert list(result.feature_names) == RAW, result.method
    encoded = gradient_importance(pipe, data, method="saliency", columns="model")
    assert encoded.n_features == 6
    assert any("city" in name for name in encoded.feature_names)


def test_integrated_gradients_sums_blocks_and_stays_complete(pipe, data):
    raw = gradient_importance(
        pipe, data, method="integrated_gradients", background=data, n_steps=32
    )
    model = gradient_importance(  # from the same (encoded) baseline
        pipe,
        data,
        method="integrated_gradients",
        n_steps=32,
        columns="model",
        baseline=raw.details["baseline"],
    )
    mapping = column_map(locate_keras_model(pipe), data)
    summed = np.stack(
        [model.details["attributions"][:, b].sum(axis=1) for b in mapping.blocks],
        axis=1,
    )
    np.testing.assert_allclose(raw.details["attributions"], summed, rtol=1e-10)
    # completeness on raw columns: attributions add up to f(x) - f(baseline)
    np.testing.assert_allclose(
        raw.details["attributions"].sum(axis=1), raw.details["delta"], atol=2e-3
    )


def test_saliency_takes_the_norm_of_a_block(pipe, data):
    raw = gradient_importance(pipe, data, method="saliency")
    model = gradient_importance(pipe, data, method="saliency", columns="model")
    city = column_map(locate_keras_model(pipe), data).blocks[2]
    norms = np.linalg.norm(model.details["attributions"][:, city], axis=1)
    np.testing.assert_allclose(raw.details["attributions"][:, 2], norms)


def test_probes_set_raw_categories(pipe, data):
    result = probe_importance(pipe, data)
    assert result.details["space"] == "raw"
    base = result.details["baseline"]
    assert base["city"].iloc[0] == data["city"].mode()[0]  # the most frequent city
    assert base["age"].iloc[0] == pytest.approx(data["age"].mean())
    # a category's probe: the largest change over the cities, checked by hand
    changes = []
    for city in data["city"].cat.categories:
        row = base.copy()
        row["city"] = pd.Categorical([city], categories=data["city"].cat.categories)
        changes.append(pipe.predict(row)[0] - pipe.predict(base)[0])
    largest = changes[int(np.argmax(np.abs(changes)))]
    assert result.importances_mean[2] == pytest.approx(largest, rel=1e-4, abs=1e-5)


def test_model_space_points_are_refused_on_encoded_raw_columns(pipe, data):
    with pytest.raises(ValueError, match="baseline='zeros' is a point in the Keras"):
        probe_importance(pipe, data, baseline="zeros")
    with pytest.raises(ValueError, match="probe=2.0 is a value in the Keras"):
        probe_importance(pipe, data, probe=2.0)
    encoded = probe_importance(pipe, data, baseline="zeros", columns="model")
    assert encoded.n_features == 6


def test_weight_methods_refuse_one_hot_blocks(pipe, data):
    with pytest.raises(
        ValueError, match=r"raw columns 'income' \(2 model columns\), 'city' \(3"
    ):
        weight_importance(pipe, method="olden", X=data)
    with pytest.raises(ValueError, match="without X their mapping"):
        weight_importance(pipe, method="olden")
    assert weight_importance(pipe, method="olden", columns="model").n_features == 6


def test_weights_on_a_scaler_pipeline_keep_raw_names(diabetes_pipeline, diabetes):
    X, _ = diabetes
    with_x = weight_importance(diabetes_pipeline, method="garson", X=X)
    without = weight_importance(diabetes_pipeline, method="garson")
    assert list(with_x.feature_names) == list(X.columns)
    np.testing.assert_allclose(with_x.importances, without.importances)


# --- honest baselines ---


def normalised_model(X):
    """A model that standardises its own raw inputs (keras Normalization)."""
    import keras

    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(X)
    return keras.Sequential(
        [
            keras.Input((X.shape[1],)),
            norm,
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )


def test_zero_baseline_before_in_model_scaling_warns(data):
    X = data[["income", "age"]].fillna(50_000).to_numpy()
    model = normalised_model(X)
    # Two honest warnings: zeros mean nothing before the in-model scaling, and
    # the raw inputs (income, age) are on different scales for a fixed probe.
    with (
        pytest.warns(UserWarning, match="different scales"),
        pytest.warns(UserWarning, match="layer 'normalization.*' \\(Normalization\\)"),
    ):
        probe_importance(model, X, baseline="zeros")
    with pytest.warns(UserWarning, match="raw value 0"):
        gradient_importance(model, X, method="integrated_gradients", baseline="zeros")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the data-driven default does not warn
        default = gradient_importance(
            model, X, method="integrated_gradients", background=X
        )
    np.testing.assert_allclose(default.details["baseline"], X.mean(axis=0))


# --- no silent zeros ---


def embedding_model():
    """x0, x1 numeric; x2 an integer code that reaches the output only through
    a cast and an Embedding lookup."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    code = keras.ops.cast(inputs[:, 2], "int32")
    lookup = keras.layers.Embedding(4, 2)
    embedded = keras.layers.Flatten()(lookup(code))
    joined = keras.layers.Concatenate()([inputs[:, :2], embedded])
    hidden = keras.layers.Dense(8, activation="tanh")(joined)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    lookup.set_weights([np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0], [1.0, 2.0]])])
    return model


@pytest.fixture(scope="module")
def coded():
    rng = np.random.default_rng(1)
    X = np.column_stack(
        [rng.normal(size=200), rng.normal(size=200), rng.integers(0, 4, 200)]
    ).astype(float)
    return X


def test_gradient_through_an_embedding_is_refused(coded):
    model = embedding_model()
    for method in ("saliency", "input_x_gradient", "integrated_gradients"):
        with pytest.raises(
            ValueError,
            match=r"depends on input\(s\) \['x2'\].*not differentiable.*"
            r"'cast(_\d+)?' \(Cast to int32\).*'embedding.*' \(Embedding\)"
            r".*permutation",
        ):
            extra = {"background": coded} if method == "integrated_gradients" else {}
            gradient_importance(model, coded, method=method, **extra)


def test_permutation_and_probe_see_the_embedded_input(coded):
    model = embedding_model()
    estimator = from_keras(model, task="regression")
    y = estimator.predict(coded)  # the model is the truth: every input matters
    result = permutation_importance(estimator, coded, y, n_repeats=3, random_state=0)
    assert result.importances_mean[2] > 0.05
    profile = probe_importance(model, coded, kind="profile")
    assert profile.importances_mean[2] > 0.05


def test_integer_inputs_are_refused_before_tensorflow():
    import keras

    inputs = keras.Input((3,), dtype="int32")
    hidden = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    with pytest.raises(
        ValueError, match=r"input .* \(int32\) takes integer codes.*permutation_imp"
    ):
        gradient_importance(model, np.zeros((4, 3)), method="saliency")


def test_an_unused_input_keeps_its_honest_zero():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.set_weights([np.array([[1.5], [0.0]]), np.zeros(1)])
    X = np.random.default_rng(0).normal(size=(30, 2))
    result = gradient_importance(model, X, method="saliency")
    np.testing.assert_allclose(result.importances_mean, [1.5, 0.0])


# --- scale warnings ---


def test_scale_dependent_methods_refuse_or_warn_naming_the_columns():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"dollars": rng.normal(0, 1000, 50), "rate": rng.normal(0, 1, 50)})
    named = r"from [\d.]+ \(rate\) to \d+ \(dollars\)"
    with pytest.raises(ValueError, match=named + r".*Saliency \(a gradient\)"):
        gradient_importance(model, X, method="saliency")
    with pytest.warns(UserWarning, match=named + ".*A fixed probe value"):
        probe_importance(model, X, probe=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scale-free: a data baseline, 'std' probes
        probe_importance(model, X)
        gradient_importance(model, X, method="integrated_gradients", background=X)
