"""The incremental first-layer engine: the exact engine's and scikit-learn's numbers.

``algorithm="incremental"`` computes the first Dense layer once and adds each
permuted group's rank-k change; these tests compare it with
``algorithm="exact"`` and with ``sklearn.inspection.permutation_importance``
on the same fitted estimators (groups, DataFrames, one-hot pipelines,
classifiers), check that it refuses or, under ``"auto"``, steps aside with
unchanged numbers where it does not apply (preprocessing that mixes columns or
depends on the batch, networks that do not start with Dense), and that
``"auto"`` picks it by its FLOP estimate.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import make_column_transformer
from sklearn.decomposition import PCA
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import from_keras, permutation_importance
from skimportance._engines.network_split import split_network
from skimportance._engines.plan import ShuffledColumns, draw_permutation_plan
from skimportance._engines.run import prepare_run

ATOL = 1e-5  # float32 rounding, the contract's tolerance


def network(n_inputs, *, hidden=(16, 8), seed=0, first=None, batch_norm=False):
    """A seeded MLP (no training): Dense first unless ``first`` says otherwise."""
    import keras

    rng = np.random.default_rng(seed)
    layers = [keras.Input((n_inputs,))]
    layers.append(first or keras.layers.Dense(hidden[0], activation="tanh"))
    if batch_norm:
        layers += [keras.layers.BatchNormalization(), keras.layers.Activation("relu")]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden[1:]]
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()]
    )
    if batch_norm:  # a moving variance must stay positive
        weights = model.get_weights()
        weights[5] = np.abs(weights[5]) + 0.5
        model.set_weights(weights)
    return model


def regression_data(n_rows, n_features, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(scale=0.3, size=n_rows)
    return X, y


def run_all(estimator, X, y, *, sklearn=False, **kwargs):
    """Exact, incremental and (if asked) scikit-learn's results for the same
    arguments. The exact engine gives scikit-learn's numbers (test_permutation
    checks it), so most tests compare with it: scikit-learn's predict-per-slice
    loop is slow."""
    exact = permutation_importance(
        estimator, X, y, algorithm="exact", **copy.deepcopy(kwargs)
    )
    incremental = permutation_importance(
        estimator, X, y, algorithm="incremental", **copy.deepcopy(kwargs)
    )
    theirs = (
        sklearn_permutation_importance(estimator, X, y, **kwargs) if sklearn else exact
    )
    return exact, incremental, theirs


@pytest.fixture
def auto_takes_incremental(monkeypatch):
    """Let ``algorithm="auto"`` pick the incremental engine on small problems
    too, wherever it applies, so that its fallbacks can be seen."""
    from skimportance._engines import incremental as _incremental
    from skimportance._engines import keras_engine as _keras_engine

    monkeypatch.setattr(_keras_engine, "AUTO_FLOP_RATIO", 1.0)
    monkeypatch.setattr(_incremental, "FIXED_COST_FLOPS", 0)


@pytest.fixture(scope="module")
def wide():
    X, y = regression_data(150, 16)
    return from_keras(network(16), task="regression"), X, y


# --- equal numbers -----------------------------------------------------------------


def test_incremental_equals_exact_and_scikit_learn(wide):
    reg, X, y = wide
    exact, incremental, theirs = run_all(
        reg, X, y, n_repeats=2, random_state=0, sklearn=True
    )
    assert exact.details["algorithm"] == "exact"
    assert incremental.details["algorithm"] == "incremental"
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=ATOL)
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)
    assert incremental.baseline_score == exact.baseline_score


@pytest.mark.parametrize(
    "scoring", [None, "neg_mean_absolute_error", ["r2", "neg_max_error"]]
)
def test_scorers_max_samples_and_weights(wide, scoring):
    reg, X, y = wide
    weights = np.random.default_rng(3).uniform(0.5, 2, size=len(y))
    kwargs = dict(
        n_repeats=2,
        random_state=np.random.RandomState(5),
        max_samples=0.7,
        sample_weight=weights,
        scoring=scoring,
    )
    exact, incremental, theirs = run_all(reg, X, y, **kwargs)
    if isinstance(scoring, list):
        for name in scoring:
            np.testing.assert_allclose(
                incremental[name].importances, theirs[name].importances, atol=ATOL
            )
            assert incremental[name].details["algorithm"] == "incremental"
    else:
        np.testing.assert_allclose(
            incremental.importances, theirs.importances, atol=ATOL
        )


def test_p_values_equal_the_exact_engines(wide):
    # The per-row loss differences behind the p-values come from the same
    # predictions the scores do, so both engines give the same p-values.
    reg, X, y = wide
    exact, incremental, _ = run_all(reg, X, y, n_repeats=3, random_state=0)
    np.testing.assert_allclose(
        incremental.loss_differences, exact.loss_differences, atol=ATOL
    )
    np.testing.assert_allclose(incremental.pvalues(), exact.pvalues(), atol=1e-4)
    assert incremental.details["loss"] == "squared_error"


def test_a_column_that_moves_nothing_gets_exactly_zero_and_p_one(wide):
    # A constant column changes no model column when shuffled: exactly 0, as
    # on the exact engine, not the compiled tail's float32 rounding of 0
    # (which a t-test across rows would read as a signal or its opposite).
    reg, X, y = wide
    X = X.copy()
    X[:, 4] = 1.5
    exact, incremental, _ = run_all(reg, X, y, n_repeats=3, random_state=0)
    assert incremental.details["algorithm"] == "incremental"
    for result in (exact, incremental):
        assert np.all(result.importances[4] == 0)
        assert np.all(result.loss_differences[4] == 0)
        assert result.pvalues()["x4"] == 1.0


def test_conditional_importance_runs_on_the_incremental_engine(wide):
    from skimportance import conditional_importance

    reg, X, y = wide
    kwargs = dict(n_repeats=2, random_state=0, X_fit=X)
    exact = conditional_importance(reg, X, y, algorithm="exact", **kwargs)
    incremental = conditional_importance(reg, X, y, algorithm="incremental", **kwargs)
    assert incremental.details["algorithm"] == "incremental"
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=ATOL)
    np.testing.assert_allclose(
        incremental.loss_differences, exact.loss_differences, atol=ATOL
    )


def test_groups_of_mixed_widths(wide):
    reg, X, y = wide
    groups = {"a": [0, 1, 2], "b": [5], "c": list(range(6, 14)), "d": [15, 3]}
    exact, incremental, _ = run_all(
        reg, X, y, n_repeats=3, random_state=0, feature_groups=groups
    )
    assert incremental.feature_names.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=ATOL)


def test_batch_normalization_after_the_first_layer():
    X, y = regression_data(120, 12)
    reg = from_keras(network(12, batch_norm=True), task="regression")
    exact, incremental, theirs = run_all(reg, X, y, n_repeats=2, random_state=0)
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)


def mixed_frame(n_rows=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "num": rng.normal(size=n_rows),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n_rows)),
            "town": rng.choice(["u", "v", "w", "x", "z"], n_rows).astype(object),
            "count": rng.integers(0, 5, n_rows),
            "rare": rng.choice(["common", "rare"], n_rows, p=[0.97, 0.03]),
        }
    )
    y = X["num"] + 2 * (X["colour"] == "red") + (X["town"] == "u") + 0.1 * X["count"]
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def one_hot_pipeline():
    """ColumnTransformer (scaler + sparse one-hot) in front of a trained network."""
    from conftest import make_regressor

    X, y = mixed_frame()
    encode = make_column_transformer(
        (StandardScaler(), ["num", "count"]),
        (OneHotEncoder(handle_unknown="ignore"), ["colour", "town", "rare"]),
    )
    pipeline = make_pipeline(encode, make_regressor(epochs=2)).fit(X, y)
    return pipeline, X, y


def test_dataframe_pipeline_with_one_hot_encoding(one_hot_pipeline):
    pipeline, X, y = one_hot_pipeline
    exact, incremental, theirs = run_all(
        pipeline, X, y, n_repeats=2, random_state=0, sklearn=True
    )
    assert incremental.details["algorithm"] == "incremental"
    assert incremental.feature_names.tolist() == list(X.columns)
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=ATOL)


def test_one_hot_pipeline_with_groups(one_hot_pipeline):
    pipeline, X, y = one_hot_pipeline
    groups = {"place": ["town", "rare"], "numbers": ["num", "count"], "c": ["colour"]}
    exact, incremental, _ = run_all(
        pipeline, X, y, n_repeats=2, random_state=1, feature_groups=groups
    )
    np.testing.assert_allclose(incremental.importances, exact.importances, atol=ATOL)


def test_multiclass_classifier(multiclass_classifier, wine):
    X, y = wine
    for scoring in (None, "neg_log_loss"):
        _, incremental, theirs = run_all(
            multiclass_classifier, X, y, n_repeats=1, random_state=2, scoring=scoring
        )
        np.testing.assert_allclose(
            incremental.importances, theirs.importances, atol=ATOL
        )


# --- scorers that need the real rows -------------------------------------------------


def first_half_r2(estimator, X, y):
    """Predicts on other rows than it was given: the stand-in cannot answer."""
    half = len(y) // 2
    return r2_score(y[:half], estimator.predict(np.asarray(X)[:half]))


def r2_plus_mean_of_x(estimator, X, y):
    """Reads X itself: it must be handed the real permuted rows."""
    return r2_score(y, estimator.predict(X)) + float(np.mean(np.asarray(X)[:, 0]))


@pytest.mark.parametrize("scoring", [first_half_r2, r2_plus_mean_of_x])
def test_callable_scorers_get_the_real_rows(wide, scoring):
    reg, X, y = wide
    _, incremental, theirs = run_all(
        reg, X, y, n_repeats=1, random_state=0, scoring=scoring, sklearn=True
    )
    assert incremental.details["algorithm"] == "incremental"
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)


class ScoredPipeline(type(make_pipeline(StandardScaler()))):
    """A Pipeline whose own ``score`` the stand-in does not know."""

    def score(self, X, y=None, sample_weight=None, **params):
        return r2_score(y, self.predict(X))


def test_unknown_score_method_is_answered_by_the_estimator(wide):
    reg, X, y = wide
    pipeline = ScoredPipeline([("scale", StandardScaler().fit(X)), ("net", reg)])
    _, incremental, theirs = run_all(pipeline, X, y, n_repeats=1, random_state=0)
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)


# --- where it does not apply ---------------------------------------------------------


class BatchCentering(TransformerMixin, BaseEstimator):
    """Subtracts the mean of whatever batch it is shown: not row-wise."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        return X - X.mean(axis=0) * len(X) / 100


