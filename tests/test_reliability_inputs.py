"""Issue 20: errors that point the right way, inputs scikit-learn produces by
default, heads of different kinds, a cluster left without workers.

Each test fails without its fix (the issue's examples, reduced to tiny models).
"""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skimportance import (
    conditional_importance,
    from_keras,
    permutation_importance,
    weight_importance,
)
from skimportance._engines import worker_watch
from skimportance._engines.dask_backend import WorkerLostError, raise_if_worker_lost

# --- item 2: no worker left ends the call, in bounded time ---------------------------


class _ClientWithoutWorkers:
    """What the watch asks of a dask Client, with no worker ever there."""

    def __init__(self):
        self.futures = {}
        self.cancelled = threading.Event()
        self.n_calls = 0

    def nthreads(self):
        self.n_calls += 1
        return {}

    def cancel(self, futures, force=False):
        self.cancelled_futures = list(futures)
        self.cancelled.set()


def test_a_call_left_without_workers_raises_worker_lost_in_bounded_time(monkeypatch):
    dask = pytest.importorskip("dask")
    monkeypatch.setattr(worker_watch, "POLL_S", 0.02)
    client = _ClientWithoutWorkers()
    futures = ["chunk-0", "chunk-1"]
    with dask.config.set({"skimportance.no-workers-timeout": "0.2s"}):
        with pytest.raises(WorkerLostError, match="No dask worker was left during f"):
            with worker_watch.watch_workers(client, futures) as watch:
                with raise_if_worker_lost("f", watch):
                    # the call waits on its futures; the watch cancels them
                    assert client.cancelled.wait(timeout=10), "never cancelled"
                    raise concurrent.futures.CancelledError()
    assert client.cancelled_futures == futures
    assert watch.timeout == pytest.approx(0.2)
    assert client.n_calls >= 2  # it waited for the timeout, polling


def test_the_watch_lets_a_call_with_workers_be(monkeypatch):
    dask = pytest.importorskip("dask")
    monkeypatch.setattr(worker_watch, "POLL_S", 0.02)
    client = _ClientWithoutWorkers()
    client.nthreads = lambda: {"tcp://worker": 1}
    with dask.config.set({"skimportance.no-workers-timeout": 0.05}):
        with worker_watch.watch_workers(client, ["chunk-0"]) as watch:
            threading.Event().wait(0.3)
    assert not watch.starved and not client.cancelled.is_set()


def test_the_default_timeout_is_the_documented_one():
    pytest.importorskip("dask")
    assert worker_watch.no_workers_timeout() == 60.0


# --- item 4: errors that point the right way -----------------------------------------


def _constant_columns_frame(n=80):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "flag": np.ones(n, bool),
            "level": pd.Categorical(["only"] * n),
            "z": rng.normal(size=n),
        }
    )
    return X, (X["a"] + X["z"]).to_numpy()


@pytest.mark.parametrize("constant", ["flag", "level"])
def test_a_constant_flag_or_category_has_conditional_importance_zero(constant):
    # scikit-learn's LogisticRegression refused the one class ("needs samples
    # of at least 2 classes"); a constant draws itself, like numeric constants.
    X, y = _constant_columns_frame()
    X = X[["a", constant, "z"]]
    encode = make_column_transformer(
        (OneHotEncoder(), [constant]), remainder="passthrough"
    )
    model = make_pipeline(encode, LinearRegression()).fit(X, y)

    result = conditional_importance(model, X, y, n_repeats=2, random_state=0)

    assert result.importances[1].tolist() == [0.0, 0.0]
    assert np.all(result.importances_mean[[0, 2]] > 0.5)


@pytest.fixture(scope="module")
def sequence_model():
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    estimator = from_keras(model, task="regression")
    X = rng.normal(size=(40, 5, 3))
    return estimator, X, estimator.predict(X)


def test_flat_rows_for_a_sequence_model_ask_for_its_shape(sequence_model):
    estimator, X, y = sequence_model
    # was: "X has 15 features, but ... is expecting 5 features as input"
    with pytest.raises(ValueError, match=r"pass X of shape \(n_samples, 5, 3\)"):
        permutation_importance(estimator, X.reshape(len(X), 15), y)
    with pytest.raises(ValueError, match=r"X.reshape\(len\(X\), 5, 3\)"):
        conditional_importance(estimator, X.reshape(len(X), 15), y)


@pytest.mark.parametrize("groups", ["auto", "inputs"])
def test_automatic_groups_on_a_sequence_are_refused_in_words(sequence_model, groups):
    estimator, X, y = sequence_model
    # was: "... or 'auto', got 'auto'"
    with pytest.raises(ValueError, match="groups the columns of a 2-D X") as info:
        permutation_importance(estimator, X, y, feature_groups=groups)
    assert "channel 0" in str(info.value)


