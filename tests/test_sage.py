"""SAGE (sage_importance): truth, efficiency, the reference library, engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import (
    ImportanceDisplay,
    ImportanceEstimator,
    cross_validate_importance,
    from_keras,
    sage_importance,
)
from skimportance._methods import get_spec
from skimportance._model import LocatedModel


@pytest.fixture(scope="module")
def linear():
    """y = 3 x0 + x1 + noise; x2, x3 pure noise; x1 correlated with x0."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    X[:, 1] += 0.6 * X[:, 0]
    y = 3 * X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=300)
    return X, y, Ridge().fit(X, y)


def fixed_network(n_inputs, n_outputs=1, activation=None, seed=0):
    """A small tanh-relu network with seeded weights (no training needed)."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((n_inputs,)),
            keras.layers.Dense(12, activation="tanh"),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(n_outputs, activation=activation),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([0.7 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


# --- the values ------------------------------------------------------------------


def test_known_truth_is_ranked_first(linear):
    X, y, model = linear
    result = sage_importance(model, X, y, random_state=0)
    assert result.method == "sage"
    assert result.ranking().tolist()[:2] == ["x0", "x1"]
    values, errors = result.importances_mean, result.details["standard_errors"]
    assert np.all(np.abs(values[2:]) < 3 * errors[2:] + 1e-3)  # noise: about 0
    assert result.details["converged"]
    assert result.details["convergence_ratio"] < 0.025
    # One column per antithetic pair of walks.
    assert result.importances.shape == (4, result.details["n_permutations"] // 2)


def test_efficiency_holds_within_the_standard_error(linear):
    X, y, model = linear
    background = X[:40]
    result = sage_importance(model, X, y, background=background, random_state=1)
    details = result.details
    # The ends of every walk, computed with scikit-learn's own metric.
    model_loss = mean_squared_error(y, model.predict(X))
    mean_prediction = np.full(len(y), model.predict(background).mean())
    assert details["model_loss"] == pytest.approx(model_loss, rel=1e-10)
    assert details["mean_prediction_loss"] == pytest.approx(
        mean_squared_error(y, mean_prediction), rel=1e-10
    )
    explained = details["mean_prediction_loss"] - details["model_loss"]
    # The walks' plain means add up to the explained loss within their
    # standard error; the control variate makes the values add up exactly.
    assert abs(details["uncorrected_efficiency_gap"]) <= 3 * details["efficiency_se"]
    assert result.importances_mean.sum() == pytest.approx(explained, rel=1e-10)
    assert abs(details["efficiency_gap"]) <= 1e-10 * explained
    assert background.shape == (40, 4)  # inputs untouched


def test_efficiency_of_a_classifier_under_log_loss():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=200) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    result = sage_importance(model, X, y, background=X[:30], random_state=0)
    assert result.details["loss"] == "log_loss"
    assert result.details["model_loss"] == pytest.approx(
        log_loss(y, model.predict_proba(X))
    )
    details = result.details
    assert abs(details["uncorrected_efficiency_gap"]) <= 3 * details["efficiency_se"]
    assert result.ranking()[0] == "x0"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_values_agree_with_sage_importance(task):
    sage = pytest.importorskip("sage")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    X[:, 1] += 0.8 * X[:, 0]
    signal = 2 * X[:, 0] + X[:, 1] + X[:, 2] * X[:, 3]
    background = X[:30]
    if task == "regression":
        y = signal + 0.5 * rng.normal(size=300)
        model, loss = Ridge().fit(X, y), "mse"
    else:
        y = (signal + 0.5 * rng.normal(size=300) > 0).astype(int)
        model, loss = LogisticRegression().fit(X, y), "cross entropy"
    ours = sage_importance(
        model, X, y, background=background, convergence=0.01, random_state=0
    )
    estimator = sage.PermutationEstimator(
        sage.MarginalImputer(model, background), loss, random_state=0
    )
    theirs = estimator(X, y, bar=False, thresh=0.01, batch_size=256)
    error = np.hypot(ours.details["standard_errors"], theirs.std)
    assert np.all(np.abs(ours.importances_mean - theirs.values) <= 4 * error + 1e-4)


# --- the engines -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_exact_and_incremental_engines_agree_on_a_network():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 5)).astype(np.float32)
    estimator = from_keras(fixed_network(5), task="regression")
    y = estimator.predict(X) + 0.1 * rng.normal(size=80)
    runs = {
        algorithm: sage_importance(
            estimator,
            X,
            y,
            background=X[:12],
            algorithm=algorithm,
            max_permutations=256,
            random_state=0,
        )
        for algorithm in ("exact", "incremental")
    }
    exact, incremental = runs["exact"], runs["incremental"]
    assert exact.details["algorithm"] == "exact"
    assert incremental.details["algorithm"] == "incremental"
    assert exact.importances.shape == incremental.importances.shape
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=1e-5)
    details = exact.details
    assert abs(details["uncorrected_efficiency_gap"]) <= 3 * details["efficiency_se"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_engines_agree_through_a_pipeline_on_raw_columns():
    """A DataFrame with a categorical column, one-hot encoded in a Pipeline:
    SAGE reports the raw columns, and both engines agree."""
    rng = np.random.RandomState(1)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=60),
            "colour": rng.choice(["red", "green", "blue"], size=60),
            "weight": rng.normal(size=60),
        }
    )
    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size", "weight"]),
            ("cat", OneHotEncoder(sparse_output=False), ["colour"]),
        ]
    ).fit(frame)
    network = from_keras(
        fixed_network(5, 3, "softmax"),
        task="classification",
        classes=np.array(["a", "b", "c"]),
    )
    pipeline = make_pipeline(encode, network)
    y = pipeline.predict(frame)
    runs = [
        sage_importance(
            pipeline,
            frame,
            y,
            background=frame.iloc[:10],
            algorithm=algorithm,
            max_permutations=128,
            random_state=0,
        )
        for algorithm in ("exact", "incremental")
    ]
    assert runs[0].feature_names.tolist() == ["size", "colour", "weight"]
    assert runs[1].details["algorithm"] == "incremental"
    np.testing.assert_allclose(runs[1].importances, runs[0].importances, atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_feature_groups_of_one_column_reproduce_the_ungrouped_values(linear):
    X, y, model = linear
    plain = sage_importance(model, X, y, max_permutations=256, random_state=0)
    grouped = sage_importance(
        model,
        X,
        y,
        max_permutations=256,
        random_state=0,
        feature_groups=[[0], [1], [2], [3]],
    )
    np.testing.assert_array_equal(grouped.importances, plain.importances)
    pairs = sage_importance(
        model, X, y, random_state=0, feature_groups={"signal": [0, 1], "noise": [2, 3]}
    )
    assert pairs.ranking().tolist() == ["signal", "noise"]
    details = pairs.details
    assert abs(details["uncorrected_efficiency_gap"]) <= 3 * details["efficiency_se"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_reproducible_and_independent_of_chunks_and_jobs(linear):
    X, y, model = linear
    kwargs = dict(background=X[:20], max_permutations=300, random_state=3)
    first = sage_importance(model, X, y, **kwargs)
    np.testing.assert_array_equal(
        sage_importance(model, X, y, **kwargs).importances, first.importances
    )
    with config_context(working_memory=0.05):  # chunks of a few walks each
        chunked = sage_importance(model, X, y, n_jobs=2, **kwargs)
    np.testing.assert_allclose(chunked.importances, first.importances, rtol=1e-12)
    other = sage_importance(model, X, y, **{**kwargs, "random_state": 4})
    assert not np.array_equal(other.importances, first.importances)


def test_not_converging_says_so(linear):
    X, y, model = linear
    with pytest.warns(ConvergenceWarning, match="did not converge within"):
        result = sage_importance(
            model, X, y, max_permutations=20, convergence=1e-4, random_state=0
        )
    assert result.details["n_permutations"] == 20
    assert not result.details["converged"]


def test_adapters_pass_the_training_rows_as_background(linear):
    X, y, _ = linear
    spec = get_spec("sage")
    assert spec.fit_data == "background" and spec.needs_y and not spec.tested
    result = cross_validate_importance(
        Ridge(), X, y, cv=2, method="sage", random_state=0
    )
    assert result.ranking()[0] == "x0"
    assert "drawn from given" in result.fold_results[0].details["background"]
    # The rows ImportanceEstimator fitted on are the background too.
    meta = ImportanceEstimator(Ridge(), method="sage", random_state=0).fit(X, y)
    assert np.argmax(meta.feature_importances_) == 0
    display = ImportanceDisplay.from_estimator(
        meta.estimator_, X, y, method="sage", random_state=0
    )
    assert display.results["sage"].ranking()[0] == "x0"


# --- bad input, refused before any prediction ----------------------------------------


@pytest.fixture
def keras_case(monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 4))
    estimator = from_keras(fixed_network(4), task="regression")
    y = rng.normal(size=30)

    def refuse(*args, **kwargs):
        raise AssertionError("data reached the Keras model")

    monkeypatch.setattr(LocatedModel, "forward", refuse)
    return estimator, X, y


@pytest.mark.parametrize(
    "params, match",
    [
        ({"background": np.zeros((5, 3))}, r"background must have the 4 columns of X"),
        ({"background": np.zeros((0, 4))}, "background has no rows"),
        (
            {"background": np.where(np.eye(4, dtype=bool), np.nan, 0.0)},
            "background contains NaN",
        ),
        ({"convergence": 0.0}, "convergence == 0.0, must be > 0"),
        ({"convergence": -0.1}, "convergence == -0.1, must be > 0"),
        ({"convergence": 1.5}, "convergence == 1.5, must be < 1"),
        ({"imputer": "conditional"}, "not supported.*Supported: imputer='marginal'"),
        ({"imputer": "gaussian"}, "imputer must be one of 'marginal'"),
        ({"max_permutations": 0}, "max_permutations == 0, must be >= 1"),
        ({"loss": "zero_one"}, "averaged over background rows"),
        ({"algorithm": "fast"}, "algorithm must be one of"),
    ],
)
def test_bad_input_is_refused_before_any_prediction(keras_case, params, match):
    estimator, X, y = keras_case
    with pytest.raises(ValueError, match=match):
        sage_importance(estimator, X, y, **params)


def test_missing_y_and_mismatched_frames_are_refused(keras_case):
    estimator, X, y = keras_case
    with pytest.raises(ValueError, match="needs y, the true targets"):
        sage_importance(estimator, X, None)
    frame = pd.DataFrame(X, columns=list("abcd"))
    named = from_keras(fixed_network(4), task="regression", feature_names=list("abcd"))
    other = frame.rename(columns={"d": "e"})
    with pytest.raises(ValueError, match=r"columns of X.*\['a', 'b', 'c', 'e'\]"):
        sage_importance(named, frame, y, background=other)
    with pytest.raises(ValueError, match="same kind as X"):
        sage_importance(named, frame, y, background=X)


def test_coalitions_over_the_memory_budget_are_refused(keras_case):
    estimator, X, y = keras_case
    with config_context(working_memory=0.01):
        with pytest.raises(ValueError, match=r"One row's 3 coalitions x 30 background"):
            sage_importance(estimator, X, y)