@pytest.mark.parametrize(
    "preprocessing, reason",
    [
        (PCA(n_components=16), "not column-separable"),
        (BatchCentering(), "not row-wise"),
    ],
)
def test_preprocessing_that_mixes_rows_or_columns_falls_back(
    wide, preprocessing, reason, auto_takes_incremental
):
    reg, X, y = wide
    pipeline = make_pipeline(preprocessing.fit(X), reg)
    kwargs = dict(n_repeats=2, random_state=0)
    exact = permutation_importance(pipeline, X, y, algorithm="exact", **kwargs)
    auto = permutation_importance(pipeline, X, y, algorithm="auto", **kwargs)
    assert auto.details["algorithm"] == "exact"
    assert reason in auto.details["incremental_unavailable"]
    np.testing.assert_array_equal(auto.importances, exact.importances)
    with pytest.raises(
        ValueError, match=f"algorithm='incremental' does not apply: .*{reason}"
    ):
        permutation_importance(pipeline, X, y, algorithm="incremental", **kwargs)


def test_networks_that_do_not_start_with_dense(wide):
    import keras

    _, X, y = wide
    normalized = network(16, first=keras.layers.LayerNormalization())
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    skip = keras.layers.Dense(1)(keras.layers.Concatenate()([hidden, inputs]))
    shortcut = keras.Model(inputs, skip)
    for model, reason in [
        (normalized, "first layer is LayerNormalization, not Dense"),
        (shortcut, "input must feed exactly one layer"),
    ]:
        reg = from_keras(model, task="regression")
        with pytest.raises(ValueError, match=reason):
            permutation_importance(reg, X, y, n_repeats=1, algorithm="incremental")
        auto = permutation_importance(reg, X, y, n_repeats=1, algorithm="auto")
        assert reason in auto.details["incremental_unavailable"]