def test_conditional_importance_on_sequences_takes_sequence_fit_rows(sequence_model):
    estimator, X, y = sequence_model
    # was scikit-learn's raw "Found array with dim 3" for X_fit
    given = conditional_importance(
        estimator, X, y, X_fit=X, n_repeats=2, random_state=0
    )
    default = conditional_importance(estimator, X, y, n_repeats=2, random_state=0)
    assert given.feature_names.tolist() == ["channel 0", "channel 1", "channel 2"]
    np.testing.assert_array_equal(given.importances, default.importances)
    with pytest.raises(ValueError, match=r"X_fit has rows of shape \(3, 5\)"):
        conditional_importance(estimator, X, y, X_fit=X.transpose(0, 2, 1))


@pytest.mark.filterwarnings("ignore:No scaling step")
def test_olden_reads_an_input_standardised_straight_into_the_concatenate():
    import keras

    # was: "Cannot fold normalisation layer ... between two nonlinearities"
    def two_inputs(normalise: bool):
        a, b = keras.Input((2,), name="num"), keras.Input((3,), name="cat")
        first = (
            keras.layers.Normalization(mean=0.0, variance=1.0)(a) if normalise else a
        )
        hidden = keras.layers.Dense(4, activation="tanh")(
            keras.layers.Concatenate()([first, b])
        )
        return keras.Model([a, b], keras.layers.Dense(1)(hidden))

    rng = np.random.default_rng(0)
    plain, normalised = two_inputs(False), two_inputs(True)
    plain.set_weights([rng.normal(size=w.shape) for w in plain.get_weights()])
    dense = [
        [la for la in m.layers if isinstance(la, keras.layers.Dense)]
        for m in (plain, normalised)
    ]
    for source, target in zip(*dense):
        target.set_weights(source.get_weights())
    inputs = {"num": ["a", "b"], "cat": ["c", "d", "e"]}
    expected = weight_importance(
        from_keras(plain, task="regression", inputs=inputs), method="olden"
    )
    got = weight_importance(
        from_keras(normalised, task="regression", inputs=inputs), method="olden"
    )
    np.testing.assert_allclose(got.importances, expected.importances, rtol=1e-6)
    assert got.feature_names.tolist() == list("abcde")


def test_an_inputs_mapping_naming_too_few_columns_says_which_input():
    import keras

    a, b = keras.Input((2,), name="num"), keras.Input((3,), name="cat")
    hidden = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], keras.layers.Dense(1)(hidden))
    # was: IndexError while building the message about unmapped columns
    with pytest.raises(ValueError, match=r"Input 'num' takes 2 value\(s\) per row"):
        from_keras(model, task="regression", inputs={"num": ["a"], "cat": ["b", "c"]})


# --- item 5: inputs scikit-learn produces by default ----------------------------------


@pytest.fixture(scope="module")
def sparse_pipeline():
    from conftest import make_regressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"c": rng.choice(list("abcd"), 120), "x": rng.normal(size=120)})
    y = (X["c"] == "a") + X["x"]
    encode = make_column_transformer(
        (OneHotEncoder(), ["c"]), remainder="passthrough", sparse_threshold=1.0
    )
    model = make_pipeline(encode, make_regressor(epochs=2)).fit(X, y)
    return model, X, y


def test_sparse_one_hot_output_is_made_dense_in_chunks_within_the_budget(
    sparse_pipeline, monkeypatch
):
    import scipy.sparse as sp
    import sklearn
    from scikeras.wrappers import BaseWrapper

    model, X, y = sparse_pipeline
    encoded = model[:-1].transform(X)
    assert sp.issparse(encoded)  # was: "Sparse input is not supported"
    dense = model[-1].predict(encoded.toarray())
    chunks = []
    original = BaseWrapper._predict_raw

    def counted(self, X, **kwargs):
        chunks.append(X.shape)
        return original(self, X, **kwargs)

    monkeypatch.setattr(BaseWrapper, "_predict_raw", counted)
    # 1e-3 MiB: 1048 bytes, 17 rows of 5 columns in float64 and float32
    with sklearn.config_context(working_memory=1e-3):
        predicted = model.predict(X)
    assert [shape[0] for shape in chunks] == [17] * 7 + [1]
    atol = 1e-6 * np.abs(dense).max()  # float32 rounding, other batches
    np.testing.assert_allclose(predicted, dense, rtol=0, atol=atol)
    result = permutation_importance(model, X, y, n_repeats=2, random_state=0)
    assert result.feature_names.tolist() == ["c", "x"]


def test_float_labels_score_a_from_keras_classifier_as_integer_labels():
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    classifier = from_keras(model, task="classification")
    X = rng.normal(size=(60, 3))
    labels = (X[:, 0] > 0).astype(int)
    # was: "Got y with dtype float64, but this KerasClassifier expected int64"
    assert classifier.score(X, labels.astype(float)) == classifier.score(X, labels)
    as_float = permutation_importance(
        classifier, X, labels.astype(float), n_repeats=2, random_state=0
    )
    as_int = permutation_importance(classifier, X, labels, n_repeats=2, random_state=0)
    np.testing.assert_array_equal(as_float.importances, as_int.importances)
    with pytest.raises(ValueError, match="float64"):  # 0.5 is no class
        classifier.score(X, np.where(labels, 0.5, 0.0))


