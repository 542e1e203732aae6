"""The Keras models people build: several inputs, sequences, several outputs.

Models with fixed weights where the truth is known by construction, so the
rankings can be asserted exactly; the fast engine is checked against
scikit-learn's own permutation loop on the same estimator.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.inspection import permutation_importance as sklearn_permutation
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold

from skimportance import (
    KerasRegressor,
    from_keras,
    gradient_importance,
    permutation_importance,
    probe_importance,
)

CITY_EFFECT = [-3.0, 0.0, 3.0, 6.0]


def mixed_model():
    """``2 age + 0 income + embedding(city)``: city matters most, income not."""
    import keras

    numeric = keras.Input((2,), name="numeric")
    city = keras.Input((1,), name="city", dtype="int32")
    linear = keras.layers.Dense(1, use_bias=False)
    lookup = keras.layers.Embedding(4, 1)
    embedded = keras.layers.Flatten()(lookup(city))
    model = keras.Model(
        {"numeric": numeric, "city": city},
        keras.layers.Add()([linear(numeric), embedded]),
    )
    linear.set_weights([np.array([[2.0], [0.0]])])
    lookup.set_weights([np.array(CITY_EFFECT)[:, None]])
    return model


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 240
    return pd.DataFrame(
        {
            "age": rng.normal(size=n),
            "income": rng.normal(size=n),
            "city": rng.integers(0, 4, n),
        }
    )


@pytest.fixture(scope="module")
def mixed(table):
    estimator = from_keras(
        mixed_model(),
        task="regression",
        inputs={"numeric": ["age", "income"], "city": ["city"]},
    )
    y = estimator.predict(table)
    return estimator, y


def test_the_mapping_feeds_each_input_its_columns(mixed, table):
    estimator, y = mixed
    expected = 2 * table["age"] + np.take(CITY_EFFECT, table["city"])
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert estimator.input_columns_ == {
        "numeric": ["age", "income"],
        "city": ["city"],
    }


def test_permutation_ranks_the_embedded_column_first_and_equals_sklearn(mixed, table):
    estimator, y = mixed
    ours = permutation_importance(estimator, table, y, n_repeats=3, random_state=0)
    assert ours.ranking().tolist() == ["city", "age", "income"]
    assert ours.importances_mean[1] == pytest.approx(0.0, abs=1e-6)  # income
    theirs = sklearn_permutation(estimator, table, y, n_repeats=3, random_state=0)
    np.testing.assert_allclose(ours.importances, theirs.importances, atol=1e-5)
    by_input = permutation_importance(
        estimator, table, y, feature_groups="inputs", random_state=0
    )
    assert by_input.feature_names.tolist() == ["numeric", "city"]


def test_probes_set_the_codes_as_categories(mixed, table):
    estimator, _ = mixed
    result = probe_importance(estimator, table)
    assert result.details["space"] == "raw"
    assert result.details["categorical"] == ["city"]
    assert np.argmax(np.abs(result.importances_mean)) == 2  # city
    assert result.importances_mean[1] == pytest.approx(0.0, abs=1e-6)  # income
    # the city's largest change from its most frequent code, by hand
    mode = table["city"].mode()[0]
    changes = np.take(CITY_EFFECT, range(4)) - CITY_EFFECT[mode]
    assert abs(result.importances_mean[2]) == pytest.approx(np.abs(changes).max())


def test_gradients_refuse_the_integer_input_by_name(mixed, table):
    estimator, _ = mixed
    with pytest.raises(ValueError, match=r"input 'city' \(int32\) takes integer"):
        gradient_importance(estimator, table)


def test_gradients_per_column_on_float_inputs(table):
    import keras

    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model([a, b], dense(joined))
    dense.set_weights([np.array([[1.0], [-2.0], [3.0]])])
    estimator = from_keras(
        model, task="regression", inputs={"b": ["age"], "a": ["income", "city"]}
    )
    frame = table.astype(float)
    result = gradient_importance(estimator, frame, method="input_x_gradient")
    assert result.feature_names.tolist() == ["age", "income", "city"]
    expected = np.abs(frame.to_numpy() * [3.0, 1.0, -2.0]).mean(axis=0)
    np.testing.assert_allclose(result.importances_mean, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ({"numeric": ["age", "income"]}, r"the model has \['city', 'numeric'\]"),
        (
            {"numeric": ["age", "city"], "city": ["city"]},
            "column 'city' is mapped to input 'numeric' and to input 'city'",
        ),
        ({"numeric": ["age", "nope"], "city": ["city"]}, "unknown column 'nope'"),
        ({"numeric": [0], "city": [1, 2]}, "'city' takes 1 value"),
    ],
)
def test_a_mapping_that_misses_or_repeats_a_column_is_refused(inputs, match):
    with pytest.raises(ValueError, match=match):
        from_keras(
            mixed_model(),
            task="regression",
            inputs=inputs,
            feature_names=["age", "income", "city"],
        )


def test_from_keras_asks_for_the_inputs_mapping():
    with pytest.raises(ValueError, match=r"several inputs .*pass inputs=\{"):
        from_keras(mixed_model(), task="regression")


def test_a_column_fed_to_no_input_is_not_dropped_silently(table):
    from skimportance._inputs import check_inputs_mapping

    with pytest.raises(ValueError, match=r"column\(s\) \['city'\] are mapped to no"):
        check_inputs_mapping({"numeric": ["age", "income"]}, list(table.columns), 3)


# --- the trainable wrappers take the same mapping ---


def two_input_builder(meta, units=4):
    import keras

    numeric = keras.Input((2,), name="numeric")
    city = keras.Input((1,), name="city")
    hidden = keras.layers.Dense(units, activation="tanh")(
        keras.layers.Concatenate()([numeric, city])
    )
    return keras.Model(
        {"numeric": numeric, "city": city}, keras.layers.Dense(1)(hidden)
    )


def test_wrappers_with_inputs_clone_pickle_and_tune(table, mixed):
    _, y = mixed
    network = KerasRegressor(
        two_input_builder,
        inputs={"numeric": ["age", "income"], "city": ["city"]},
        loss="mse",
        epochs=2,
        verbose=0,
        random_state=0,
    )
    copy = clone(network)
    assert copy.get_params()["inputs"] == network.inputs
    fitted = copy.fit(table, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict(table), fitted.predict(table), rtol=1e-6)
    search = GridSearchCV(network, {"model__units": [2, 4]}, cv=KFold(2)).fit(table, y)
    assert search.best_estimator_.input_columns_["city"] == ["city"]
    result = permutation_importance(fitted, table, y, n_repeats=2, random_state=0)
    assert result.feature_names.tolist() == ["age", "income", "city"]


# --- sequences ---

T, C = 8, 3


def sequence_model():
    """Only channel 1 matters, and mostly at the last timestep."""
    import keras

    model = keras.Sequential([keras.Input((T, C)), keras.layers.Flatten()])
    dense = keras.layers.Dense(1, use_bias=False)
    model.add(dense)
    weights = np.zeros((T, C))
    weights[:, 1] = 0.2
    weights[-1, 1] = 3.0
    dense.set_weights([weights.reshape(-1, 1)])
    return model


@pytest.fixture(scope="module")
def sequences():
    return np.random.default_rng(1).normal(size=(150, T, C))


@pytest.mark.parametrize("axis, first", [("channel", "channel 1"), ("timestep", "t=7")])
def test_the_informative_channel_and_timestep_rank_first(sequences, axis, first):
    estimator = from_keras(sequence_model(), task="regression", feature_axis=axis)
    y = estimator.predict(sequences)
    result = permutation_importance(
        estimator, sequences, y, n_repeats=2, random_state=0
    )
    assert result.ranking()[0] == first
    probe = probe_importance(estimator, sequences)
    assert probe.feature_names[np.argmax(np.abs(probe.importances_mean))] == first


def test_sequence_permutation_equals_a_naive_loop(sequences):
    estimator = from_keras(sequence_model(), task="regression")
    y = estimator.predict(sequences) + 0.1
    result = permutation_importance(
        estimator, sequences, y, n_repeats=3, random_state=0
    )
    # scikit-learn's draws: one seed, a running shuffle of the row order
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1)
    rng, order = np.random.RandomState(seed), np.arange(len(sequences))
    shuffling = np.arange(len(sequences))
    expected = np.empty((C, 3))
    baseline = r2_score(y, estimator.predict(sequences))
    for repeat in range(3):
        rng.shuffle(shuffling)
        order = order[shuffling]
        for channel in range(C):
            permuted = sequences.copy()
            permuted[:, :, channel] = sequences[order, :, channel]
            expected[channel, repeat] = baseline - r2_score(
                y, estimator.predict(permuted)
            )
    np.testing.assert_allclose(result.importances, expected, atol=1e-5)


def test_a_feature_mask_and_named_features(sequences):
    mask = np.zeros((T, C), dtype=int)
    mask[-2:, :] = 1  # the last two timesteps, all channels
    estimator = from_keras(
        sequence_model(),
        task="regression",
        feature_axis=mask,
        feature_names=["early", "late"],
    )
    y = estimator.predict(sequences)
    result = permutation_importance(estimator, sequences, y, random_state=0)
    assert result.ranking().tolist() == ["late", "early"]
    ig = gradient_importance(
        estimator, sequences, method="integrated_gradients", background=sequences
    )
    assert ig.feature_names.tolist() == ["early", "late"]
    # completeness: per-feature sums over the other positions
    np.testing.assert_allclose(
        ig.details["attributions"].sum(axis=1), ig.details["delta"], atol=1e-4
    )


def test_bad_feature_axis_is_refused():
    with pytest.raises(ValueError, match="mask must have the input's shape"):
        from_keras(sequence_model(), task="regression", feature_axis=np.zeros(3))
    with pytest.raises(ValueError, match="feature_names has 2 names for 3"):
        from_keras(sequence_model(), task="regression", feature_names=["a", "b"])
    with pytest.raises(ValueError, match="feature_axis is for models with one N-D"):
        from_keras(mixed_model(), task="regression", feature_axis=0,
                   inputs={"numeric": [0, 1], "city": [2]})  # fmt: skip


# --- several outputs ---


def two_headed_model():
    """price = 3 x0, rent = 2 x2: each head has its own informative input."""
    import keras

    inputs = keras.Input((3,))
    price = keras.layers.Dense(1, use_bias=False, name="price")
    rent = keras.layers.Dense(1, use_bias=False, name="rent")
    model = keras.Model(inputs, [price(inputs), rent(inputs)])
    price.set_weights([np.array([[3.0], [0.0], [0.0]])])
    rent.set_weights([np.array([[0.0], [0.0], [2.0]])])
    return model


@pytest.fixture(scope="module")
def heads():
    estimator = from_keras(two_headed_model(), task="regression")
    X = np.random.default_rng(2).normal(size=(120, 3))
    return estimator, X, estimator.predict(X)


def test_one_result_per_head_plus_all_outputs(heads):
    estimator, X, Y = heads
    assert Y.shape == (120, 2)
    results = permutation_importance(estimator, X, Y, n_repeats=2, random_state=0)
    assert list(results) == ["price", "rent", "all outputs"]
    assert results["price"].ranking()[0] == "x0"
    assert results["rent"].ranking()[0] == "x2"
    for k, head in enumerate(["price", "rent"]):

        def on_head(est, X, y, k=k):
            return r2_score(y[:, k], est.predict(X)[:, k])

        naive = sklearn_permutation(
            estimator, X, Y, scoring=on_head, n_repeats=2, random_state=0
        )
        np.testing.assert_allclose(
            results[head].importances, naive.importances, atol=1e-5
        )
    whole = sklearn_permutation(estimator, X, Y, n_repeats=2, random_state=0)
    np.testing.assert_allclose(
        results["all outputs"].importances, whole.importances, atol=1e-5
    )


def test_heads_take_y_column_names_and_other_methods_split_too(heads):
    estimator, X, Y = heads
    frame = pd.DataFrame(Y, columns=["sale", "let"])
    results = permutation_importance(estimator, X, frame, random_state=0)
    assert list(results) == ["sale", "let", "all outputs"]
    probes = probe_importance(estimator, X)
    assert list(probes) == ["price", "rent"]
    np.testing.assert_allclose(
        probes["rent"].importances_mean,
        [0.0, 0.0, 2.0 * X[:, 2].std()],
        rtol=1e-4,
        atol=1e-6,
    )
    saliency = gradient_importance(estimator, X)
    np.testing.assert_allclose(
        saliency["price"].importances_mean, [3.0, 0.0, 0.0], atol=1e-6
    )
    with pytest.raises(ValueError, match="one column per unit"):
        permutation_importance(estimator, X, Y[:, 0], random_state=0)


def test_multioutput_scorers_work_through_the_cached_stand_in(heads):
    estimator, X, Y = heads
    results = permutation_importance(
        estimator, X, Y, scoring="neg_mean_squared_error", random_state=0
    )
    whole = sklearn_permutation(
        estimator, X, Y, scoring="neg_mean_squared_error", random_state=0
    )
    np.testing.assert_allclose(
        results["all outputs"].importances, whole.importances, rtol=1e-5, atol=1e-6
    )
    assert results["rent"].ranking()[0] == "x2"
    with pytest.raises(ValueError, match="scored per head with one metric"):
        permutation_importance(
            estimator, X, Y, scoring=["r2", "neg_mean_squared_error"]
        )


# --- weights on a Dense chain per input ---


def chain_per_input():
    """numeric -> Dense(3) ; code -> (no layer) ; Concatenate -> Dense(2) -> Dense(1),
    all linear: Olden's product is then the network's exact coefficients."""
    import keras

    keras.utils.set_random_seed(3)
    numeric = keras.Input((2,), name="numeric")
    code = keras.Input((1,), name="code")
    branch = keras.layers.Dense(3)(numeric)
    hidden = keras.layers.Dense(2)(keras.layers.Concatenate()([branch, code]))
    return keras.Model([numeric, code], keras.layers.Dense(1)(hidden))


def test_weights_read_a_dense_chain_per_input():
    from skimportance import weight_importance

    model = chain_per_input()
    estimator = from_keras(
        model, task="regression", inputs={"numeric": ["a", "b"], "code": ["c"]}
    )
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=list("abc"))
    olden = weight_importance(estimator, method="olden", X=X)
    # a linear network: f(x) - f(0) = x @ coefficients, read off by probing
    f = model.predict([np.zeros((4, 2)), np.zeros((4, 1))], verbose=0)
    eye = np.eye(3)
    probed = model.predict([eye[:, :2], eye[:, 2:]], verbose=0)[:, 0] - f[0, 0]
    # the model's inputs are in its own order: code sorts after numeric here
    assert olden.feature_names.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(olden.importances_mean, probed, rtol=1e-4, atol=1e-6)
    garson = weight_importance(estimator, method="garson", X=X)
    assert garson.importances_mean.sum() == pytest.approx(1.0)
    assert np.all(garson.importances_mean > 0)
    first = weight_importance(estimator, method="first_layer", X=X)
    import keras

    branch = [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    kernel = next(lay for lay in branch if lay.units == 3).kernel.numpy()
    np.testing.assert_allclose(first.importances_mean[:2], np.abs(kernel).sum(axis=1))


def test_weights_refuse_other_merges():
    import keras

    from skimportance import weight_importance

    a, b = keras.Input((2,), name="a"), keras.Input((2,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Add()([a, b])))
    estimator = from_keras(model, task="regression", inputs={"a": [0, 1], "b": [2, 3]})
    with pytest.raises(ValueError, match=r"one Concatenate.*this model has Add 'add"):
        weight_importance(estimator, method="olden", X=np.zeros((3, 4)))