def test_a_functional_network_with_a_dense_entry_is_split():
    import keras

    inputs = keras.Input((30,))
    first = keras.layers.Dense(8, activation="relu")(inputs)
    left = keras.layers.Dense(4, activation="tanh")(first)
    right = keras.layers.Dense(4)(first)
    model = keras.Model(
        inputs, keras.layers.Dense(1)(keras.layers.Add()([left, right]))
    )
    X, y = regression_data(100, 30)
    reg = from_keras(model, task="regression")
    _, incremental, theirs = run_all(reg, X, y, n_repeats=2, random_state=0)
    np.testing.assert_allclose(incremental.importances, theirs.importances, atol=ATOL)


def test_generic_estimators_refuse_incremental(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="needs a Keras model inside the estimator"):
        permutation_importance(Ridge().fit(X, y), X, y, algorithm="incremental")
    auto = permutation_importance(Ridge().fit(X, y), X, y, n_repeats=1)
    assert auto.details["algorithm"] == "exact"


def test_unknown_algorithm_is_refused(wide):
    reg, X, y = wide
    with pytest.raises(ValueError, match="algorithm must be one of 'auto', 'exact'"):
        permutation_importance(reg, X, y, algorithm="fast")


# --- the auto choice -----------------------------------------------------------------


def test_auto_follows_the_flop_estimate():
    X_narrow, y_narrow = regression_data(100, 4)
    narrow = permutation_importance(
        from_keras(network(4), task="regression"), X_narrow, y_narrow, n_repeats=2
    )
    X_wide, y_wide = regression_data(2000, 400)
    wide = permutation_importance(
        from_keras(network(400, hidden=(64, 8)), task="regression"),
        X_wide,
        y_wide,
        n_repeats=2,
    )
    assert narrow.details["algorithm"] == "exact"
    assert wide.details["algorithm"] == "incremental"
    for result, cheaper in [(narrow, False), (wide, True)]:
        flops = result.details["flops"]
        assert (flops["incremental"] <= 0.5 * flops["exact"]) is cheaper