# --- item 7: no retracing noise ------------------------------------------------------


def test_cross_validation_of_a_wrapper_logs_no_retracing_warning():
    import logging

    from conftest import make_regressor

    from skimportance import cross_validate_importance

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    X, y = _constant_columns_frame(60)
    X = X[["a", "z"]].to_numpy()
    logger = logging.getLogger("tensorflow")
    handler = Collect()
    logger.addHandler(handler)
    try:
        cross_validate_importance(
            make_regressor(epochs=1, model__hidden=(4,)),
            X,
            y,
            cv=5,
            n_repeats=1,
            random_state=0,
        )
    finally:
        logger.removeHandler(handler)
    assert not [m for m in messages if "retracing" in m], messages
    assert not logger.filters  # the filter is gone after the call


# --- item 6: two heads of different kinds ---------------------------------------------


@pytest.fixture(scope="module")
def two_kinds_of_heads():
    import keras

    rng = np.random.default_rng(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="tanh")(inputs)
    price = keras.layers.Dense(1, name="price")(hidden)
    churn = keras.layers.Dense(1, activation="sigmoid", name="churn")(hidden)
    model = keras.Model(inputs, [price, churn])
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    estimator = from_keras(model, task="regression")
    X = rng.normal(size=(80, 3))
    predicted = estimator.predict(X)
    y = pd.DataFrame(
        {
            "price": predicted[:, 0] + 0.1 * rng.normal(size=80),
            "churn": (predicted[:, 1] > rng.uniform(size=80)).astype(int),
        }
    )
    return estimator, X, y


def test_y_columns_in_another_order_are_matched_to_the_heads_by_name(
    two_kinds_of_heads,
):
    estimator, X, y = two_kinds_of_heads
    ordered = permutation_importance(estimator, X, y, n_repeats=2, random_state=0)
    swapped = permutation_importance(
        estimator, X, y[["churn", "price"]], n_repeats=2, random_state=0
    )
    for head in ("price", "churn", "all outputs"):  # was: paired by position
        np.testing.assert_array_equal(
            swapped[head].importances, ordered[head].importances
        )
    with pytest.raises(ValueError, match=r"name some of the model's output heads"):
        permutation_importance(estimator, X, y.rename(columns={"churn": "c"}))


def test_a_binary_head_is_scored_as_a_classifier_chosen_with_output(
    two_kinds_of_heads,
):
    from sklearn.metrics import roc_auc_score

    estimator, X, y = two_kinds_of_heads
    # was: "_HeadView has none of the following attributes"; and output= refused
    with pytest.raises(ValueError, match=r"output heads \['price'\] do not give"):
        permutation_importance(estimator, X, y, scoring="roc_auc")
    result = permutation_importance(
        estimator, X, y, scoring="roc_auc", output="churn", n_repeats=2, random_state=0
    )
    expected = roc_auc_score(y["churn"], estimator.predict(X)[:, 1])
    assert result.baseline_score == pytest.approx(expected, rel=1e-12)
    by_position = conditional_importance(
        estimator, X, y, output=0, n_repeats=2, random_state=0
    )
    both = conditional_importance(estimator, X, y, n_repeats=2, random_state=0)
    np.testing.assert_array_equal(by_position.importances, both["price"].importances)
    with pytest.raises(ValueError, match="none of the model's output heads"):
        permutation_importance(estimator, X, y, output="profit")


# --- item 8: exactly zero by construction --------------------------------------------


@pytest.mark.parametrize("algorithm", ["exact", "incremental"])
def test_a_column_the_network_ignores_gets_no_forward_pass(algorithm, monkeypatch):
    import keras

    from skimportance._model import LocatedModel

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    weights = [rng.normal(size=w.shape) for w in model.get_weights()]
    weights[0][1] = 0.0  # no path from column 1 to the output
    model.set_weights(weights)
    estimator = from_keras(model, task="regression")
    X = rng.normal(size=(50, 3))
    y = estimator.predict(X) + rng.normal(size=50)
    rows = []
    forward = LocatedModel.forward

    def counted(self, X_model, batch_size=None):
        rows.append(len(X_model))
        return forward(self, X_model, batch_size)

    monkeypatch.setattr(LocatedModel, "forward", counted)
    result = permutation_importance(
        estimator, X, y, n_repeats=2, random_state=0, algorithm=algorithm
    )
    assert result.importances[1].tolist() == [0.0, 0.0]
    assert np.all(result.importances[[0, 2]] != 0.0)
    if algorithm == "exact":  # the baseline, then columns 0 and 2 only
        assert sum(rows) == 50 + 2 * 2 * 50