def test_the_tail_is_compiled_once(wide):
    reg, X, y = wide
    for n_repeats, groups in [(1, None), (3, [[0, 1], [2]]), (2, None)]:
        permutation_importance(
            reg,
            X[: 40 * n_repeats],
            y[: 40 * n_repeats],
            n_repeats=n_repeats,
            feature_groups=groups,
            algorithm="incremental",
        )
    compiled = split_network(reg.model_).tail.compiled
    assert compiled.experimental_get_tracing_count() == 1


# --- any perturbation, through values() ----------------------------------------------


class NoisyColumns:
    """Another perturbation: a group's columns plus repeat-specific noise, and
    at repeat 0 column 0 unchanged (so its model column moves only later)."""

    def __init__(self, groups):
        self.groups = groups

    def values(self, X_sub, group, repeat):
        columns = self.groups[group]
        noise = np.random.default_rng([group, repeat]).normal(
            size=(len(X_sub), len(columns))
        )
        if repeat == 0 and 0 in columns:
            noise[:, list(columns).index(0)] = 0.0
        return X_sub[:, columns] + noise


def scores_with(perturbation, reg, X, y, algorithm, *, n_repeats, feature_groups=None):
    """(scores grid, engine details) of a run perturbed by
    ``perturbation(groups)`` on the engine ``algorithm``."""
    run = prepare_run(reg, X, y, caller="test", feature_groups=feature_groups)
    plan = draw_permutation_plan(0, len(X), run.n_rows, n_repeats)
    scored = run.scores(
        plan,
        perturbation(run.groups),
        batch_size=None,
        n_jobs=None,
        verbose=0,
        desc="",
        algorithm=algorithm,
    )
    return np.asarray(scored.scores), scored.details


@pytest.mark.parametrize("algorithm", ["incremental", "auto"])
def test_any_perturbation_runs_and_a_late_moving_column_falls_back(
    wide, algorithm, auto_takes_incremental
):
    # Behind preprocessing, the model columns a group owns are found at
    # repeat 0: one that moves only later was never assigned.
    reg, X, y = wide
    scaled = make_pipeline(StandardScaler().fit(X), reg)

    def run_with(algorithm):
        return scores_with(NoisyColumns, scaled, X, y, algorithm, n_repeats=2)

    exact, _ = run_with("exact")
    if algorithm == "incremental":
        with pytest.raises(ValueError, match="moved at repeat 1"):
            run_with(algorithm)
        return
    auto, details = run_with(algorithm)
    assert (
        details["algorithm"] == "exact"
        and "moved at repeat 1" in details["incremental_unavailable"]
    )
    np.testing.assert_array_equal(auto, exact)


def test_without_preprocessing_a_late_moving_column_needs_no_fallback(wide):
    # The network takes X's own columns: each column is its own model column
    # from the start, so a column still at repeat 0 moves later unharmed.
    reg, X, y = wide
    exact, _ = scores_with(NoisyColumns, reg, X, y, "exact", n_repeats=2)
    incremental, details = scores_with(
        NoisyColumns, reg, X, y, "incremental", n_repeats=2
    )
    assert details["algorithm"] == "incremental"
    np.testing.assert_allclose(incremental, exact, atol=ATOL)


def test_another_perturbation_equals_its_exact_run(wide):
    reg, X, y = wide

    class Noisy(NoisyColumns):
        def values(self, X_sub, group, repeat):
            columns = self.groups[group]
            rng = np.random.default_rng([group, repeat])
            return X_sub[:, columns] + rng.normal(size=(len(X_sub), len(columns)))

    def run_with(algorithm):
        groups = [[0, 1], [2], [3, 4, 5]]
        scores, details = scores_with(
            Noisy, reg, X, y, algorithm, n_repeats=3, feature_groups=groups
        )
        return scores, details["algorithm"]

    exact, _ = run_with("exact")
    incremental, used = run_with("incremental")
    assert used == "incremental"
    np.testing.assert_allclose(incremental, exact, atol=ATOL)


def test_shuffled_columns_reads_the_compact_plan():
    plan = draw_permutation_plan(0, 500, 500, 3)
    assert plan.permutations.dtype == np.uint16
    X = np.arange(1000.0).reshape(500, 2)
    values = ShuffledColumns(plan, [np.array([1])]).values(X, 0, 2)
    np.testing.assert_array_equal(values[:, 0], X[plan.permutation(2).astype(int), 1])


def test_without_preprocessing_no_model_ready_copy_of_x_is_made(wide, monkeypatch):
    # At 350,000 x 1,000 such a copy alone is 1.4 GB: the identity path
    # transforms only blocks of rows (to check them), never X at once.
    from skimportance._engines.separability import ModelRows

    def refuse(self, X):
        raise AssertionError("a model-ready copy of X was made")

    monkeypatch.setattr(ModelRows, "__call__", refuse)
    reg, X, y = wide
    result = permutation_importance(
        reg, X, y, algorithm="incremental", n_repeats=2, random_state=0
    )
    theirs = sklearn_permutation_importance(reg, X, y, n_repeats=2, random_state=0)
    assert result.details["algorithm"] == "incremental"
    np.testing.assert_allclose(result.importances, theirs.importances, atol=ATOL)
